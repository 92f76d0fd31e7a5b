"""The suite's accuracy figures: the PyTorch reference's outputs (cached), and each system's agreement.

Bi-encoders: STSb-test Spearman of cosine similarities against gold, and mean cosine to the edgesbert
PyTorch reference. Cross-encoders: Spearman against gold and against the reference's scores, and for
how many queries the top 10 documents come in the order sentence-transformers' CrossEncoder torch gives.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import log, sts_spearman
from benchmarks.suite_systems import BENCH, model_digest, model_name


def cached_array(kind: str, model: Path, items: list[Any], compute: Any) -> np.ndarray:
    """The PyTorch reference's vectors or scores for ``items``, computed once per model and items."""
    key = hashlib.sha1((model_digest(model) + json.dumps(items)).encode()).hexdigest()[:12]
    path = BENCH / "reference" / f"{kind}-{model_name(model)}-{key}.npy"
    if path.is_file():
        return np.load(path)
    log(f"computing the PyTorch reference {kind} for {len(items)} items")
    values = np.asarray(compute(), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, values)
    return values


def reference_vectors(model: Path, texts: list[str], threads: int) -> np.ndarray:
    def compute() -> np.ndarray:
        import torch

        from edgesbert.reference import BiEncoder

        torch.set_num_threads(threads)
        return BiEncoder(model).encode(texts, batch_size=32)

    return cached_array("bi", model, texts, compute)


def reference_scores(model: Path, pairs: list[tuple[str, str]], threads: int) -> np.ndarray:
    def compute() -> np.ndarray:
        import torch

        from edgesbert.reference import CrossEncoder

        torch.set_num_threads(threads)
        return CrossEncoder(model).predict(pairs, batch_size=32).reshape(len(pairs), -1)[:, 0]

    return cached_array("cross", model, pairs, compute)


def first_output(entry: dict[str, Any]) -> np.ndarray | None:
    done = [run for run in entry["speed"] if run is not None]
    return np.load(done[0]["out"]) if done else None


def bi_accuracy(raw: dict[str, Any], name: str, sts: tuple, expected: np.ndarray) -> dict[str, float]:
    texts, first, second, gold = sts
    vectors = first_output(raw[name])
    if vectors is None:
        return {}
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = float((unit * expected).sum(axis=1).mean())
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
