"""Pooling of token embeddings in numpy, for graphs that leave pooling to the runtime."""

from __future__ import annotations

import numpy as np

from edgesbert.runtime.manifest import Pooling


def pool(tokens: np.ndarray, attention_mask: np.ndarray, mode: Pooling) -> np.ndarray:
    """Pool ``tokens`` (batch, seq, dim) over the positions where ``attention_mask`` is 1."""
    mask = attention_mask.astype(tokens.dtype)[:, :, None]
    if mode is Pooling.CLS:  # the first attended position, which left padding moves
        return tokens[np.arange(len(tokens)), np.argmax(attention_mask, axis=1)]
    if mode is Pooling.MAX:
        return np.where(mask > 0, tokens, -np.inf).max(axis=1)
    if mode is Pooling.LAST_TOKEN:
        last = attention_mask.shape[1] - 1 - np.argmax(attention_mask[:, ::-1], axis=1)
        last = np.where(attention_mask.any(axis=1), last, attention_mask.shape[1] - 1)
        return (tokens * mask)[np.arange(len(tokens)), last]
    counts = np.maximum(mask.sum(axis=1), 1e-9)
    summed = (tokens * mask).sum(axis=1)
    return summed / (counts if mode is Pooling.MEAN else np.sqrt(counts))
