"""Run the peer systems of benchmarks/peers.py in the peers environment and score what they produced.

    from benchmarks.peer_runs import run_peer
    notes: list[str] = []
    result = run_peer("st-onnx", reference=(texts, fp32_vectors), notes=notes)  # None if skipped

Each call starts ``.venv-peers/bin/python benchmarks/peers.py SYSTEM`` (build that environment with
``make peers-venv``: sentence-transformers' ONNX and OpenVINO backends need transformers<4.58, so they
cannot live in the project's environment), reads its JSON line and the vectors (or scores) it saved,
and scores them here: STSb-test Spearman, and mean cosine to the caller's fp32 reference vectors (or,
for cross-encoders, Spearman of the scores against reference scores).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import DATA, log, sts_spearman
from benchmarks.interleaved import unit
from benchmarks.peer_systems import SYSTEMS, read_pairs, unique_texts
from edgesbert.evaluation import spearman

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
PEERS_SCRIPT = Path(__file__).resolve().with_name("peers.py")
BI_ENCODERS = [name for name, system in SYSTEMS.items() if system.kind == "bi-encoder"]
CROSS_ENCODERS = [name for name, system in SYSTEMS.items() if system.kind == "cross-encoder"]


@dataclass(frozen=True)
class PeerResult:
    """What one peer system measured, scored against gold and the reference."""

    system: str
    throughput: float  # best timed pass, in ``unit``
    unit: str  # "sentences/s" or "pairs/s"
    latency_p50_ms: float
    latency_p99_ms: float
    latency_of: str  # "one sentence" or "rank 100 documents"
    load_s: float  # loading the exported model (imports not included: see details["import_s"])
    peak_rss_mb: float
    model_mb: float
    spearman: float  # STSb: cosine of the vectors (bi-encoders) or the scores (cross-encoders) vs gold
    mean_cosine: float | None  # bi-encoders: to the reference vector of the same sentence
    score_spearman: float | None  # cross-encoders: scores against the reference scores
    texts: list[str] = field(
        repr=False
    )  # bi-encoders: the sentence of each row of ``output``; cross-encoders: empty
    output: np.ndarray = field(repr=False)  # vectors, or one score per pair of the data file
    details: dict[str, Any] = field(repr=False)  # peers.py's JSON line: import_s, prepare_s, versions...


def peers_available() -> bool:
    return PEERS_PYTHON.exists()


def run_peer(
    system: str,
    *,
    reference: tuple[list[str], np.ndarray] | None = None,
    reference_scores: np.ndarray | None = None,
    data: Path = DATA,
    model: Path | None = None,
    threads: int = 2,
    batch_size: int = 32,
    repeats: int = 3,
    extra: list[str] | None = None,
    notes: list[str] | None = None,
    timeout: float = 3600,
) -> PeerResult | None:
    """Measure ``system`` in the peers environment; None (with a note) if it is missing or the run fails.

    ``reference``: for bi-encoders, (texts, fp32 vectors) with row i embedding texts[i], in any order
    (rows are matched by text). ``reference_scores``: for cross-encoders, one per pair of ``data``
    (an STSb-format CSV: sentence1, sentence2, gold score). ``model``: the
    sentence-transformers folder (required for cross-encoders). ``extra``: more peers.py options, e.g.
    ``["--onnx", "exported/model.onnx"]`` for fastembed or ``["--latency-calls", "50"]``.
    """
    notes = [] if notes is None else notes
    if system not in SYSTEMS:
        raise ValueError(f"unknown peer system {system!r}; known: {', '.join(SYSTEMS)}")
    if model is None and SYSTEMS[system].kind == "cross-encoder":
        raise ValueError(f"{system} needs model=: a local cross-encoder folder")
    if not peers_available():
        _skip(system, f"{PEERS_PYTHON.relative_to(ROOT)} is missing (build it with `make peers-venv`)", notes)
        return None
    with tempfile.TemporaryDirectory() as temp:
        out = Path(temp) / f"{system}.npy"
        command = [str(PEERS_PYTHON), str(PEERS_SCRIPT), system, "--data", str(data), "--out", str(out)]
        command += ["--threads", str(threads), "--batch-size", str(batch_size), "--repeats", str(repeats)]
        command += ["--model", str(model)] if model is not None else []
        command += extra or []
        log(f"peer {system}: {' '.join(command[1:])}")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        try:
            run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            _skip(system, f"timed out after {timeout:.0f} s", notes)
            return None
        if run.returncode != 0:
            tail = " | ".join(run.stderr.strip().splitlines()[-3:])
            _skip(system, f"failed (exit {run.returncode}): {tail:.500}", notes)
            return None
        details = json.loads(run.stdout.strip().splitlines()[-1])
        output = np.load(out)
    return _score(system, details, output, data, reference, reference_scores)


def run_peers(systems: list[str], **kwargs: Any) -> list[PeerResult]:
    """``run_peer`` for each system, leaving out the ones that were skipped."""
    results = [run_peer(system, **kwargs) for system in systems]
    return [r for r in results if r is not None]


def _skip(system: str, reason: str, notes: list[str]) -> None:
    """Log why ``system`` is skipped and add it to ``notes`` (run_peer then returns None)."""
    message = f"peer system {system} skipped: {reason}"
    log(message)
    notes.append(message)


def _score(
    system: str,
    details: dict[str, Any],
    output: np.ndarray,
    data: Path,
    reference: tuple[list[str], np.ndarray] | None,
    reference_scores: np.ndarray | None,
) -> PeerResult:
    pairs = read_pairs(data)
    with data.open(encoding="utf-8", newline="") as f:
        gold = np.array([float(row[2]) for row in csv.reader(f) if len(row) >= 2])
    texts: list[str] = []
    cosine = score_rho = None
    if SYSTEMS[system].kind == "bi-encoder":
        texts = unique_texts(pairs)
        first, second = [a for a, _ in pairs], [b for _, b in pairs]
        rho = sts_spearman(output, texts, first, second, gold)
        if reference is not None:
            ref_texts, ref_vectors = reference
            index = {text: i for i, text in enumerate(ref_texts)}
            expected = unit(np.asarray(ref_vectors)[[index[t] for t in texts]])
            cosine = float((unit(output) * expected).sum(axis=1).mean())
    else:
        scores = output.reshape(len(pairs), -1)[:, 0]
        rho = spearman(scores, gold)
        if reference_scores is not None:
            score_rho = spearman(
                scores, np.asarray(reference_scores, dtype=np.float64).reshape(len(pairs), -1)[:, 0]
            )
    return PeerResult(
        system=system,
        throughput=details["throughput"],
        unit=details["unit"],
        latency_p50_ms=details["latency_p50_ms"],
        latency_p99_ms=details["latency_p99_ms"],
        latency_of=details["latency_of"],
        load_s=details["load_s"],
        peak_rss_mb=details["peak_rss_mb"],
        model_mb=details["model_mb"],
        spearman=rho,
        mean_cosine=cosine,
        score_spearman=score_rho,
        texts=texts,
        output=output,
        details=details,
    )
