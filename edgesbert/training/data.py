"""Training examples, their labels as tensors, shuffled batches, and STS files read as examples."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

#: A label: a score or class for a pair, a vector for distillation, or nothing (e.g. MNRL pairs).
Label = float | int | np.ndarray | None


@dataclass(frozen=True)
class Example:
    """One training example: its texts (one per column) and an optional label.

    Bi-encoder losses read the columns as (anchor, positive, negatives...) or (sentence1, sentence2);
    cross-encoder losses read exactly two, the pair. The label is a float (a similarity or a soft
    0..1 score), an int (a class) or a vector (a teacher embedding), as the loss expects.
    """

    texts: tuple[str, ...]
    label: Label = None

    def __post_init__(self) -> None:
        if not isinstance(self.texts, tuple) or not self.texts:
            raise TypeError(f"texts must be a non-empty tuple of strings, got {self.texts!r:.80}")
        for i, text in enumerate(self.texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, not a string")


@dataclass(frozen=True)
class ScoredPair:
    """One row of an STS file: two sentences and their gold similarity (0..5 in STSb)."""

    sentence1: str
    sentence2: str
    score: float


def read_sts_csv(path: str | Path) -> list[ScoredPair]:
    """Read an STSb-style CSV: no header, columns sentence1, sentence2, score.

    Raises:
        ValueError: a row does not have three columns or its score is not a number.
    """
    pairs = []
    with Path(path).open(encoding="utf-8", newline="") as f:
        for line, row in enumerate(csv.reader(f), start=1):
            if len(row) != 3:
                raise ValueError(f"{path}:{line}: expected sentence1,sentence2,score; got {len(row)} columns")
            try:
                score = float(row[2])
            except ValueError as e:
                raise ValueError(f"{path}:{line}: score {row[2]!r} is not a number") from e
            pairs.append(ScoredPair(row[0], row[1], score))
    return pairs


def sts_examples(pairs: Sequence[ScoredPair], max_score: float = 5.0) -> list[Example]:
    """Examples (sentence1, sentence2) labelled with score / ``max_score``, i.e. 0..1 for STSb."""
    if max_score <= 0:
        raise ValueError(f"max_score must be positive, got {max_score}")
    return [Example((p.sentence1, p.sentence2), p.score / max_score) for p in pairs]


def shuffled_batches(count: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices 0..count-1 in a random order, cut into batches (the last one may be smaller)."""
    order = rng.permutation(count)
    return [order[start : start + batch_size] for start in range(0, count, batch_size)]


def text_columns(batch: Sequence[Example]) -> list[list[str]]:
    """The batch's texts by column; every example must have the same number of texts."""
    widths = {len(example.texts) for example in batch}
    if len(widths) != 1:
        raise ValueError(f"every example of a batch needs the same number of texts, got {sorted(widths)}")
    return [list(column) for column in zip(*(example.texts for example in batch), strict=True)]


def label_tensor(batch: Sequence[Example], device: torch.device) -> torch.Tensor | None:
    """The batch's labels stacked: None if no example has one, (batch,) for numbers, (batch, dim) vectors.

    Ints stay int64 (class indices); floats and vectors become float32.
    """
    labels = [example.label for example in batch]
    if all(label is None for label in labels):
        return None
    if any(label is None for label in labels):
        raise ValueError("either every example of a batch has a label or none has")
    if all(isinstance(label, int | np.integer) and not isinstance(label, bool) for label in labels):
        return torch.tensor(labels, dtype=torch.int64, device=device)
    array = np.stack([np.asarray(label, dtype=np.float32) for label in labels])
    return torch.from_numpy(array).to(device)
