"""Where the benchmarks read and write."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
RESULTS = ROOT / "benchmarks" / "results"  # the reports, one per benchmark (and per kind of CPU)
BENCH = ROOT / "build" / "bench"  # exports, references, plans, environments: everything a run reuses
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"  # the peer tools' environment (make peers-venv)
