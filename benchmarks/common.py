"""Shared helpers of the benchmarks: the STSb test data, the machine's description, logging."""

from __future__ import annotations

import csv
import os
import platform
import sys
from pathlib import Path

import numpy as np

from edgesbert.evaluation import spearman
from edgesbert.runtime.cpu import this_cpu

DATA = Path(__file__).resolve().parents[1] / "data" / "stsb-en-test.csv"


def stsb_test() -> tuple[list[str], list[str], np.ndarray]:
    """STSb-test: first sentences, second sentences and gold scores (0-5)."""
    with DATA.open(encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if len(row) == 3]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


def unique_texts(first: list[str], second: list[str]) -> list[str]:
    """The unique sentences of both columns, longest first (as ``encode()`` orders them)."""
    return sorted(dict.fromkeys(first + second), key=len, reverse=True)


def sts_spearman(
    vectors: np.ndarray, texts: list[str], first: list[str], second: list[str], gold: np.ndarray
) -> float:
    """Spearman of cosine similarity against gold scores; ``vectors[i]`` embeds ``texts[i]``."""
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    index = {s: i for i, s in enumerate(texts)}
    a, b = vectors[[index[s] for s in first]], vectors[[index[s] for s in second]]
    return spearman((a * b).sum(axis=1), gold)


def machine() -> str:
    """One line describing this machine."""
    return f"{this_cpu().name}, {os.cpu_count()} cores, Python {platform.python_version()}"


def cpu_flags() -> str:
    """Which of the SIMD extensions that decide int8 and fp16 speed this CPU has."""
    flags = this_cpu().flags
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"]
    return ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in wanted)


def cpu_kind() -> str:
    """A short name for the class of CPU the figures hold for, from its widest int8 instructions."""
    flags = this_cpu().flags
    for flag, kind in [("amx_int8", "amx"), ("avx512_vnni", "avx512-vnni"), ("avx512f", "avx512"),
                       ("avx2", "avx2"), ("asimddp", "arm64-dotprod"), ("asimd", "arm64")]:  # fmt: skip
        if flag in flags:
            return kind
    return "generic"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
