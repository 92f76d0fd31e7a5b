"""The suite's accuracy figures: each system's agreement with gold and with the PyTorch reference.

Bi-encoders: STSb-test Spearman of cosine similarities against gold, and mean cosine to the edgesbert
PyTorch reference. Cross-encoders: Spearman against gold and against the reference's scores, and for
how many queries the top 10 documents come in the order sentence-transformers' CrossEncoder torch gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common.data import sts_spearman, unit


def first_output(entry: dict[str, Any]) -> np.ndarray | None:
    done = [run for run in entry["speed"] if run is not None]
    return np.load(done[0]["out"]) if done else None


def bi_accuracy(raw: dict[str, Any], name: str, sts: tuple, expected: np.ndarray) -> dict[str, float]:
    texts, first, second, gold = sts
    vectors = first_output(raw[name])
    if vectors is None:
        return {}
    cosine = float((unit(vectors) * expected).sum(axis=1).mean())
    return {"spearman": sts_spearman(vectors, texts, first, second, gold), "mean_cosine": cosine}


def cross_accuracy(raw: dict[str, Any], name: str, gold: np.ndarray, expected: np.ndarray,
                   orders: list[list[int]] | None) -> dict[str, Any]:  # fmt: skip
    from edgesbert.evaluation import spearman

    scores = first_output(raw[name])
    if scores is None:
        return {}
    figures: dict[str, Any] = {
        "spearman": spearman(scores, gold),
        "score_spearman": spearman(scores, expected),
    }
    done = [run for run in raw[name]["speed"] if run is not None]
    if orders is not None:
        same = {
            hint: sum(list(a[:10]) == list(b[:10]) for a, b in zip(mine, orders, strict=True))
            for hint, mine in done[0]["orders"].items()
        }
        figures.update(same_top10=same, queries=len(orders))
    return figures
