"""Throughput of several encoders in one process, timed in interleaved rounds.

Used where the systems under test differ only in their graph (variants, quantization settings), so that
one process can hold them all and a burst of load from other processes slows all of them alike (packing,
static, int8.presets). The suite (benchmarks.suite) times each system in fresh processes instead.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from benchmarks.common.timing import log, timed


@dataclass
class Encoder:
    """One encoder under test and what was measured on it."""

    name: str
    variant: str
    encode: Callable[[list[str]], np.ndarray]
    megabytes: float
    speeds: list[float] = field(default_factory=list)
    vectors: np.ndarray | None = None


def arguments(description: str) -> argparse.ArgumentParser:
    """The options of every script built on these rounds (MODEL, --repeats, --threads, --batch-size,
    --no-save); the script adds its own."""
    from edgesbert import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per variant (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-save", action="store_true", help="print the report only")
    return parser


def measure(encoders: list[Encoder], texts: list[str], repeats: int, batch: int) -> None:
    """Time every encoder ``repeats`` times over all of ``texts``, finely interleaved.

    ``texts`` come sorted longest first, so a chunk of whole batches is encoded in exactly the batches a
    single call on all texts would use. Each round runs every encoder on one chunk before moving to the
    next (rotating the order of encoders each round), so a burst of load from other processes slows all
    encoders alike instead of whichever happened to be running.
    """
    chunk = batch * 10
    for encoder in encoders:
        encoder.encode(texts[:batch])  # warm-up: graph loading, allocations, thread pools
    for round_ in range(repeats):
        shift = round_ % len(encoders)
        order = encoders[shift:] + encoders[:shift]
        seconds = dict.fromkeys(map(id, order), 0.0)
        parts: dict[int, list[np.ndarray]] = {id(e): [] for e in order}
        for begin in range(0, len(texts), chunk):
            for encoder in order:
                took, vectors = timed(encoder.encode, texts[begin : begin + chunk])
                parts[id(encoder)].append(vectors)
                seconds[id(encoder)] += took
        for encoder in order:
            encoder.speeds.append(len(texts) / seconds[id(encoder)])
            if encoder.vectors is None:
                encoder.vectors = np.concatenate(parts[id(encoder)])
        speeds = ", ".join(f"{e.variant}: {e.speeds[-1]:.0f}" for e in order)
        log(f"round {round_ + 1}/{repeats} (sentences/s) {speeds}")


def speedup(encoder: Encoder, base: Encoder | None) -> str:
    """Median over rounds of the ratio of throughputs measured in the same round."""
    if base is None:
        return "–"
    ratios = np.array(encoder.speeds) / np.array(base.speeds)
    return f"{np.median(ratios):.2f}×"
