"""The systems the suite measures, the plan of texts they run, and the workers that time them.

Every system runs in fresh processes of ``benchmarks.suite.worker``: edgesbert variants with this
environment's python through ``edgesbert.runtime``, peers (benchmarks.suite.peers) with
``.venv-peers``' python. The exports they run: benchmarks.common.exports (cached).
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common.cache import graph_mb
from benchmarks.common.exports import BF16
from benchmarks.common.paths import BENCH, PEERS_PYTHON, ROOT

WORKER = "benchmarks.suite.worker"  # python -m WORKER, from the repository's root
CROSS_MODELS = ["stsb-cross-encoder-minilm", "trecqa-reranker-minilm"]  # models/NAME, first found wins

# The variants of the suite's exports (common.exports.BI_EXPORTS, CROSS_EXPORTS) and the backend of each
BI_VARIANTS = {
    "fp32": "onnx", "O2": "onnx", "O2-int8": "onnx", "int8-static": "onnx",
    "packed": "onnx", "packed-int8": "onnx", "packed-int8-static": "onnx",
    "openvino": "openvino", "openvino-int8": "openvino", "openvino-int8-weights": "openvino",
    "openvino-packed": "openvino", "openvino-packed-int8": "openvino",
    "openvino-packed-int8-weights": "openvino",
    **{f"openvino-{q}": "openvino" for q in BF16},
}  # fmt: skip
CROSS_VARIANTS = {
    "fp32": "onnx", "O2-int8": "onnx", "int8-static": "onnx", "packed": "onnx", "packed-int8-static": "onnx",
    "openvino": "openvino", "openvino-int8": "openvino", "openvino-packed": "openvino",
    "openvino-packed-int8": "openvino", **{f"openvino-{q}": "openvino" for q in BF16},
}  # fmt: skip
# Peers: suite name -> (peers.PEERS name, label, precision)
BI_PEERS = {
    "st-torch": ("st-torch", "sentence-transformers torch", "fp32"),
    "st-onnx": ("st-onnx", "sentence-transformers onnx", "fp32"),
    "st-onnx-int8": ("st-onnx-int8", "sentence-transformers onnx int8 (dynamic, avx2)", "int8"),
    "st-openvino": ("st-openvino", "sentence-transformers openvino", "fp32"),
    "st-openvino-int8": ("st-openvino-int8", "sentence-transformers openvino int8 (NNCF static)", "int8"),
    "fastembed-edgesbert-onnx": ("fastembed", "fastembed on edgesbert's fp32 model.onnx", "fp32"),
    "fastembed-st-onnx": ("fastembed", "fastembed on sentence-transformers' onnx/model.onnx", "fp32"),
}
CROSS_PEERS = {
    "st-cross-torch": ("st-cross-torch", "sentence-transformers CrossEncoder torch", "fp32"),
    "st-cross-onnx": ("st-cross-onnx", "sentence-transformers CrossEncoder onnx", "fp32"),
    "st-cross-openvino": ("st-cross-openvino", "sentence-transformers CrossEncoder openvino", "fp32"),
}
HINTS = ["latency", "throughput"]


class WorkerError(RuntimeError):
    """A worker process failed; the message ends with its stderr."""


@dataclass
class System:
    """One system under test: the worker's description of it and what the suite knows about it."""

    name: str  # the suite's name, e.g. "edgesbert-O2-int8"
    label: str  # for tables
    family: str  # "edgesbert onnxruntime", "edgesbert OpenVINO", "sentence-transformers", "fastembed"
    kind: str  # "bi-encoder" / "cross-encoder"
    precision: str  # "fp32" / "int8"
    python: str
    spec: dict[str, Any]  # the worker's "system"
    model_mb: float = float("nan")
    model_file: str = ""
    default: bool = False  # the variant load() picks in its folder (edgesbert only)
    notes: list[str] = field(default_factory=list)


def all_names() -> tuple[list[str], list[str]]:
    bi = [*BI_PEERS, *(f"edgesbert-{v}" for v in BI_VARIANTS)]
    cross = [*CROSS_PEERS, *(f"edgesbert-cross-{v}" for v in CROSS_VARIANTS)]
    return bi, cross


def select(patterns: str | None, names: list[str]) -> list[str]:
    """Names matching any comma-separated glob of ``patterns`` (all if None), in ``names``' order."""
    if not patterns:
        return list(names)
    globs = [p.strip() for p in patterns.split(",") if p.strip()]
    return [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)]


# --- models ---------------------------------------------------------------------------------------


def cross_encoder_model(choice: str | None, base: Path, notes: list[str]) -> Path:
    """``--cross-encoder``, else a trained model in models/, else MiniLM with a random one-label head."""
    if choice:
        return Path(choice).resolve()
    for name in CROSS_MODELS:
        folder = ROOT / "models" / name
        if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
            return folder
    folder = BENCH / "cross-encoder-random-head"
    notes.append(
        f"No trained cross-encoder in models/ ({', '.join(CROSS_MODELS)}) yet: the cross-encoder rows run "
        f"{folder.relative_to(ROOT)}, all-MiniLM-L6-v2 with a random one-label head (torch seed 0), so "
        "their speed is that of a MiniLM-L6 reranker but their scores mean nothing (STSb Spearman is "
        "near zero and near-ties make exact ranking orders fragile)."
    )
    if not (folder / "config.json").is_file():
        import torch

        from edgesbert.reference import CrossEncoder
        from edgesbert.training.save import save_cross_encoder

        torch.manual_seed(0)
        save_cross_encoder(CrossEncoder(base, num_labels=1), folder)
    return folder


# --- systems --------------------------------------------------------------------------------------


def edgesbert_system(name: str, kind: str, folder: Path, variant: str) -> System:
    from edgesbert.runtime.manifest import Manifest

    manifest = Manifest.load(folder)
    graph = manifest.variant(variant)
    family = "edgesbert OpenVINO" if graph.backend == "openvino" else "edgesbert onnxruntime"
    spec = {"runner": "edgesbert", "kind": kind, "folder": str(folder), "variant": variant}
    system = System(name, f"edgesbert {variant}", family, kind, graph.precision.value, sys.executable, spec)
    system.model_mb, system.model_file = graph_mb(folder / graph.file), str(folder / graph.file)
    system.default = manifest.default_variant == variant
    return system


def peer_system(name: str, kind: str, model: Path, onnx: Path | None, threads: int) -> System:
    """A peer, described by a worker in .venv-peers (which exports it first if it is not cached)."""
    peer, label, precision = {**BI_PEERS, **CROSS_PEERS}[name]
    spec: dict[str, Any] = {"runner": "peer", "kind": kind, "peer": peer, "model": str(model)}
    if onnx is not None:
        spec["onnx"] = str(onnx)
    family = "fastembed" if peer == "fastembed" else "sentence-transformers"
    system = System(name, label, family, kind, precision, str(PEERS_PYTHON), spec)
    described = run_worker(system, "describe", {"threads": threads}, timeout=3600)
    spec.update({k: described[k] for k in ("folder", "onnx", "pooled") if k in described})
    system.model_mb, system.model_file = described["model_mb"], described["model_file"]
    return system


# --- the plan and the workers ---------------------------------------------------------------------


def cold_phases(result: dict[str, Any]) -> dict[str, float]:
    """Seconds of each phase of a cold start, from a ``cold`` worker's stamps and its ``spawned``."""
    return {
        "import_s": result["imported"] - result["spawned"],
        "load_s": result["loaded"] - result["imported"],
        "first_s": result["embedded"] - result["loaded"],
        "total_s": result["embedded"] - result["spawned"],
    }


def spread(items: list[Any], count: int) -> list[Any]:
    """``count`` items evenly spaced over ``items`` (sorted longest first: all lengths, short to long)."""
    if count <= 1:
        return items[len(items) // 2 : len(items) // 2 + 1]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def budget_batches(token_counts: list[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive batches, each holding at most ``budget`` padded tokens (count × its longest)."""
    batches, start, longest = [], 0, 0
    for i, count in enumerate(token_counts):
        if i > start and (i - start + 1) * max(longest, count) > budget:
            batches.append((start, i))
            start, longest = i, 0
        longest = max(longest, count)
    batches.append((start, len(token_counts)))
    return batches


def make_plan(texts: list[str], pairs: list[tuple[str, str]], tokenizer: Path, max_length: int,
              settings: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """What every worker runs: texts (longest first), token-budget batches, latency samples, rank queries."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer))
    tok.enable_truncation(max_length=max_length)
    counts = [len(e.ids) for e in tok.encode_batch(texts)]
    budget = budget_batches(counts, settings["token_budget"])
    docs = settings["rank_docs"]
    starts = spread(list(range(len(pairs))), settings["rank_calls"])
    rank = [(pairs[s][0], [pairs[(s + j) % len(pairs)][1] for j in range(docs)]) for s in starts]
    return {
        "texts": texts,
        "budget": budget,
        "budget_sizes": [b - a for a, b in budget],
        "token_counts": counts,
        "latency_texts": spread(texts, settings["latency_calls"]),
        "batch_texts": {str(n): spread(texts, n) for n in settings["batch_sizes"] if n > 1},
        "batch_calls": settings["batch_calls"],
        "pairs": pairs,
        "rank": rank,
    }


def run_worker(system: System, mode: str, job: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """Run one fresh worker process; its JSON result, with ``spawned``: the wall clock just before."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=BENCH, delete=False) as f:
        json.dump({**job, "system": system.spec}, f)
    try:
        spawned = time.time()
        done = subprocess.run(
            [system.python, "-m", WORKER, mode, f.name],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as e:
        raise WorkerError(f"{system.name} {mode}: timed out after {timeout:.0f} s") from e
    finally:
        os.unlink(f.name)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise WorkerError(f"{system.name} {mode}: exit {done.returncode}\n{tail}")
    return {**json.loads(lines[-1]), "spawned": spawned, "wall_s": time.time() - spawned}
