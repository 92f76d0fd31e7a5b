"""Step: check a written graph variant against the PyTorch reference, through the runtime itself."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesbert.errors import ValidationFailedError
from edgesbert.evaluation import spearman
from edgesbert.runtime.similarity import normalize


@dataclass(frozen=True)
class Tolerance:
    """How far a variant may drift from the reference before the export fails."""

    max_abs_diff: float = 1e-4
    min_mean_cosine: float = 0.9999  # bi-encoders: cosine between reference and variant embeddings
    min_score_spearman: float = 0.999  # cross-encoders: rank agreement of scores

    def __post_init__(self) -> None:
        if self.max_abs_diff < 0 or not 0 <= self.min_mean_cosine <= 1:
            raise ValueError(f"tolerance values out of range: {self}")


def embedding_figures(expected: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Agreement of two embedding matrices, compared at unit length."""
    expected, actual = normalize(expected), normalize(actual)
    cosines = (expected * actual).sum(axis=1)
    return {
        "max_abs_diff": float(np.abs(expected - actual).max()),
        "mean_cosine": float(cosines.mean()),
        "min_cosine": float(cosines.min()),
        "samples": float(len(expected)),
    }


def score_figures(expected: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Agreement of two cross-encoder score arrays."""
    return {
        "max_abs_diff": float(np.abs(expected - actual).max()),
        "score_spearman": spearman(expected.ravel(), actual.ravel()),
        "samples": float(len(expected)),
    }


def check(variant: str, figures: dict[str, float], tolerance: Tolerance) -> None:
    """Raise ValidationFailedError if ``figures`` fall outside ``tolerance``."""
    failures = []
    if figures["max_abs_diff"] > tolerance.max_abs_diff:
        failures.append(f"max_abs_diff {figures['max_abs_diff']:.3g} > {tolerance.max_abs_diff:.3g}")
    if figures.get("mean_cosine", 1.0) < tolerance.min_mean_cosine:
        failures.append(f"mean_cosine {figures['mean_cosine']:.6f} < {tolerance.min_mean_cosine}")
    if figures.get("score_spearman", 1.0) < tolerance.min_score_spearman:
        failures.append(f"score_spearman {figures['score_spearman']:.6f} < {tolerance.min_score_spearman}")
    if failures:
        raise ValidationFailedError(
            f"variant {variant!r} disagrees with the PyTorch reference: {'; '.join(failures)}. "
            "Nothing was written. Loosen the tolerance only if this drift is acceptable to you."
        )
