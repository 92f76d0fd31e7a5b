"""The PyTorch reference bi-encoder, loaded from a sentence-transformers folder."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from edgesbert.errors import ModelLoadError
from edgesbert.reference.layers import Dense, Pool
from edgesbert.reference.st_folder import DenseLayout, SentenceTransformerLayout, read_layout
from edgesbert.resolve import resolve_model
from edgesbert.runtime.encoding import SentenceEncoder

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: What a folder of safetensors weights holds: one file, or the index of a sharded checkpoint.
SAFETENSORS_FILES = ("model.safetensors", "model.safetensors.index.json")
#: Weight files edgesbert never reads (pickles, other frameworks); named when a folder has only these.
_OTHER_WEIGHTS = ("*.bin", "*.bin.index.json", "*.pt", "*.pth", "*.ckpt*", "*.h5", "*.msgpack")


def require_safetensors(folder: Path, convert: str) -> None:
    """Raise ModelLoadError unless ``folder`` holds safetensors weights; ``convert`` says how to make them.

    transformers and sentence-transformers would fall back to ``pytorch_model.bin``, a pickle; edgesbert
    refuses it rather than unpickle a file it did not make.
    """
    if any((folder / name).is_file() for name in SAFETENSORS_FILES):
        return
    found = sorted({p.name for pattern in _OTHER_WEIGHTS for p in folder.glob(pattern) if p.is_file()})
    raise ModelLoadError(
        f"{folder} has no model.safetensors (found {', '.join(found) or 'no weights at all'}); "
        "edgesbert reads weights only from safetensors and never loads pickled files. "
        f"To convert, {convert}"
    )


def model_input_names(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> tuple[str, ...]:
    """The inputs both the tokenizer produces and the model's forward takes, in a fixed order."""
    accepted = inspect.signature(model.forward).parameters
    produced = set(tokenizer.model_input_names)
    return tuple(name for name in MODEL_INPUTS if name in accepted and name in produced)


def load_transformer(
    folder: Path,
    model_class: Any = AutoModel,
    attn_implementation: str | None = None,
    num_labels: int | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a Hugging Face model and its fast tokenizer; no remote code.

    ``num_labels`` sets a classifier's output count (a new head when the folder has none of that size).
    """
    labels = {} if num_labels is None else {"num_labels": num_labels, "ignore_mismatched_sizes": True}
    class_name = getattr(model_class, "__name__", "AutoModel")
    require_safetensors(
        folder,
        f"load it with transformers and save it again: {class_name}.from_pretrained({str(folder)!r})"
        f".save_pretrained({str(folder)!r}) writes model.safetensors",
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True, trust_remote_code=False)
        model = model_class.from_pretrained(
            folder,
            trust_remote_code=False,
            use_safetensors=True,
            attn_implementation=attn_implementation,
            **labels,
        )
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot load a transformer from {folder}: {e}") from e
    if not tokenizer.is_fast:
        raise ModelLoadError(f"{folder}: edgesbert needs a fast tokenizer (tokenizer.json)")
    return model.eval(), tokenizer


def _load_dense(layout: DenseLayout) -> Dense:
    layer = Dense(layout.in_features, layout.out_features, layout.bias, layout.activation)
    model_folder = layout.folder.parent
    require_safetensors(
        layout.folder,
        f"load the model with sentence-transformers and save it again: SentenceTransformer("
        f"{str(model_folder)!r}).save({str(model_folder)!r}) writes model.safetensors for every module",
    )
    try:
        state = load_file(str(layout.folder / "model.safetensors"))
        layer.load_state_dict(state)
    except (OSError, RuntimeError, SafetensorError) as e:  # unreadable file, or weights of another shape
        raise ModelLoadError(f"cannot load the Dense layer in {layout.folder}: {e}") from e
    return layer.eval()


class EmbeddingNetwork(nn.Module):
    """Transformer, pooling, dense layers and normalization: token ids in, sentence embedding out.

    This is the module the exporter turns into a graph, so its forward is the whole computation.
    """

    def __init__(self, transformer: PreTrainedModel, layout: SentenceTransformerLayout) -> None:
        super().__init__()
        self.transformer = transformer
        self.pool = Pool(layout.pooling)
        self.dense = nn.Sequential(*(_load_dense(d) for d in layout.dense))
        self.normalize = layout.normalize

    def token_embeddings(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The transformer's last hidden state, (batch, seq, hidden)."""
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        output = self.transformer(input_ids=input_ids, attention_mask=attention_mask, **extra)
        return output[0]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return (batch, dim) sentence embeddings."""
        return self.pooled(self.token_embeddings(input_ids, attention_mask, token_type_ids), attention_mask)

    def pooled(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooling, dense layers and normalization over token embeddings: (batch, dim)."""
        embeddings = self.dense(self.pool(tokens, attention_mask))
        if self.normalize:
            embeddings = nn.functional.normalize(embeddings, p=2, dim=1)
        return embeddings


class BiEncoder(SentenceEncoder):
    """A sentence-transformers bi-encoder in PyTorch, with the runtime's ``encode`` semantics."""

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "cpu",
        max_seq_length: int | None = None,
        attn_implementation: str | None = None,
    ) -> None:
        """Load ``model``: a local folder or a Hugging Face id (resolved offline first).

        Args:
            model: folder or hub id of a sentence-transformers (or plain transformers) model.
            device: torch device, e.g. "cpu" or "cuda".
            max_seq_length: override the folder's maximum sequence length.
            attn_implementation: transformers' attention kernel ("eager", "sdpa"); None picks its default.
        """
        self.source = str(model)
        self.folder = resolve_model(model)
        self.layout = read_layout(self.folder)
        transformer, self.tokenizer = load_transformer(
            self.layout.transformer_folder, attn_implementation=attn_implementation
        )
        self.input_names = model_input_names(transformer, self.tokenizer)
        self.transformer_config = transformer.config
        self.network = EmbeddingNetwork(transformer, self.layout).to(device).eval()
        self.device = torch.device(device)
        self.max_seq_length = (
            max_seq_length or self.layout.max_seq_length or model_max_length(transformer, self.tokenizer)
        )
        self.prompts = dict(self.layout.prompts)
        self.default_prompt_name = self.layout.default_prompt_name
        self.similarity_fn_name = self.layout.similarity
        dense = self.layout.dense
        self._dimension = dense[-1].out_features if dense else int(transformer.config.hidden_size)

    @property
    def embedding_dimension(self) -> int:
        """Width of the embeddings."""
        return self._dimension

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Tokenize as sentence-transformers does: pad to the longest, truncate to ``max_seq_length``."""
        features = self.tokenizer(
            texts,
            padding=True,
            truncation="longest_first",
            max_length=self.max_seq_length,
            return_tensors="pt",
        )
        return {name: features[name].to(self.device) for name in self.input_names}

    @torch.inference_mode()
    def _embed(self, texts: list[str]) -> np.ndarray:
        return self.network(**self.tokenize(texts)).float().cpu().numpy()

    def _token_spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        found = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
        return [[(int(a), int(b)) for a, b in spans] for spans in found["offset_mapping"]]

    def _special_tokens(self) -> int:
        return int(self.tokenizer.num_special_tokens_to_add(pair=False))

    @property
    def _normalizes(self) -> bool:
        return bool(self.network.normalize)


def model_max_length(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    """The longest input both the tokenizer and the position embeddings allow."""
    positions = getattr(model.config, "max_position_embeddings", None) or 512
    return int(min(tokenizer.model_max_length, positions))
