"""Similarity functions on numpy arrays, with sentence-transformers' conventions (higher is closer)."""

from __future__ import annotations

import numpy as np

from edgesbert.runtime.manifest import SimilarityFunction


def _as_matrix(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a vector or a matrix, got shape {x.shape}")
    return x


def normalize(x: np.ndarray) -> np.ndarray:
    """Scale rows to unit L2 norm (rows of zeros stay zero, as in torch's ``F.normalize``)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def similarity(a: np.ndarray, b: np.ndarray, fn: SimilarityFunction | str) -> np.ndarray:
    """Matrix of similarities ``out[i, j] = fn(a[i], b[j])``."""
    a, b = _as_matrix(a), _as_matrix(b)
    fn = SimilarityFunction(fn)
    if fn is SimilarityFunction.COSINE:
        return normalize(a) @ normalize(b).T
    if fn is SimilarityFunction.DOT:
        return a @ b.T
    if fn is SimilarityFunction.EUCLIDEAN:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)  # float32 would cancel near-duplicates
        squared = (a64 * a64).sum(1)[:, None] - 2 * (a64 @ b64.T) + (b64 * b64).sum(1)[None, :]
        return -np.sqrt(np.maximum(squared, 0.0)).astype(np.float32)
    return -np.abs(a[:, None, :] - b[None, :, :]).sum(-1)


def similarity_pairwise(a: np.ndarray, b: np.ndarray, fn: SimilarityFunction | str) -> np.ndarray:
    """Vector of similarities ``out[i] = fn(a[i], b[i])``."""
    a, b = _as_matrix(a), _as_matrix(b)
    if a.shape != b.shape:
        raise ValueError(f"pairwise similarity needs equal shapes, got {a.shape} and {b.shape}")
    fn = SimilarityFunction(fn)
    if fn is SimilarityFunction.COSINE:
        return (normalize(a) * normalize(b)).sum(-1)
    if fn is SimilarityFunction.DOT:
        return (a * b).sum(-1)
    if fn is SimilarityFunction.EUCLIDEAN:
        return -np.linalg.norm(a - b, axis=-1)
    return -np.abs(a - b).sum(-1)
