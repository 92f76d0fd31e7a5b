"""Tokenization with the `tokenizers` library only: truncation and padding as the manifest says."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

from edgesbert.errors import ModelLoadError
from edgesbert.runtime.inputs import Text, naming_invalid_text
from edgesbert.runtime.manifest import TokenizerSpec

TextInput = Text


@dataclass(frozen=True)
class Token:
    """One token of a text: its id, its text, whether it is a special token, and where it came from.

    ``start`` and ``stop`` are character offsets into the text (None for a special token).
    """

    id: int
    text: str
    special: bool
    start: int | None
    stop: int | None


class TextTokenizer:
    """Turns texts or text pairs into the int64 arrays a graph takes, truncated to ``max_length`` tokens."""

    def __init__(self, folder: Path, spec: TokenizerSpec, max_length: int, *, pairs: bool = False) -> None:
        """Read ``spec.file`` in ``folder``.

        Args:
            folder: the model folder.
            spec: the manifest's tokenizer section.
            max_length: the longest input, in tokens, the graph takes; ``max_length`` starts there and may
                be lowered, never raised above it.
            pairs: the texts are pairs (a cross-encoder's), which carry one special token more.
        """
        path = folder / spec.file
        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception for missing or corrupt files
            raise ModelLoadError(f"cannot read the tokenizer {path}: {e}; re-export the model folder") from e
        self._tokenizer.enable_padding(
            direction=spec.padding_side, pad_id=spec.pad_token_id, pad_token=spec.pad_token
        )
        self._encode_batch = _fast(self._tokenizer)
        self.limit = max_length
        # Below the special tokens ([CLS] [SEP]) tokenizers stops truncating at all.
        self.shortest = self._tokenizer.num_special_tokens_to_add(pairs)
        self.max_length = max_length

    @property
    def max_length(self) -> int:
        """Inputs longer than this many tokens are truncated (a pair's longer text first)."""
        return self._max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"max_seq_length must be an int, got {type(value).__name__}")
        if not self.shortest <= value <= self.limit:
            raise ValueError(
                f"max_seq_length must be in {self.shortest}..{self.limit}, got {value}: this model's graph "
                f"takes at most {self.limit} tokens, and every input carries {self.shortest} special tokens"
            )
        self._max_length = int(value)
        self._tokenizer.enable_truncation(max_length=self._max_length)

    def __call__(self, texts: Sequence[TextInput]) -> dict[str, np.ndarray]:
        """Return ``input_ids``, ``attention_mask`` and ``token_type_ids``, each (batch, longest)."""
        batch = list(texts)
        with naming_invalid_text(batch, "texts"):
            encodings = self._encode_batch(batch)
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }

    def token_counts(self, texts: Sequence[TextInput], what: str = "texts") -> list[int]:
        """How many tokens each text (or pair) has before truncation, special tokens included.

        A text that is not valid Unicode raises ValueError naming it as ``what[i]``.
        """
        batch = list(texts)
        with naming_invalid_text(batch, what):
            if len(batch) == 1:  # encode_batch's thread pool costs more than one text's tokenization
                text = batch[0]
                return [len(self._untruncated.encode(*((text,) if isinstance(text, str) else text)).ids)]
            return [len(e.ids) for e in _fast(self._untruncated)(batch)]

    def tokens(
        self, texts: Sequence[TextInput], *, add_special_tokens: bool = True, what: str = "texts"
    ) -> list[list[Token]]:
        """The tokens of each text before truncation, with their character offsets."""
        batch = list(texts)
        with naming_invalid_text(batch, what):
            encodings = self._untruncated.encode_batch(batch, add_special_tokens=add_special_tokens)
        return [
            [
                Token(id, text, bool(special), None if special else start, None if special else stop)
                for id, text, special, (start, stop) in zip(
                    e.ids, e.tokens, e.special_tokens_mask, e.offsets, strict=True
                )
            ]
            for e in encodings
        ]

    @cached_property
    def _untruncated(self) -> Tokenizer:
        """The same tokenizer without truncation or padding (made on first use)."""
        plain = Tokenizer.from_str(self._tokenizer.to_str())
        plain.no_truncation()
        plain.no_padding()
        return plain


def _fast(tokenizer: Tokenizer) -> Callable[[list[TextInput]], list[Encoding]]:
    """``encode_batch`` without character offsets where tokenizers has it (about 1.2x faster)."""
    fast: Callable[[list[TextInput]], list[Encoding]] = getattr(
        tokenizer, "encode_batch_fast", tokenizer.encode_batch
    )
    return fast
