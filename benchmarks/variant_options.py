"""What the suite leaves out: fp16 variants, OpenVINO's compiled-model cache, the layers that run in int8.

    python -m benchmarks.variant_options [MODEL] [--repeats 3] [--cold-runs 3] [--threads 2]
                                         [--batch-size 32] [--no-save]

The suite (benchmarks/suite.py, results/suite.md) measures every variant edgesbert exports by default,
against the peers. This measures the export and load options it leaves out, on the same sentences:

- ``quantize=["fp16"]`` on both backends: ONNX O2-fp16 against fp32 and O2, OpenVINO fp16 against the
  fp32 IR, all through the runtime in one process, timed in interleaved rounds (benchmarks/interleaved.py),
  with STSb-test Spearman, mean cosine to the fp32 vectors of the same backend and the file size;
- OpenVINO's compiled-model cache (``load(..., cache_dir=...)``): cold starts of the fp32 and static int8
  IRs with and without a warm cache, in fresh processes of the suite's worker, as the suite times them;
- which matrix layers OpenVINO's CPU plugin runs in int8 for the static int8 (NNCF) variant.

Exports are cached as the suite's are (build/bench/exports). Writes benchmarks/results/variant-options.md.
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.common import cpu_flags, log, machine, sts_spearman, stsb_test, unique_texts
from benchmarks.interleaved import Encoder, arguments, measure, speedup, unit
from benchmarks.suite import rotate
from benchmarks.suite_systems import BENCH, cached_export, cold_phases, edgesbert_system, graph_mb, run_worker
from benchmarks.suite_tables import cold_table, fmt, row

RESULTS = Path(__file__).resolve().parent / "results"
TAG = "options"  # keeps these exports apart from the suite's (other quantize lists)
EXPORTS = {"onnx": ("O2", ["fp16"]), "openvino": (None, ["int8", "fp16"])}
# the variants timed for throughput -> the fp32 variant of the same backend they are compared with
BASE = {"fp32": "fp32", "O2": "fp32", "O2-fp16": "fp32", "openvino": "openvino", "openvino-fp16": "openvino"}
COLD = ["openvino", "openvino-int8"]  # cold starts without and with a warm compiled-model cache
INT8 = "openvino-int8"
HINT = "latency"  # one request at a time: "throughput" would split the threads into streams it never fills
CACHED = "compiled-model cache warm"
RUNTIMES = {"onnx": "onnxruntime", "openvino": "OpenVINO"}


def exports(model: Path, notes: list[str]) -> dict[str, Path]:
    return {
        backend: cached_export(model, backend, options, notes, TAG) for backend, options in EXPORTS.items()
    }


def encoders(folders: dict[str, Path], threads: int, batch: int) -> list[Encoder]:
    """Every variant of ``BASE`` in the exported folders, loaded through the runtime."""
    from edgesbert.runtime import load
    from edgesbert.runtime.manifest import Manifest

    found = []
    for backend, folder in folders.items():
        for variant in Manifest.load(folder).variants:
            if variant.name in BASE:
                model = load(folder, variant=variant.name, threads=threads, performance_hint=HINT)
                encode = lambda texts, m=model: np.asarray(m.encode(texts, batch_size=batch))  # noqa: E731
                found.append(Encoder(RUNTIMES[backend], variant.name, encode, graph_mb(folder, variant.file)))
    return found


def speed_table(found: list[Encoder], sts: tuple) -> list[str]:
    texts, first, second, gold = sts
    by_variant = {e.variant: e for e in found}
    rows = [
        "| backend | variant | sent/s | × fp32 of its backend | STSb-test Spearman | mean cosine to fp32 "
        "| file MB |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for e in found:
        base = by_variant[BASE[e.variant]]
        assert e.vectors is not None and base.vectors is not None  # measure() filled them
        cosine = float((unit(e.vectors) * unit(base.vectors)).sum(axis=1).mean())
        rho = sts_spearman(e.vectors, texts, first, second, gold)
        speed = float(np.median(e.speeds))
        cells = [
            e.name,
            e.variant,
            fmt(speed),
            speedup(e, base),
            fmt(rho, 4),
            fmt(cosine, 5),
            fmt(e.megabytes, 1),
        ]
        rows.append(row(cells))
    return rows


def cold_starts(folder: Path, threads: int, runs: int, sentence: str) -> dict[str, dict]:
    """``runs`` cold starts of each OpenVINO variant of ``COLD``, without and with a warm compiled-model
    cache (filled by one untimed start first), interleaved with an order rotated each run; entries as
    suite_tables.cold_table reads them."""
    cache = Path(tempfile.mkdtemp(prefix="ov-cache-"))
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    systems = []
    for variant in COLD:
        plain = edgesbert_system(f"edgesbert-{variant}", "bi-encoder", folder, variant)
        cached = edgesbert_system(f"edgesbert-{variant}-cached", "bi-encoder", folder, variant)
        cached.label += f", {CACHED}"
        cached.spec["load_options"] = {"cache_dir": str(cache)}
        systems += [plain, cached]
    job = {"threads": threads, "sentence": sentence, "hint": HINT}
    for system in systems:
        if "load_options" in system.spec:
            run_worker(system, "cold", job)  # fills the cache
    entries: dict[str, dict] = {s.name: {"label": s.label, "cold": [[]]} for s in systems}
    for r in range(runs):
        for system in rotate(systems, r):
            entries[system.name]["cold"][0].append(cold_phases(run_worker(system, "cold", job)))
        summary = ", ".join(f"{e['label']}: {e['cold'][0][-1]['total_s']:.2f} s" for e in entries.values())
        log(f"cold start {r + 1}/{runs}: {summary}")
    return entries


def int8_layers(xml: Path, threads: int) -> str:
    """What the CPU plugin actually runs in int8: counts of compiled matrix layers by precision."""
    import openvino as ov

    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": HINT.upper()}
    compiled = ov.Core().compile_model(str(xml), "CPU", config)
    counts: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str) if "layerType" in info else op.get_type_name()
        if kind in ("FullyConnected", "MatMul", "FakeQuantize"):
            precision = info["runtimePrecision"].astype(str) if "runtimePrecision" in info else "?"
            counts[f"{kind} {'int8' if precision in ('u8', 'i8') else precision}"] += 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def method(args: argparse.Namespace) -> str:
    return (
        "Method: `python -m benchmarks.variant_options`. The model, found offline, is exported with "
        f'`backend="onnx", optimize="O2", quantize={EXPORTS["onnx"][1]}` and `backend="openvino", '
        f"quantize={EXPORTS['openvino'][1]}` (cached under build/bench/exports as the suite's exports are). "
        f"Every row runs through the runtime (`load(folder, variant=NAME, threads={args.threads}, "
        f'performance_hint="{HINT}")`) in one process; each variant embeds every unique STSb-test sentence '
        f"{args.repeats} times, longest first in batches of {args.batch_size}, interleaved as in "
        f"`benchmarks.interleaved`: each round walks the sentences in chunks of {args.batch_size * 10} and "
        "every variant (in an order rotated each round) encodes a chunk before the next, after one warm-up "
        "batch each. sent/s is the median of the rounds; a speed-up is the median over rounds of the ratio "
        "of two variants' throughputs in the same round, against the fp32 graph of the same backend, as is "
        "the mean cosine of each sentence's embedding. Cold start: fresh processes of "
        "`benchmarks/suite_worker.py cold`, as the suite times them (the parent's clock just before it "
        "spawns the interpreter to the child's after its first embedding of one sentence; files warm in "
        f"the OS cache), {args.cold_runs} per row, interleaved; the cache rows pass `cache_dir` to `load`, "
        "filled by one untimed start first, while the others compile the graph on every start. The int8 "
        "layers are counted in the CPU plugin's compiled model (`get_runtime_model()`: layer type and "
        "runtime precision of each FullyConnected, MatMul and FakeQuantize)."
    )


def report(args: argparse.Namespace, found: list[Encoder], sts: tuple, starts: dict, layers: str,
           notes: list[str]) -> str:  # fmt: skip
    setting = f"{args.threads} threads, batch {args.batch_size}, {len(sts[0])} unique STSb-test sentences"
    lines = [
        f"# Variant options: {args.model}",
        "",
        f"Machine: {machine()} ({cpu_flags()}); {setting}.",
        "",
        "## fp16 variants",
        "",
        *speed_table(found, sts),
        "",
        "## OpenVINO compiled-model cache: cold start to the first embedding",
        "",
        *cold_table(starts),
        "",
        f"## What the CPU plugin runs in int8 ({INT8})",
        "",
        f"Compiled matrix layers by runtime precision: {layers}.",
        "",
        method(args),
        *(["", "## Notes", "", *(f"- {note}" for note in notes)] if notes else []),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--cold-runs", type=int, default=3, help="cold starts per row (median)")
    args = parser.parse_args()
    from edgesbert.resolve import resolve_model
    from edgesbert.runtime.manifest import Manifest

    began = time.perf_counter()
    notes: list[str] = []
    BENCH.mkdir(parents=True, exist_ok=True)
    first, second, gold = stsb_test()
    sts = (unique_texts(first, second), first, second, gold)
    folders = exports(resolve_model(args.model, allow_download=False), notes)
    found = encoders(folders, args.threads, args.batch_size)
    measure(found, sts[0], args.repeats, args.batch_size)
    log(f"throughput done after {time.perf_counter() - began:.0f} s")
    ov = folders["openvino"]
    starts = cold_starts(ov, args.threads, args.cold_runs, first[0])
    layers = int8_layers(ov / Manifest.load(ov).variant(INT8).file, args.threads)
    text = report(args, found, sts, starts, layers, notes)
    print(text, end="")
    log(f"took {time.perf_counter() - began:.0f} s")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "variant-options.md").write_text(text, encoding="utf-8")
        log(f"wrote {RESULTS / 'variant-options.md'}")


if __name__ == "__main__":
    main()
