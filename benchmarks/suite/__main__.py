"""The benchmark suite: every system, every figure of issue 6, in one run on the same texts and threads.

    python -m benchmarks.suite [--quick] [--rounds 3] [--threads 2] [--systems GLOBS] [--no-cross]
                               [--no-install] [--cross-encoder FOLDER] [--output DIR]

Bi-encoders (all-MiniLM-L6-v2 by default): sentence-transformers torch / onnx / onnx-int8 / openvino /
openvino-int8 and fastembed (on edgesbert's fp32 model.onnx and on sentence-transformers' own), all in
.venv-peers (benchmarks.suite.peers), and every edgesbert variant (ONNX fp32, O2, O2-int8, int8-static;
OpenVINO fp32, int8, int8-weights; the packed twin of each) through the runtime with both performance hints.
Figures: throughput at batch 32 and over token-budget batches, one-sentence latency p50/p99, latency by
batch size, cold start and peak RSS of fresh processes, model file size, STSb-test Spearman and mean cosine
to the edgesbert PyTorch reference. Cross-encoders (a model from models/ if trained, else MiniLM with a
random head): pairs/s, latency of ranking 100 documents and agreement with PyTorch. Install size of the
runtime against a CPU sentence-transformers install. Every system runs in fresh processes, once per round,
in an order rotated each round; ratios are taken within a round, then medianed.

Writes benchmarks/results/suite-<CPU kind>.md (suite-amd-avx2.md, suite-intel-avx512-vnni.md,
suite-intel-amx.md: one per kind of CPU, side by side), its .json and two plots (``--quick``: into
build/bench/quick/).
``--systems`` takes comma-separated globs of names (``--list`` prints them), e.g. ``'edgesbert-*,st-torch'``.
``--prepare-only`` fills the caches (exports, peer exports, install environments) without timing anything.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import stsb_test, unique_texts
from benchmarks.common.exports import (
    BI_EXPORTS,
    CROSS_EXPORTS,
    cached_export,
    reference_scores,
    reference_vectors,
)
from benchmarks.common.machine import cpu_flags, cpu_kind, machine
from benchmarks.common.paths import BENCH, PEERS_PYTHON, RESULTS, ROOT
from benchmarks.common.timing import log, versions
from benchmarks.suite.accuracy import bi_accuracy, cross_accuracy
from benchmarks.suite.systems import (
    BI_VARIANTS,
    CROSS_VARIANTS,
    HINTS,
    System,
    WorkerError,
    all_names,
    cold_phases,
    cross_encoder_model,
    edgesbert_system,
    make_plan,
    peer_system,
    run_worker,
    select,
)

QUICK = {"pairs": 150, "rounds": 1, "latency_calls": 20, "batch_calls": 2, "rank_calls": 3, "cold_runs": 1}
FULL = {"pairs": 0, "rounds": 3, "latency_calls": 200, "batch_calls": 3, "rank_calls": 10, "cold_runs": 1}
DEV_PACKAGES = [
    "edgesbert",
    "onnxruntime",
    "openvino",
    "nncf",
    "tokenizers",
    "numpy",
    "torch",
    "transformers",
]
DEV_PACKAGES += ["sentence-transformers", "onnx"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.suite",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 round, 150 pairs, few calls")
    parser.add_argument("--model", default="sentence-transformers/all-MiniLM-L6-v2", help="bi-encoder")
    parser.add_argument("--cross-encoder", help="cross-encoder folder (default: models/, else random head)")
    parser.add_argument("--systems", help="comma-separated globs of system names (default: all)")
    parser.add_argument("--list", action="store_true", help="print the system names and exit")
    parser.add_argument("--no-cross", action="store_true", help="leave out the cross-encoders")
    parser.add_argument("--no-install", action="store_true", help="leave out the install sizes")
    parser.add_argument(
        "--prepare-only", action="store_true", help="exports, peer exports, install environments; no timing"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--token-budget", type=int, default=4096, help="padded tokens per budget batch")
    parser.add_argument("--rounds", type=int, help="default 3 (--quick: 1)")
    parser.add_argument("--pairs", type=int, help="first N STSb-test pairs (default all; --quick: 150)")
    parser.add_argument("--latency-calls", type=int, help="one-sentence calls per round (default 200)")
    parser.add_argument("--batch-calls", type=int, help="calls per batch size per round (default 3)")
    parser.add_argument("--rank-calls", type=int, help="queries ranked per round (default 10)")
    parser.add_argument("--rank-docs", type=int, default=100)
    parser.add_argument(
        "--budget-rounds", type=int, default=1, help="rounds that time the token-budget batches (first N)"
    )
    parser.add_argument("--cold-runs", type=int, help="cold-start processes per system per round (1)")
    parser.add_argument("--output", type=Path, help="results folder (default benchmarks/results)")
    args = parser.parse_args()
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.output = args.output or (BENCH / "quick" if args.quick else RESULTS)
    return args


# --- systems and references -----------------------------------------------------------------------


def bi_systems(names: list[str], model: Path, threads: int, notes: list[str]) -> list[System]:
    needs = {BI_VARIANTS[n.removeprefix("edgesbert-")] for n in names if n.startswith("edgesbert-")}
    if "fastembed-edgesbert-onnx" in names:
        needs.add("onnx")
    folders = {b: cached_export(model, b, BI_EXPORTS[b], notes) for b in sorted(needs)}
    systems = []
    for name in names:
        if name.startswith("edgesbert-"):
            variant = name.removeprefix("edgesbert-")
            systems.append(edgesbert_system(name, "bi-encoder", folders[BI_VARIANTS[variant]], variant))
            systems[-1].spec["batch_latency"] = True
        elif _peers_ok(name, notes):
            onnx = folders["onnx"] / "onnx" / "model.onnx" if name == "fastembed-edgesbert-onnx" else None
            systems.append(peer_system(name, "bi-encoder", model, onnx, threads))
            systems[-1].spec["batch_latency"] = name == "st-torch"
    return systems


def cross_systems(names: list[str], model: Path, threads: int, notes: list[str]) -> list[System]:
    needs = {CROSS_VARIANTS[n.removeprefix("edgesbert-cross-")] for n in names if n.startswith("edgesbert-")}
    folders = {b: cached_export(model, b, CROSS_EXPORTS[b], notes) for b in sorted(needs)}
    systems = []
    for name in names:
        if name.startswith("edgesbert-"):
            variant = name.removeprefix("edgesbert-cross-")
            systems.append(edgesbert_system(name, "cross-encoder", folders[CROSS_VARIANTS[variant]], variant))
        elif _peers_ok(name, notes):
            systems.append(peer_system(name, "cross-encoder", model, None, threads))
    return systems


def _peers_ok(name: str, notes: list[str]) -> bool:
    if PEERS_PYTHON.exists():
        return True
    notes.append(f"{name} skipped: {PEERS_PYTHON.relative_to(ROOT)} is missing (`make peers-venv`).")
    return False


# --- rounds ---------------------------------------------------------------------------------------


def rotate(items: list[System], shift: int) -> list[System]:
    shift %= max(1, len(items))
    return items[shift:] + items[:shift]


FIGURES = {"bi-encoder": ("batch", "budget"), "cross-encoder": ("pairs", "rank")}


def first_hints(system: System) -> dict[str, list[str]]:
    """Round 1 measures every figure under every hint the system has; latency under the latency hint."""
    hints = HINTS if system.spec["runner"] == "edgesbert" else ["default"]
    return {"latency": hints[:1], **{figure: list(hints) for figure in FIGURES[system.kind]}}


def later_hints(system: System, first: dict[str, Any] | None) -> dict[str, list[str]]:
    """Later rounds measure each figure only under the hint that won it in round 1."""
    wanted = first_hints(system)
    if first is None or len(wanted["latency"]) == 0:
        return wanted
    measured = first["hints"]
    for figure in FIGURES[system.kind]:
        key = "rank_p50_ms" if figure == "rank" else figure
        sign = -1 if figure == "rank" else 1
        candidates = [h for h in wanted[figure] if key in measured.get(h, {})]
        if candidates:
            wanted[figure] = [max(candidates, key=lambda h: sign * measured[h][key])]
    return wanted


def measure(bi: list[System], cross: list[System], plan: Path, args: argparse.Namespace,
            sentence: str, notes: list[str]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """``args.rounds`` rounds: each runs every system's speed process (bi-encoders, then cross-encoders),
    then the bi-encoders' cold starts, each list in an order rotated by one per round. Round 1 measures
    every hint; later rounds only the hint that won each figure in round 1. A system that fails is
    dropped."""
    runs = BENCH / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    raw: dict[str, dict[str, Any]] = {
        s.name: {"speed": [None] * args.rounds, "cold": [[] for _ in range(args.rounds)]} for s in bi + cross
    }
    failed: set[str] = set()
    common = {"plan": str(plan), "threads": args.threads, "batch_size": args.batch_size}

    def attempt(system: System, mode: str, job: dict[str, Any]) -> dict[str, Any] | None:
        if system.name in failed:
            return None
        try:
            return run_worker(system, mode, {**common, **job})
        except WorkerError as e:
            log(f"FAILED {e}")
            last = " | ".join(str(e).splitlines()[-2:])
            notes.append(f"{system.name} failed and was dropped: {last[-500:]}")
            failed.add(system.name)
            return None

    began = time.perf_counter()
    for r in range(args.rounds):
        for system in rotate(bi, r) + rotate(cross, r):
            out = runs / f"{system.name}-r{r}.npy"
            hints = first_hints(system) if r == 0 else later_hints(system, raw[system.name]["speed"][0])
            if r >= args.budget_rounds and "budget" in hints:
                hints["budget"] = []
            result = attempt(system, "speed", {"out": str(out), "figure_hints": hints})
            if result is not None:
                raw[system.name]["speed"][r] = {**result, "out": str(out)}
                log(f"round {r + 1} {system.name} ({result['wall_s']:.0f} s): {_summary(result)}")
        for system in rotate(bi, r):
            hint = first_hints(system)["latency"][0]
            for _ in range(args.cold_runs):
                result = attempt(system, "cold", {"sentence": sentence, "hint": hint})
                if result is not None:
                    cold = cold_phases(result)
                    raw[system.name]["cold"][r].append(cold)
                    log(f"round {r + 1} {system.name} cold start: {cold['total_s']:.2f} s")
        log(f"round {r + 1}/{args.rounds} done after {time.perf_counter() - began:.0f} s")
    return raw


def _summary(result: dict[str, Any]) -> str:
    parts = []
    for hint, figures in result["hints"].items():
        parts.append(f"{hint}: " + ", ".join(f"{k} {v:.0f}" for k, v in figures.items()))
    if "latency_p50_ms" in result:
        parts.append(f"p50 {result['latency_p50_ms']:.2f} ms, peak RSS {result['peak_rss_mb']:.0f} MB")
    return "; ".join(parts)


# --- main -----------------------------------------------------------------------------------------


@dataclass
class Setup:
    """Everything a run measures: the systems, the texts and the plan the workers read."""

    bi: list[System]
    cross: list[System]
    model: Path
    cross_model: Path | None
    sts: tuple  # texts (longest first), first sentences, second sentences, gold scores
    plan: dict[str, Any]
    plan_file: Path
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def prepare(args: argparse.Namespace, bi_names: list[str], cross_names: list[str]) -> Setup:
    """Exports (cached), peers described, the plan written; nothing timed yet."""
    from edgesbert.resolve import resolve_model
    from edgesbert.runtime.manifest import Manifest

    BENCH.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    first, second, gold = stsb_test()
    if args.pairs:
        first, second, gold = first[: args.pairs], second[: args.pairs], gold[: args.pairs]
    texts = unique_texts(first, second)
    model = resolve_model(args.model, allow_download=False)
    cross_model = cross_encoder_model(args.cross_encoder, model, notes) if cross_names else None
    bi = bi_systems(bi_names, model, args.threads, notes)
    cross = cross_systems(cross_names, cross_model, args.threads, notes) if cross_model else []
    settings = {
        "threads": args.threads, "batch_size": args.batch_size, "token_budget": args.token_budget,
        "rounds": args.rounds, "pairs": len(first), "texts": len(texts), "latency_calls": args.latency_calls,
        "batch_calls": args.batch_calls, "batch_sizes": [1, 8, 32, 128], "rank_calls": args.rank_calls,
        "rank_docs": args.rank_docs, "cold_runs": args.cold_runs * args.rounds, "quick": args.quick,
        "budget_rounds": min(args.budget_rounds, args.rounds),
    }  # fmt: skip
    onnx = cached_export(model, "onnx", BI_EXPORTS["onnx"], notes)  # its tokenizer cuts the budget batches
    pairs = list(zip(first, second, strict=True))
    plan = make_plan(texts, pairs, onnx / "tokenizer.json", Manifest.load(onnx).max_seq_length, settings)
    plan_file = BENCH / "plan.json"
    plan_file.write_text(json.dumps(plan))
    settings["budget_batches"] = len(plan["budget"])
    sts = (texts, first, second, gold)
    return Setup(bi, cross, model, cross_model, sts, plan, plan_file, settings, notes)


def collect(setup: Setup, raw: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The figures of the report: measurements, accuracy against the PyTorch references, versions."""
    figures: dict[str, Any] = {
        "machine": machine(),
        "cpu_flags": cpu_flags(),
        "cpu_kind": cpu_kind(),
        "model_name": args.model,
        "settings": setup.settings,
        "model": str(setup.model),
        "cross_model": str(setup.cross_model) if setup.cross_model else None,
        "versions": {"dev": versions(DEV_PACKAGES)},
        "bi": {},
        "cross": {},
        "notes": setup.notes,
    }
    if setup.bi:
        expected = reference_vectors(setup.model, setup.sts[0], args.threads)
        expected /= np.linalg.norm(expected, axis=1, keepdims=True)
        for system in setup.bi:
            accuracy = bi_accuracy(raw, system.name, setup.sts, expected)
            figures["bi"][system.name] = _entry(system, raw) | accuracy
    if setup.cross and setup.cross_model:
        scores = reference_scores(setup.cross_model, setup.plan["pairs"], args.threads)
        torch_run = next((run for run in raw.get("st-cross-torch", {}).get("speed", []) if run), None)
        orders = torch_run["orders"]["default"] if torch_run else None
        for system in setup.cross:
            accuracy = cross_accuracy(raw, system.name, setup.sts[3], scores, orders)
            figures["cross"][system.name] = _entry(system, raw) | accuracy
    peer_versions = [run["versions"] for s in setup.bi + setup.cross if s.spec["runner"] == "peer"
                     for run in raw[s.name]["speed"] if run]  # fmt: skip
    if peer_versions:
        figures["versions"]["peers"] = peer_versions[0]
    return figures


def main() -> None:
    args = parse_args()
    bi_names, cross_names = all_names()
    if args.list:
        print("\n".join(bi_names + cross_names))
        return
    bi_names = select(args.systems, bi_names)
    cross_names = [] if args.no_cross else select(args.systems, cross_names)
    began = time.perf_counter()
    setup = prepare(args, bi_names, cross_names)
    seconds = time.perf_counter() - began
    log(f"prepared {len(setup.bi)} bi- and {len(setup.cross)} cross-encoders in {seconds:.0f} s")
    if args.prepare_only:
        reference_vectors(setup.model, setup.sts[0], args.threads)
        if setup.cross_model:
            reference_scores(setup.cross_model, setup.plan["pairs"], args.threads)
        if not args.no_install:
            from benchmarks.suite.install import install_sizes

            install_sizes()
        return
    raw = measure(setup.bi, setup.cross, setup.plan_file, args, setup.sts[1][0], setup.notes)
    figures = collect(setup, raw, args)
    if not args.no_install:
        from benchmarks.suite.install import install_sizes

        figures["install"] = install_sizes()
    figures["seconds"] = time.perf_counter() - began
    from benchmarks.suite.report import write_report

    report = write_report(figures, args.output)
    log(f"took {figures['seconds']:.0f} s; wrote {report}")


def _entry(system: System, raw: dict[str, Any]) -> dict[str, Any]:
    speed = [None if run is None else {k: v for k, v in run.items() if k not in ("versions", "out", "orders")}
             for run in raw[system.name]["speed"]]  # fmt: skip
    return {
        "label": system.label,
        "family": system.family,
        "precision": system.precision,
        "default_variant": system.default,
        "model_mb": system.model_mb,
        "model_file": str(Path(system.model_file).relative_to(ROOT))
        if system.model_file.startswith(str(ROOT))
        else system.model_file,
        "rounds": speed,
        "cold": raw[system.name]["cold"],
    }


if __name__ == "__main__":
    main()
