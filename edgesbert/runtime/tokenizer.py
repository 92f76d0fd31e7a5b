"""Tokenization with the `tokenizers` library only: truncation and padding as the manifest says."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from edgesbert.errors import ModelLoadError
from edgesbert.runtime.manifest import TokenizerSpec

TextInput = str | tuple[str, str]


class TextTokenizer:
    """Turns texts or text pairs into the int64 arrays a graph takes."""

    def __init__(self, folder: Path, spec: TokenizerSpec, max_length: int) -> None:
        path = folder / spec.file
        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception for missing or corrupt files
            raise ModelLoadError(f"cannot read the tokenizer {path}: {e}; re-export the model folder") from e
        self._tokenizer.enable_truncation(max_length=max_length)
        self._tokenizer.enable_padding(
            direction=spec.padding_side, pad_id=spec.pad_token_id, pad_token=spec.pad_token
        )
        self.max_length = max_length

    def __call__(self, texts: Sequence[TextInput]) -> dict[str, np.ndarray]:
        """Return ``input_ids``, ``attention_mask`` and ``token_type_ids``, each (batch, longest)."""
        encodings = self._tokenizer.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
