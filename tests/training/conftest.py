"""Fixtures of the training tests: real STSb pairs from the repository's data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesbert.training.data import ScoredPair, read_sts_csv
from tests.threads import torch_threads

STSB_TEST = Path(__file__).resolve().parents[2] / "data" / "stsb-en-test.csv"


@pytest.fixture(scope="session")
def sts_pairs() -> list[ScoredPair]:
    """The first 200 STSb-test rows (scores 0..5)."""
    return read_sts_csv(STSB_TEST)[:200]


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine they lose a lot: one thread."""
    with torch_threads(1):
        yield
