"""Real sentences shipped with the exporter (STS Benchmark dev, English) for validation."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def stsb_dev() -> tuple[tuple[str, str, float], ...]:
    """All STSb-dev rows: (sentence1, sentence2, score 0-5)."""
    text = resources.files("edgesbert.exporters").joinpath("data/stsb-en-dev.csv").read_text("utf-8")
    return tuple((row[0], row[1], float(row[2])) for row in csv.reader(text.splitlines()) if len(row) == 3)


def validation_sentences(count: int = 512) -> list[str]:
    """``count`` distinct real sentences, in a fixed order."""
    unique = dict.fromkeys(s for row in stsb_dev() for s in row[:2])
    return list(unique)[:count]


def validation_pairs(count: int = 512) -> list[tuple[str, str]]:
    """``count`` real sentence pairs, in a fixed order."""
    return [(a, b) for a, b, _ in stsb_dev()[:count]]
