"""Output precisions of ``encode``: float32, int8, uint8, binary, ubinary (sentence-transformers' scheme)."""

from __future__ import annotations

from enum import Enum

import numpy as np


class OutputPrecision(str, Enum):
    """Precision of the embeddings ``encode`` returns."""

    FLOAT32 = "float32"
    INT8 = "int8"
    UINT8 = "uint8"
    BINARY = "binary"
    UBINARY = "ubinary"


_DTYPES = {
    OutputPrecision.FLOAT32: np.float32,
    OutputPrecision.INT8: np.int8,
    OutputPrecision.UINT8: np.uint8,
    OutputPrecision.BINARY: np.int8,
    OutputPrecision.UBINARY: np.uint8,
}


def empty_embeddings(dimension: int, precision: OutputPrecision) -> np.ndarray:
    """The (0, width) result of encoding no text at all, in the dtype of ``precision``."""
    width = (dimension + 7) // 8 if precision.value.endswith("binary") else dimension
    return np.zeros((0, width), dtype=_DTYPES[precision])


def parse_precision(precision: OutputPrecision | str) -> OutputPrecision:
    """``precision`` as an OutputPrecision, or a ValueError listing the choices."""
    try:
        return OutputPrecision(precision)
    except ValueError:
        raise ValueError(
            f"precision must be one of {[p.value for p in OutputPrecision]}, got {precision!r}"
        ) from None


def quantize_embeddings(
    embeddings: np.ndarray, precision: OutputPrecision | str, ranges: np.ndarray | None = None
) -> np.ndarray:
    """Convert float embeddings to ``precision``.

    int8 and uint8 map each dimension's range, ``ranges`` of shape (2, dim) with minima and maxima, onto
    256 buckets; without ``ranges`` they are taken from ``embeddings`` themselves, which needs more than
    one embedding. binary and ubinary pack the sign bits, 8 dimensions a byte.
    """
    precision = parse_precision(precision)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if precision is OutputPrecision.FLOAT32:
        return embeddings
    if precision is OutputPrecision.UBINARY:
        return np.packbits(embeddings > 0, axis=-1)
    if precision is OutputPrecision.BINARY:
        return (np.packbits(embeddings > 0, axis=-1).astype(np.int16) - 128).astype(np.int8)
    if ranges is None and embeddings.ndim == 2 and embeddings.shape[0] == 0:
        return empty_embeddings(embeddings.shape[1], precision)
    if ranges is None:
        if embeddings.ndim < 2 or embeddings.shape[0] < 2:
            raise ValueError(
                f"{precision.value} output needs ranges: encode several texts at once, or pass ranges"
            )
        ranges = np.stack([embeddings.min(axis=0), embeddings.max(axis=0)])
    ranges = np.asarray(ranges, dtype=np.float32)
    starts = ranges[0]
    steps = (ranges[1] - starts) / 255
    steps = np.where(steps == 0, 1, steps)
    buckets = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
    if precision is OutputPrecision.UINT8:
        return buckets.astype(np.uint8)
    return (buckets - 128).astype(np.int8)
