"""The exports the benchmarks time, and the PyTorch reference's outputs they are compared with; both cached.

Exports go to build/bench/exports, keyed by the exporter's source, the tool versions, the model's files and
the export options, so a second run reuses them; the reference's vectors and scores to build/bench/reference,
keyed by the model and the texts.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.cache import model_digest, model_name
from benchmarks.common.paths import BENCH, ROOT
from benchmarks.common.timing import log
from edgesbert.runtime.cpu import has_bf16

# what makes an export: the exporter, the reference it traces and the manifest format (not the runtime)
EXPORT_SOURCES = ["exporters", "edgesbert/reference", "edgesbert/runtime/manifest.py"]
EXPORT_PACKAGES = ["torch", "transformers", "onnx", "onnxruntime", "openvino", "nncf", "tokenizers"]

# The suite's exports (also profiled by int8.profile and floors): backend -> (optimize, quantize, packed).
# bf16 only where the CPU has it (the exporter refuses it elsewhere). Packed: each variant's packed twin
# beside it (issue 29).
BF16 = ["bf16"] if has_bf16() else []
BI_EXPORTS = {
    "onnx": ("O2", ["int8", "int8-static"], True), "openvino": (None, ["int8", "int8-weights", *BF16], True),
}  # fmt: skip
CROSS_EXPORTS = {"onnx": ("O2", ["int8", "int8-static"], True), "openvino": (None, ["int8", *BF16], True)}


def exporter_digest() -> str:
    """The exporter's and the reference's source files and the versions of the tools the export uses."""
    key = hashlib.sha1()
    for source in EXPORT_SOURCES:
        path = ROOT / source
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file() and "__pycache__" not in file.parts:
                key.update(str(file.relative_to(ROOT)).encode() + file.read_bytes())
    for package in EXPORT_PACKAGES:
        try:
            key.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            continue
    return key.hexdigest()


_EXPORTED: dict[tuple, Path] = {}  # this run's exports: the exporter's source may change while it runs


def cached_export(model: Path, backend: str, options: tuple, notes: list[str], tag: str = "") -> Path:
    """``export_model`` into build/bench/exports, reused while the exporter, the tools and the model are
    unchanged; older exports of the same model, backend and ``tag`` are removed (a script that exports
    other options than the suite's passes its own tag). Once per run and model."""
    key = (model, backend, repr(options), tag)
    if key not in _EXPORTED:
        name = model_name(model) + (f"-{tag}" if tag else "")
        _EXPORTED[key] = _export(model, name, backend, options, notes)
    return _EXPORTED[key]


def _export(model: Path, name: str, backend: str, options: tuple, notes: list[str]) -> Path:
    optimize, quantize, packed = options
    key = hashlib.sha1(
        (exporter_digest() + model_digest(model) + json.dumps([backend, optimize, quantize, packed])).encode()
    ).hexdigest()[:10]
    target = BENCH / "exports" / f"{name}-{backend}-{key}"
    note_file = target.with_name(target.name + ".notes.json")
    if (target / "edgesbert.json").is_file():
        notes += json.loads(note_file.read_text()) if note_file.is_file() else []
        return target
    for old in target.parent.glob(f"{name}-{backend}-*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    from edgesbert.errors import ValidationFailedError
    from edgesbert.exporters import Tolerance, export_model

    settings = {"backend": backend, "optimize": optimize, "quantize": quantize, "packed": packed}
    log(f"exporting {model} ({settings}) to {target}")
    start, mine = time.perf_counter(), []
    try:
        export_model(model, target, **settings)
    except ValidationFailedError as e:
        loose = Tolerance(max_spearman_drop=0.03, min_mean_cosine=0.85, min_score_spearman=0.9)
        log(f"{e}\nretrying with {loose}")
        export_model(model, target, **settings, tolerance=loose)
        mine.append(
            f"{target.name}: a variant failed the default validation tolerance ({e}); exported with {loose}."
        )
    note_file.write_text(json.dumps(mine))
    notes += mine
    log(f"exported in {time.perf_counter() - start:.0f} s")
    return target


# --- the PyTorch reference ------------------------------------------------------------------------


def cached_array(kind: str, model: Path, items: list[Any], compute: Callable[[], Any]) -> np.ndarray:
    """The PyTorch reference's vectors or scores for ``items``, computed once per model and items."""
    key = hashlib.sha1((model_digest(model) + json.dumps(items)).encode()).hexdigest()[:12]
    path = BENCH / "reference" / f"{kind}-{model_name(model)}-{key}.npy"
    if path.is_file():
        return np.load(path)
    log(f"computing the PyTorch reference {kind} for {len(items)} items")
    values = np.asarray(compute(), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, values)
    return values


def reference_vectors(model: Path, texts: list[str], threads: int) -> np.ndarray:
    """The edgesbert PyTorch reference's embeddings of ``texts`` (batch 32)."""

    def compute() -> np.ndarray:
        import torch

        from edgesbert.reference import BiEncoder

        torch.set_num_threads(threads)
        return BiEncoder(model).encode(texts, batch_size=32)

    return cached_array("bi", model, texts, compute)


def reference_scores(model: Path, pairs: list[tuple[str, str]], threads: int) -> np.ndarray:
    """The edgesbert PyTorch reference's scores of ``pairs`` (first label, batch 32)."""

    def compute() -> np.ndarray:
        import torch

        from edgesbert.reference import CrossEncoder

        torch.set_num_threads(threads)
        return CrossEncoder(model).predict(pairs, batch_size=32).reshape(len(pairs), -1)[:, 0]

    return cached_array("cross", model, pairs, compute)
