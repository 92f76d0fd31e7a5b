"""Read the layout of a sentence-transformers folder (modules.json and its module configs) as data.

Module types are recognised by their class name only; nothing named in a config is ever imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesbert.errors import ModelLoadError
from edgesbert.reference.layers import ACTIVATIONS
from edgesbert.runtime.manifest import Pooling, SimilarityFunction

#: sentence-transformers' pooling flags, in the order it checks them.
_POOLING_FLAGS = {
    "pooling_mode_cls_token": Pooling.CLS,
    "pooling_mode_mean_tokens": Pooling.MEAN,
    "pooling_mode_max_tokens": Pooling.MAX,
    "pooling_mode_mean_sqrt_len_tokens": Pooling.MEAN_SQRT_LEN,
    "pooling_mode_lasttoken": Pooling.LAST_TOKEN,
}
_WEIGHTED_FLAG = "pooling_mode_weightedmean_tokens"


@dataclass(frozen=True)
class DenseLayout:
    """One Dense module: its folder and shape."""

    folder: Path
    in_features: int
    out_features: int
    bias: bool
    activation: str


@dataclass(frozen=True)
class SentenceTransformerLayout:
    """What a sentence-transformers folder stacks on top of its transformer."""

    transformer_folder: Path
    max_seq_length: int | None
    pooling: Pooling
    dense: tuple[DenseLayout, ...] = ()
    normalize: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity: SimilarityFunction = SimilarityFunction.COSINE


def read_json(path: Path, kind: type = dict) -> Any:
    """Read a JSON object (or list), with an error that names the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"cannot read {path}: {e}") from e
    if not isinstance(data, kind):
        raise ModelLoadError(f"{path} must hold a JSON {kind.__name__}")
    return data


def read_layout(folder: Path) -> SentenceTransformerLayout:
    """Read ``folder``; a plain Hugging Face folder (no modules.json) gets mean pooling, as in ST."""
    modules_file = folder / "modules.json"
    modules = read_json(modules_file, list) if modules_file.is_file() else []
    if not modules:
        modules = [{"type": "Transformer", "path": ""}, {"type": "Pooling", "path": None}]
    transformer_folder, max_seq_length = folder, None
    pooling, dense, normalize = Pooling.MEAN, [], False
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        path = folder / module["path"] if module.get("path") else None
        if kind == "Transformer":
            transformer_folder = path or folder
            max_seq_length = _max_seq_length(transformer_folder)
        elif kind == "Pooling":
            pooling = _pooling(path / "config.json") if path else Pooling.MEAN
        elif kind == "Dense" and path is not None:
            dense.append(_dense(path))
        elif kind == "Normalize":
            normalize = True
        else:
            raise ModelLoadError(
                f"{modules_file}: module type {module.get('type')!r} is not supported; edgesbert reads "
                "Transformer, Pooling, Dense and Normalize modules"
            )
    st_config_file = folder / "config_sentence_transformers.json"
    st_config = read_json(st_config_file) if st_config_file.is_file() else {}
    return SentenceTransformerLayout(
        transformer_folder=transformer_folder,
        max_seq_length=max_seq_length,
        pooling=pooling,
        dense=tuple(dense),
        normalize=normalize,
        prompts=dict(st_config.get("prompts") or {}),
        default_prompt_name=st_config.get("default_prompt_name"),
        similarity=SimilarityFunction(st_config.get("similarity_fn_name") or "cosine"),
    )


def _max_seq_length(transformer_folder: Path) -> int | None:
    config_file = transformer_folder / "sentence_bert_config.json"
    if not config_file.is_file():
        return None
    config = read_json(config_file)
    if config.get("do_lower_case"):
        raise ModelLoadError(
            f"{config_file}: do_lower_case=true is not supported yet; lower-case inputs in the tokenizer"
        )
    value = config.get("max_seq_length")
    return int(value) if value else None


def _pooling(config_file: Path) -> Pooling:
    """Read a Pooling config: sentence-transformers 6 writes ``pooling_mode``, older ones boolean flags."""
    config = read_json(config_file)
    mode = config.get("pooling_mode")
    if mode is not None:
        modes = [mode] if isinstance(mode, str) else list(mode)
    else:
        flags = {**{flag: m.value for flag, m in _POOLING_FLAGS.items()}, _WEIGHTED_FLAG: "weightedmean"}
        modes = [name for flag, name in flags.items() if config.get(flag)]
    supported = [m.value for m in Pooling]
    if len(modes) != 1 or modes[0] not in supported:
        raise ModelLoadError(
            f"{config_file}: edgesbert supports exactly one pooling mode of {supported}; "
            f"this folder asks for {modes}"
        )
    return Pooling(modes[0])


def _dense(folder: Path) -> DenseLayout:
    config = read_json(folder / "config.json")
    activation = str(config.get("activation_function", "torch.nn.modules.linear.Identity")).rsplit(".", 1)[-1]
    if activation not in ACTIVATIONS:
        raise ModelLoadError(
            f"{folder / 'config.json'}: Dense activation {activation!r} is not one of {sorted(ACTIVATIONS)}"
        )
    return DenseLayout(
        folder=folder,
        in_features=int(config["in_features"]),
        out_features=int(config["out_features"]),
        bias=bool(config.get("bias", True)),
        activation=activation,
    )
