"""Fixtures of the desktop app's tests: Qt offscreen, engines on tiny models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# before pytest-qt makes the QApplication: no display is needed
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6", reason='the desktop app needs pip install "edgesbert[desktop]"')

from examples.desktop.engine import Engine


@pytest.fixture(scope="session")
def tiny_engine(exported) -> Engine:
    """The app's engine on the tiny bi-encoder and the tiny one-label cross-encoder."""
    engine = Engine(exported("bert-mean"), exported("bert-1", kind="cross-encoder"))
    yield engine
    engine.close()


def write_files(folder: Path, files: dict[str, str | bytes]) -> Path:
    """Write ``files`` (relative name -> text or bytes) under ``folder``; returns ``folder``."""
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder
