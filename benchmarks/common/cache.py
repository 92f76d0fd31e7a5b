"""Folders the benchmarks build once and reuse: named after a model, keyed by its files.

Standard library only: the peers environment (.venv-peers) keys its exports here too.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path


def model_name(folder: Path) -> str:
    """The model's name from its folder (a packaged model sits in a folder called ``model``)."""
    return (folder.parent.name if folder.name == "model" else folder.name).replace("_", "-")


def model_digest(folder: Path) -> str:
    """Config, tokenizer and weights (size, first and last MiB): cheap, changes when the model does."""
    key = hashlib.sha1()
    files = [folder / "config.json", folder / "tokenizer.json"]
    files += sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    for file in files:
        if file.is_file():
            size = file.stat().st_size
            with file.open("rb") as f:
                key.update(f"{file.name}:{size}".encode() + f.read(1 << 20))
                f.seek(max(0, size - (1 << 20)))
                key.update(f.read())
    return key.hexdigest()


def graph_mb(graph: Path) -> float:
    """MB of a graph and its weights (an OpenVINO IR's .bin, an ONNX graph's external data)."""
    files = [graph, graph.with_suffix(".bin")] if graph.suffix == ".xml" else [graph]
    files += graph.parent.glob(f"{graph.name}_data*")  # onnx external data
    return sum(p.stat().st_size for p in files if p.is_file()) / 1e6


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Build ``target`` in a temp folder beside it and move it in place: never a half-written folder."""
    if target.exists():
        return target
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    temp.parent.mkdir(parents=True, exist_ok=True)
    try:
        build(temp)
        os.replace(temp, target)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target
