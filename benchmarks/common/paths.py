"""Where the benchmarks read and write."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
RESULTS = ROOT / "benchmarks" / "results"  # the reports, one per benchmark (and per kind of CPU)
BENCH = ROOT / "build" / "bench"  # exports, references, plans, environments: everything a run reuses
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"  # the peer tools' environment (make peers-venv)


def scratch(prefix: str) -> Path:
    """A temporary folder for this run's own exports, removed when the run ends."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
