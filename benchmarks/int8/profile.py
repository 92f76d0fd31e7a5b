"""Where the time goes: per-operator time of the fp32 and int8 graphs, onnxruntime and OpenVINO.

    python -m benchmarks.int8.profile [MODEL] [--batches 8] [--threads 2] [--batch-size 32] [--rounds 5]

Takes the suite's exports of the model (build/bench/exports, made if missing), runs the same batches of
STSb-test sentences (longest first, as ``encode()`` orders them) through each graph with its backend's
own profiler (onnxruntime session profiling; OpenVINO performance counters), in rounds, and adds up the
time of each operator and kernel of each graph's fastest round. Writes benchmarks/results/int8-profile.md:
which kernels int8 speeds up on this CPU and which it does not (why int8 pays less here than with VNNI).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.common.data import stsb_test, unique_texts
from benchmarks.common.exports import BI_EXPORTS, cached_export
from benchmarks.common.machine import cpu_flags, machine
from benchmarks.common.paths import RESULTS
from benchmarks.common.timing import log
from edgesbert.runtime.manifest import Manifest
from edgesbert.runtime.tokenizer import TextTokenizer

Features = dict[str, np.ndarray]
Profile = Counter[tuple[str, str]]  # (operator, kernel) -> milliseconds over all timed batches
GRAPHS = {"onnx": ["fp32", "O2", "O2-int8"], "openvino": ["openvino", "openvino-int8"]}


def batches(folder: Path, count: int, size: int) -> list[Features]:
    """``count`` batches of ``size`` STSb-test sentences, tokenized as the runtime does."""
    manifest = Manifest.load(folder)
    tokenizer = TextTokenizer(folder, manifest.tokenizer, manifest.max_seq_length)
    texts = unique_texts(*stsb_test()[:2])
    step = max(1, len(texts) // (count * size))  # spread over the lengths, longest first
    chosen = texts[::step][: count * size]
    return [tokenizer(chosen[i : i + size]) for i in range(0, len(chosen), size)]


def profile_onnxruntime(graph: Path, feeds: list[Features], threads: int) -> Profile:
    """Kernel time by operator from onnxruntime's session profile (first batch not counted)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "edgesbert-profile")
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for feed in feeds:
        session.run(None, {n: feed[n] for n in names})
    trace = Path(session.end_profiling())
    events = json.loads(trace.read_text())
    trace.unlink()
    first = next(e for e in events if e.get("name") == "model_run")  # the first batch's run
    first_end = first["ts"] + first["dur"]
    total: Profile = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] > first_end:
            args = event.get("args", {})
            total[(args.get("op_name", "?"), args.get("provider", "?"))] += event["dur"] / 1e3
    return total


def profile_openvino(graph: Path, feeds: list[Features], threads: int) -> Profile:
    """Node time by layer type and kernel from OpenVINO's performance counters (first batch not counted)."""
    import openvino as ov

    config = {"INFERENCE_NUM_THREADS": threads, "PERF_COUNT": True, "PERFORMANCE_HINT": "LATENCY"}
    compiled = ov.Core().compile_model(str(graph), "CPU", config)
    names = [i.get_any_name() for i in compiled.inputs]
    request = compiled.create_infer_request()
    total: Profile = Counter()
    for index, feed in enumerate(feeds):
        request.infer({n: feed[n] for n in names})
        if index:
            for node in request.profiling_info:
                total[(node.node_type, node.exec_type)] += node.real_time.total_seconds() * 1e3
    return total


PROFILERS: dict[str, Callable[[Path, list[Features], int], Profile]] = {
    "onnx": profile_onnxruntime,
    "openvino": profile_openvino,
}


def table(name: str, profile: Profile, timed: int, rows: int = 8) -> list[str]:
    """The ``rows`` costliest (operator, kernel) pairs of one graph, in ms per batch."""
    total = profile.total()
    lines = [
        f"### {name}: {total / timed:.1f} ms per batch",
        "",
        "| operator | kernel / provider | ms per batch | share |",
        "|---|---|---:|---:|",
    ]
    for (operator, kernel), ms in profile.most_common(rows):
        lines.append(f"| {operator} | {kernel} | {ms / timed:.2f} | {100 * ms / total:.1f}% |")
    return [*lines, ""]


def main() -> None:
    """Profile each graph of the suite's exports and write the report."""
    from edgesbert.resolve import resolve_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("model", nargs="?", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--batches", type=int, default=8, help="timed batches (plus one not counted)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="profiles per graph; the fastest is kept")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    model = resolve_model(args.model, allow_download=False)
    notes: list[str] = []
    lines = [
        "# Where int8 time goes",
        "",
        f"Machine: {machine()} ({cpu_flags()}). Model: {args.model}; {args.threads} threads; "
        f"{args.batches} timed batches of {args.batch_size} STSb-test sentences (one more not counted); "
        f"each graph profiled once per round, {args.rounds} rounds, the round with the least time kept "
        "(this shared machine only ever adds time).",
        f"Command: `python -m benchmarks.int8.profile --batches {args.batches} --threads {args.threads} "
        f"--rounds {args.rounds}`",
        "",
    ]
    graphs: dict[tuple[str, str], tuple[Path, list[Features]]] = {}
    for backend, variants in GRAPHS.items():
        folder = cached_export(model, backend, BI_EXPORTS[backend], notes)
        manifest = Manifest.load(folder)
        feeds = batches(folder, args.batches + 1, args.batch_size)
        graphs.update({(backend, v): (folder / manifest.variant(v).file, feeds) for v in variants})
    fastest: dict[tuple[str, str], Profile] = {}
    for round_ in range(args.rounds):
        for (backend, variant), (graph, feeds) in graphs.items():
            log(f"round {round_ + 1}: profiling {backend} {variant}")
            profile = PROFILERS[backend](graph, feeds, args.threads)
            if (backend, variant) not in fastest or profile.total() < fastest[backend, variant].total():
                fastest[backend, variant] = profile
    summary = ["| graph | ms per batch | speed × the backend's fp32 graph |", "|---|---:|---:|"]
    details: list[str] = []
    for (backend, variant), profile in fastest.items():
        fp32 = fastest[backend, GRAPHS[backend][0]].total()
        summary.append(
            f"| {backend} {variant} | {profile.total() / args.batches:.1f} | {fp32 / profile.total():.2f}× |"
        )
        details += table(f"{backend} {variant}", profile, args.batches)
    lines += [
        "Operator time only (no tokenizing or Python), as each backend's own profiler adds it up: compare "
        "graphs within a backend, not across. The first graph of each backend is fp32.",
        "",
    ]
    lines += [*summary, "", *details]
    args.output.mkdir(parents=True, exist_ok=True)
    out = args.output / "int8-profile.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
