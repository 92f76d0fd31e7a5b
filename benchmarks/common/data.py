"""The texts the benchmarks embed: STSb test (and Spearman against its gold scores), the bulk jobs' corpus."""

from __future__ import annotations

import csv

import numpy as np

from benchmarks.common.paths import DATA
from edgesbert.evaluation import spearman


def stsb_test() -> tuple[list[str], list[str], np.ndarray]:
    """STSb-test: first sentences, second sentences and gold scores (0-5)."""
    with (DATA / "stsb-en-test.csv").open(encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if len(row) == 3]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


def unique_texts(first: list[str], second: list[str]) -> list[str]:
    """The unique sentences of both columns, longest first (as ``encode()`` orders them)."""
    return sorted(dict.fromkeys(first + second), key=len, reverse=True)


def unit(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1."""
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def sts_spearman(
    vectors: np.ndarray, texts: list[str], first: list[str], second: list[str], gold: np.ndarray
) -> float:
    """Spearman of cosine similarity against gold scores; ``vectors[i]`` embeds ``texts[i]``."""
    vectors = unit(vectors)
    index = {s: i for i, s in enumerate(texts)}
    a, b = vectors[[index[s] for s in first]], vectors[[index[s] for s in second]]
    return spearman((a * b).sum(axis=1), gold)


def corpus_texts() -> list[str]:
    """The unique texts of STSb train and test (both sentences) and TrecQA train (questions and answers)."""
    texts: list[str] = []
    for name in ("stsb-en-train.csv", "stsb-en-test.csv"):
        with (DATA / name).open(encoding="utf-8") as f:
            texts += [s for row in csv.reader(f) if len(row) == 3 for s in row[:2]]
    with (DATA / "trecqa-train.csv").open(encoding="utf-8") as f:
        texts += [s for row in csv.DictReader(f) for s in (row["qtext"], row["atext"])]
    cleaned = (" ".join(t.split()) for t in texts)
    return [t for t in dict.fromkeys(cleaned) if t]
