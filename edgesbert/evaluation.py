"""Correlation metrics in numpy (no scipy needed), as used for STS evaluation and export validation."""

from __future__ import annotations

import numpy as np


def rank_average(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (scipy's ``rankdata`` default)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.r_[first, len(values)])
    average = first + (counts + 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = average[group]
    return ranks


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally long vectors."""
    if len(a) != len(b):
        raise ValueError(f"pearson needs equally long inputs, got {len(a)} and {len(b)}")
    a = np.asarray(a, dtype=np.float64) - np.mean(a)
    b = np.asarray(b, dtype=np.float64) - np.mean(b)
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally long vectors."""
    if len(a) != len(b):
        raise ValueError(f"spearman needs equally long inputs, got {len(a)} and {len(b)}")
    return pearson(rank_average(np.asarray(a)), rank_average(np.asarray(b)))
