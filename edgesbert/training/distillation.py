"""Multilingual knowledge distillation (Reimers & Gurevych, 2020): parallel data and its examples.

A student learns to map a sentence and its translation to the teacher's embedding of the sentence.
Each example is (source, translation) labelled with the teacher's vector of the source; train it
with ``MSELoss``::

    pairs = read_parallel_stsb(data_folder, "de", split="train")
    examples = distillation_examples(teacher, pairs)
    Trainer(BiEncoderTask(student, MSELoss()), config, output_folder=out).fit(examples)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgesbert.training.data import Example, read_sts_csv

if TYPE_CHECKING:
    from edgesbert.runtime.encoding import SentenceEncoder

SPLITS = ("train", "dev", "test")


def parallel_sentences(source_file: str | Path, target_file: str | Path) -> list[tuple[str, str]]:
    """(sentence, translation) pairs from two STS CSV files holding the same rows in two languages.

    Both sentence columns of every row are used; repeated pairs are kept once, in file order.

    Raises:
        ValueError: the files have different numbers of rows or their scores differ (not parallel).
    """
    source, target = read_sts_csv(source_file), read_sts_csv(target_file)
    if len(source) != len(target):
        raise ValueError(f"{source_file} has {len(source)} rows, {target_file} {len(target)}: not parallel")
    pairs: dict[tuple[str, str], None] = {}
    for line, (a, b) in enumerate(zip(source, target, strict=True), start=1):
        if a.score != b.score:
            raise ValueError(
                f"row {line} has score {a.score} in {source_file} but {b.score} in {target_file}"
            )
        pairs[(a.sentence1, b.sentence1)] = None
        pairs[(a.sentence2, b.sentence2)] = None
    return list(pairs)


def stsb_file(folder: str | Path, language: str, split: str) -> Path:
    """The path of ``stsb-{language}-{split}.csv`` in a stsb-multi-mt folder."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = Path(folder) / f"stsb-{language}-{split}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; expected the stsb-multi-mt files stsb-LANG-SPLIT.csv")
    return path


def read_parallel_stsb(
    folder: str | Path, target_language: str, *, split: str = "train", source_language: str = "en"
) -> list[tuple[str, str]]:
    """(English sentence, translation) pairs from the stsb-multi-mt files of ``split``."""
    return parallel_sentences(
        stsb_file(folder, source_language, split), stsb_file(folder, target_language, split)
    )


def distillation_examples(
    teacher: SentenceEncoder,
    pairs: Sequence[tuple[str, str]],
    *,
    batch_size: int = 64,
    show_progress_bar: bool = False,
) -> list[Example]:
    """Examples (source, translation) labelled with the teacher's embedding of the source.

    The teacher embeds every distinct source sentence once, in batches; any ``SentenceEncoder``
    serves, e.g. an exported int8 runtime model for speed.
    """
    sources = list(dict.fromkeys(source for source, _ in pairs))
    vectors = teacher.encode(sources, batch_size=batch_size, show_progress_bar=show_progress_bar)
    index = {source: i for i, source in enumerate(sources)}
    return [
        Example((source, target), np.array(vectors[index[source]], dtype=np.float32))
        for source, target in pairs
    ]
