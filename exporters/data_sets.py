"""Real labeled data shipped with the exporter, to validate every variant against the reference.

Bi-encoders: STS Benchmark dev pairs with gold similarity scores. Cross-encoders: TREC answer selection
dev questions, each with its candidate answers. See data/README.md for sources and licences.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np


def _read_csv(name: str) -> list[list[str]]:
    text = resources.files("edgesbert.exporters").joinpath(f"data/{name}").read_text("utf-8")
    return list(csv.reader(text.splitlines()))


@lru_cache(maxsize=1)
def stsb_dev() -> tuple[tuple[str, str, float], ...]:
    """All STSb-dev rows: (sentence1, sentence2, score 0-5)."""
    return tuple((row[0], row[1], float(row[2])) for row in _read_csv("stsb-en-dev.csv") if len(row) == 3)


@dataclass(frozen=True)
class SentencePairs:
    """Labeled sentence pairs, with the distinct sentences to embed once."""

    sentences: list[str]
    first: np.ndarray  # index into sentences, per pair
    second: np.ndarray
    gold: np.ndarray  # gold similarity, per pair

    def __len__(self) -> int:
        """The number of texts to embed."""
        return len(self.sentences)


def stsb_pairs(count: int = 512) -> SentencePairs:
    """``count`` STSb-dev pairs spread evenly over the set (all of it when ``count`` is 1,500 or more).

    The set runs by genre, image captions first, then news and forum posts: its first 512 pairs are all
    captions, on which all-MiniLM-L6-v2's OpenVINO int8 held a mean cosine of 0.9974 to the reference
    while forum sentences of STSb test ("How do you do that?") fell to 0.58.
    """
    dev = stsb_dev()
    step = max(1.0, len(dev) / count)
    rows = [dev[int(i * step)] for i in range(min(count, len(dev)))]
    sentences = list(dict.fromkeys(s for row in rows for s in row[:2]))
    index = {s: i for i, s in enumerate(sentences)}
    return SentencePairs(
        sentences,
        np.array([index[r[0]] for r in rows]),
        np.array([index[r[1]] for r in rows]),
        np.array([r[2] for r in rows]),
    )


@dataclass(frozen=True)
class RankingGroups:
    """Queries with candidate documents, flattened to pairs; ``starts`` marks where each query begins."""

    pairs: list[tuple[str, str]]
    starts: np.ndarray
    labels: np.ndarray  # 1 for a correct answer

    def __len__(self) -> int:
        """The number of pairs to score."""
        return len(self.pairs)


def trec_groups(count: int = 512) -> RankingGroups:
    """Whole TREC-dev questions, in file order, until about ``count`` (question, answer) pairs."""
    pairs: list[tuple[str, str]] = []
    starts: list[int] = []
    labels: list[int] = []
    for question, label, answer in _read_csv("trecqa-dev.csv")[1:]:
        if not pairs or pairs[-1][0] != question:
            if len(pairs) >= count:
                break
            starts.append(len(pairs))
        pairs.append((question, answer))
        labels.append(int(label))
    return RankingGroups(pairs, np.array(starts), np.array(labels))
