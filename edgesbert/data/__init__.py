"""Texts shipped with edgesbert (see README.md here): read by the exporter and by the layers alike."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).parent


@lru_cache(maxsize=1)
def english_sentences() -> tuple[str, ...]:
    """1,000 English STS Benchmark train sentences, unique, in file order (calibration of int8 ranges)."""
    lines = (DATA / "calibration-en.txt").read_text("utf-8").splitlines()
    return tuple(dict.fromkeys(line for line in lines if line.strip()))
