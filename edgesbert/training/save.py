"""Save trained models in the folder formats that both edgesbert and sentence-transformers load.

A bi-encoder becomes a sentence-transformers folder in the classic layout that every
sentence-transformers release since 2.x reads (and ``edgesbert.reference.BiEncoder`` too); a
cross-encoder becomes a Hugging Face sequence-classification folder. Writes go to a staging
folder that replaces the destination only when complete, so a failed save damages nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from safetensors.torch import save_file

from edgesbert import __version__
from edgesbert.folders import staged_folder
from edgesbert.runtime.manifest import Activation

if TYPE_CHECKING:
    from edgesbert.reference import BiEncoder, CrossEncoder
    from edgesbert.reference.layers import Dense

#: Module types as sentence-transformers 2.x-6.x all resolve them (the classic names).
_MODULE_TYPES = {
    "Transformer": "sentence_transformers.models.Transformer",
    "Pooling": "sentence_transformers.models.Pooling",
    "Dense": "sentence_transformers.models.Dense",
    "Normalize": "sentence_transformers.models.Normalize",
}
_POOLING_FLAGS = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}
#: Cross-encoder activations as sentence-transformers names them (written only when not its default).
_ACTIVATION_PATHS = {
    Activation.SIGMOID: "torch.nn.modules.activation.Sigmoid",
    Activation.IDENTITY: "torch.nn.modules.linear.Identity",
    Activation.TANH: "torch.nn.modules.activation.Tanh",
    Activation.SOFTMAX: "torch.nn.modules.activation.Softmax",
}


@contextmanager
def _without_progress_bars() -> Iterator[None]:
    """Hide transformers' "Writing model shards" bar while saving; restore its setting after."""
    from transformers.utils import logging as transformers_logging

    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _versions() -> dict[str, str]:
    import transformers

    return {"edgesbert": __version__, "transformers": transformers.__version__, "pytorch": torch.__version__}


def _activation_path(module: torch.nn.Module) -> str:
    name = type(module).__name__
    package = "linear" if name == "Identity" else "activation"
    return f"torch.nn.modules.{package}.{name}"


def _save_dense(layer: Dense, folder: Path) -> None:
    linear = layer.linear
    config = {
        "in_features": linear.in_features,
        "out_features": linear.out_features,
        "bias": linear.bias is not None,
        "activation_function": _activation_path(layer.activation),
    }
    _write_json(folder / "config.json", config)
    weights = {"linear.weight": linear.weight.detach().cpu().contiguous()}
    if linear.bias is not None:
        weights["linear.bias"] = linear.bias.detach().cpu().contiguous()
    save_file(weights, str(folder / "model.safetensors"))


def save_bi_encoder(model: BiEncoder, folder: str | Path) -> Path:
    """Write ``model`` (its current weights) as a sentence-transformers folder; return the folder.

    Layout: the transformer and its tokenizer at the root (``model.safetensors``, ``config.json``,
    ``tokenizer.json``, ``sentence_bert_config.json``), ``1_Pooling``, one ``N_Dense`` per dense
    layer, ``N_Normalize`` if the model normalizes, ``modules.json`` and
    ``config_sentence_transformers.json`` (prompts, similarity function).
    """
    network = model.network
    folder = Path(folder)
    with staged_folder(folder) as out:
        with _without_progress_bars():
            network.transformer.save_pretrained(str(out), safe_serialization=True)
        model.tokenizer.save_pretrained(str(out))
        _write_json(
            out / "sentence_bert_config.json",
            {"max_seq_length": model.max_seq_length, "do_lower_case": False},
        )
        modules = [{"idx": 0, "name": "0", "path": "", "type": _MODULE_TYPES["Transformer"]}]

        def add(kind: str) -> Path:
            index = len(modules)
            modules.append(
                {"idx": index, "name": str(index), "path": f"{index}_{kind}", "type": _MODULE_TYPES[kind]}
            )
            return out / f"{index}_{kind}"

        pooling = {"word_embedding_dimension": int(model.transformer_config.hidden_size)}
        pooling.update({flag: mode == network.pool.mode.value for mode, flag in _POOLING_FLAGS.items()})
        _write_json(add("Pooling") / "config.json", {**pooling, "include_prompt": True})
        for layer in network.dense:
            _save_dense(cast("Dense", layer), add("Dense"))
        if network.normalize:
            _write_json(add("Normalize") / "config.json", {})
        _write_json(out / "modules.json", modules)
        _write_json(
            out / "config_sentence_transformers.json",
            {
                "__version__": _versions(),
                "model_type": "SentenceTransformer",
                "prompts": dict(model.prompts),
                "default_prompt_name": model.default_prompt_name,
                "similarity_fn_name": model.similarity_fn_name.value,
            },
        )
    return folder


def save_cross_encoder(model: CrossEncoder, folder: str | Path) -> Path:
    """Write ``model`` (its current weights) as a Hugging Face sequence-classification folder.

    The tokenizer's ``model_max_length`` is set to the model's maximum pair length, which is where
    sentence-transformers' CrossEncoder reads it. The activation is written (as the import path
    sentence-transformers expects) only when it differs from the default of the label count, so
    the usual folder carries no import path at all.
    """
    from edgesbert.reference.cross_encoder import default_activation

    folder = Path(folder)
    with staged_folder(folder) as out:
        with _without_progress_bars():
            model.network.classifier.save_pretrained(str(out), safe_serialization=True)
        model.tokenizer.save_pretrained(str(out))
        _update_json(out / "tokenizer_config.json", {"model_max_length": model.max_seq_length})
        config_file = out / "config.json"
        config = json.loads(config_file.read_text(encoding="utf-8"))
        config.pop("sentence_transformers", None)
        config.pop("sbert_ce_default_activation_function", None)
        if model.activation is not default_activation(None, model.num_labels):
            config["sentence_transformers"] = {"activation_fn": _ACTIVATION_PATHS[model.activation]}
        _write_json(config_file, config)
    return folder


def _update_json(path: Path, values: dict[str, Any]) -> None:
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data.update(values)
    _write_json(path, data)
