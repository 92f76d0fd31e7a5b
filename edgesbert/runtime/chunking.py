"""Texts longer than a model's window: cut them (truncate), refuse them (error), or embed them in chunks.

A chunk is a run of the text's own tokens, at most a window long, shared with the next chunk by
``overlap`` tokens; it is embedded as the text between its first token's start and its last token's end,
and a text's vector is the mean of its chunks' vectors, each weighted by its tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

#: a token's character span in its text: (start, stop)
Span = tuple[int, int]


class LongTexts(str, Enum):
    """What ``encode`` does with a text longer than the model's window."""

    TRUNCATE = "truncate"  # keep its first tokens (sentence-transformers' way)
    CHUNK = "chunk"  # embed it in windows and average them, weighted by tokens
    ERROR = "error"  # raise ValueError naming it


def long_texts_mode(value: LongTexts | str) -> LongTexts:
    """``value`` as a LongTexts, or ValueError naming the choices."""
    try:
        return LongTexts(value)
    except ValueError:
        choices = ", ".join(repr(mode.value) for mode in LongTexts)
        raise ValueError(f"long_texts must be one of {choices}, got {value!r}") from None


@dataclass(frozen=True)
class Chunk:
    """A window of one text: which text, its character span there, and how many tokens it holds."""

    source: int
    start: int
    stop: int
    tokens: int


def chunk_texts(
    spans: Sequence[Sequence[Span]], lengths: Sequence[int], window: int, overlap: int
) -> list[Chunk]:
    """The chunks of every text, in order: one for a text of at most ``window`` tokens (the whole text).

    ``spans`` are each text's tokens (no special tokens), ``lengths`` its characters. Longer texts get
    windows of ``window`` tokens starting every ``window - overlap`` tokens, the last one ending at the
    text's last token.
    """
    if not 0 <= overlap < window:
        raise ValueError(
            f"chunk_overlap must be in 0..{window - 1} (the window is {window} tokens), got {overlap}"
        )
    found = []
    for source, tokens in enumerate(spans):
        if len(tokens) <= window:
            found.append(Chunk(source, 0, lengths[source], len(tokens)))
            continue
        start = 0
        while True:
            stop = min(start + window, len(tokens))
            found.append(Chunk(source, tokens[start][0], tokens[stop - 1][1], stop - start))
            if stop == len(tokens):
                break
            start += window - overlap
    return found


def mean_of_chunks(vectors: np.ndarray, chunks: Sequence[Chunk], count: int) -> np.ndarray:
    """(count, dim): each text's chunk vectors averaged, weighted by their tokens (one chunk: itself)."""
    weights = np.array([max(chunk.tokens, 1) for chunk in chunks], dtype=np.float64)
    sources = np.array([chunk.source for chunk in chunks])
    summed = np.zeros((count, vectors.shape[1]), dtype=np.float64)
    np.add.at(summed, sources, vectors.astype(np.float64) * weights[:, None])
    totals = np.bincount(sources, weights, minlength=count)
    return (summed / totals[:, None]).astype(np.float32)


def too_long(spans: Sequence[Sequence[Span]], window: int, what: str) -> ValueError | None:
    """The error for the first text longer than ``window`` tokens, if any (``long_texts="error"``)."""
    for i, tokens in enumerate(spans):
        if len(tokens) > window:
            return ValueError(
                f"{what}[{i}] has {len(tokens)} tokens, more than the {window} this model takes (its "
                "special tokens and prompt aside); pass long_texts='chunk' to embed it in chunks or "
                "'truncate' to cut it"
            )
    return None
