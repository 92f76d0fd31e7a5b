"""Speed, fidelity, size and cold start of OpenVINO variants, against onnxruntime and sentence-transformers.

    python -m benchmarks.openvino_variants [MODEL] [--exported-openvino FOLDER] [--exported-onnx FOLDER]
                                           [--repeats 3] [--cold-runs 3] [--threads 2] [--batch-size 32]
                                           [--no-save]

Without ``--exported-*`` the model (found offline) is exported into temp folders twice: with
``backend="openvino", quantize=["int8", "int8-weights", "fp16"]`` and with ``backend="onnx",
optimize="O2", quantize=["int8"]``. The OpenVINO variants, onnxruntime fp32 and O2-int8 (all through the
edgesbert runtime) and sentence-transformers embed every unique STSb-test sentence in interleaved rounds
(``benchmarks.onnx_variants.measure``). Then fresh ``python -c`` processes time the cold start to a first
embedding and report their peak RSS. Writes benchmarks/results/openvino-variants.md and a plot
openvino-variants.png.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine, sts_spearman, stsb_test
from benchmarks.onnx_variants import (
    RUNTIME,
    ST_TORCH,
    System,
    log,
    measure,
    runtime_systems,
    speedup,
    unit,
    weights_mb,
)
from edgesbert import DEFAULT_MODEL
from edgesbert.exporters import export_model
from edgesbert.resolve import resolve_model
from edgesbert.runtime import load
from edgesbert.runtime.manifest import Manifest

RESULTS = Path(__file__).resolve().parent / "results"
OPENVINO = "edgesbert (OpenVINO)"
ST_OPENVINO = "sentence-transformers (openvino)"
OV_QUANTIZE = ["int8", "int8-weights", "fp16"]
ONNX_OPTIMIZE, ONNX_QUANTIZE = "O2", ["int8"]
ONNX_VARIANTS = ["fp32", "O2-int8"]
TIME = "/usr/bin/time"  # GNU time, for the peak RSS of cold-start processes
CACHED = "compiled-model cache warm"
HINT = "latency"  # the runtime calls one request at a time: "throughput" splits 2 threads into 2 streams


def ir_mb(xml: Path) -> float:
    return (xml.stat().st_size + xml.with_suffix(".bin").stat().st_size) / 1e6


def openvino_systems(folder: Path, threads: int, batch: int) -> list[System]:
    systems = []
    for variant in Manifest.load(folder).variants:
        if variant.backend == "openvino":
            model = load(folder, variant=variant.name, threads=threads, performance_hint=HINT)
            encode = lambda texts, model=model: np.asarray(model.encode(texts, batch_size=batch))  # noqa: E731
            systems.append(System(OPENVINO, variant.name, encode, ir_mb(folder / variant.file)))
    return systems


def st_openvino_systems(st_folder: Path, threads: int, batch: int, notes: list[str]) -> list[System]:
    """sentence-transformers' own OpenVINO backend (it converts the PyTorch model itself), if installed."""
    if importlib.util.find_spec("optimum") is None or importlib.util.find_spec("optimum.intel") is None:
        notes.append(
            'sentence-transformers\' OpenVINO backend (`backend="openvino"`) was skipped: it needs '
            "`optimum-intel`, which is not installed here (installing it would downgrade transformers)."
        )
        return []
    from sentence_transformers import SentenceTransformer

    try:
        st = SentenceTransformer(
            str(st_folder),
            device="cpu",
            backend="openvino",
            local_files_only=True,
            model_kwargs={"ov_config": {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": HINT.upper()}},
        )
        st.encode(["A probe.", "Another probe sentence."])
    except Exception as e:  # whatever the backend raises: report it, measure the rest
        notes.append(f"sentence-transformers' OpenVINO backend failed: {e!r:.300}")
        return []
    encode = lambda texts: st.encode(texts, batch_size=batch, show_progress_bar=False)  # noqa: E731
    return [System(ST_OPENVINO, "fp32", encode, weights_mb(st_folder))]


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


# --- cold start -------------------------------------------------------------------------------------

_CHILD = """\
import time
{imports}
imported = time.time()
{load}
loaded = time.time()
vector = encode([{sentence!r}])
print("TIMES", imported, loaded, time.time(), vector.shape[-1])
"""
_RUNTIME_IMPORT = "from edgesbert.runtime import load"
_ST_IMPORT = "import torch\nfrom sentence_transformers import SentenceTransformer"


@dataclass
class ColdStart:
    """One way to start a process that embeds a sentence, and what its starts measured."""

    label: str
    code: str
    size_mb: float
    runs: list[tuple[float, float, float, float]] = field(default_factory=list)  # import, load, first, MB

    def median(self, column: int) -> float:
        return float(np.median([run[column] for run in self.runs]))


def cold_starts(
    ov_folder: Path, onnx_folder: Path, st_folder: Path, threads: int, sentence: str
) -> list[ColdStart]:
    """Edgesbert OpenVINO and onnxruntime, fp32 and int8 (OpenVINO int8 also with a warm compiled-model
    cache), and sentence-transformers torch."""
    ov_manifest, onnx_manifest = Manifest.load(ov_folder), Manifest.load(onnx_folder)
    cache = Path(tempfile.mkdtemp(prefix="ov-cache-"))
    atexit.register(shutil.rmtree, cache, ignore_errors=True)

    def runtime(folder: Path, variant: str, extra: str = "") -> str:
        load_line = f"model = load({str(folder)!r}, variant={variant!r}, threads={threads}{extra})"
        return _CHILD.format(
            imports=_RUNTIME_IMPORT, load=f"{load_line}\nencode = model.encode", sentence=sentence
        )

    hint = f", performance_hint={HINT!r}"
    starts = []
    for variant, extra, label in [
        ("openvino", hint, "openvino"),
        ("openvino-int8", hint, "openvino-int8"),
        ("openvino-int8", f"{hint}, cache_dir={str(cache)!r}", f"openvino-int8, {CACHED}"),
    ]:
        xml = ov_folder / ov_manifest.variant(variant).file
        starts.append(ColdStart(f"{OPENVINO} {label}", runtime(ov_folder, variant, extra), ir_mb(xml)))
    for variant in ONNX_VARIANTS:
        graph = onnx_folder / onnx_manifest.variant(variant).file
        starts.append(
            ColdStart(f"{RUNTIME} {variant}", runtime(onnx_folder, variant), graph.stat().st_size / 1e6)
        )
    st_load = (
        f"torch.set_num_threads({threads})\nst = SentenceTransformer({str(st_folder)!r}, device='cpu')\n"
        "encode = lambda texts: st.encode(texts, show_progress_bar=False)"
    )
    st_code = _CHILD.format(imports=_ST_IMPORT, load=st_load, sentence=sentence)
    starts.append(ColdStart(f"{ST_TORCH} fp32", st_code, weights_mb(st_folder)))
    _spawn(starts[2].code)  # fills the compiled-model cache
    return starts


def _spawn(code: str) -> tuple[float, float, float, float]:
    """Run ``code`` in a fresh interpreter: seconds to imports, to load, to first embedding; peak RSS MB.

    The peak RSS comes from GNU time, which forks the interpreter from its own small process: the
    ``ru_maxrss`` that ``os.wait4`` or ``RUSAGE_CHILDREN`` report for a child forked from this benchmark
    starts at this (large) process's RSS at the fork, so it would read the same for every child.
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        command = [TIME, "-f", "%M", "-o", rss.name, sys.executable, "-c", code]
        start = time.time()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("TIMES ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"cold-start child failed ({done.returncode}):\n{done.stderr[-2000:]}")
        peak_kb = float(rss.read().split()[-1])
    imported, loaded, embedded, _ = map(float, lines[-1].split()[1:])
    return imported - start, loaded - imported, embedded - loaded, peak_kb / 1024


def measure_cold(starts: list[ColdStart], runs: int) -> None:
    """``runs`` starts of each, interleaved with a rotating order."""
    for run in range(runs):
        shift = run % len(starts)
        for start in starts[shift:] + starts[:shift]:
            start.runs.append(_spawn(start.code))
        summary = ", ".join(f"{s.label}: {sum(s.runs[-1][:3]):.2f} s" for s in starts)
        log(f"cold start {run + 1}/{runs}: {summary}")


# --- report -----------------------------------------------------------------------------------------


def find(systems: list[System], name: str, variant: str) -> System | None:
    return next((s for s in systems if s.name == name and s.variant == variant), None)


def table(systems: list[System], reference: System, sts: tuple) -> list[str]:
    texts, first, second, gold = sts
    ov_fp32, ort_fp32 = find(systems, OPENVINO, "openvino"), find(systems, RUNTIME, "fp32")
    rows = [
        "| system | variant | sent/s | vs edgesbert OpenVINO fp32 | vs edgesbert onnxruntime fp32 "
        "| vs sentence-transformers torch | STSb-test Spearman | mean cosine to PyTorch | MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    assert reference.vectors is not None
    expected = unit(reference.vectors)
    for s in systems:
        assert s.vectors is not None
        rho = sts_spearman(s.vectors, texts, first, second, gold)
        cosine = float((unit(s.vectors) * expected).sum(axis=1).mean())
        rows.append(
            f"| {s.name} | {s.variant} | {np.median(s.speeds):.0f} | {speedup(s, ov_fp32)} "
            f"| {speedup(s, ort_fp32)} | {speedup(s, reference)} | {rho:.4f} | {cosine:.5f} "
            f"| {s.megabytes:.1f} |"
        )
    return rows


def cold_table(starts: list[ColdStart]) -> list[str]:
    rows = [
        "| process | to imports done (s) | load (s) | first embedding (s) | total (s) | peak RSS (MB) "
        "| model file MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in starts:
        total = float(np.median([sum(run[:3]) for run in s.runs]))
        rows.append(
            f"| {s.label} | {s.median(0):.2f} | {s.median(1):.2f} | {s.median(2):.2f} | {total:.2f} "
            f"| {s.median(3):.0f} | {s.size_mb:.1f} |"
        )
    return rows


def ratio(system: System | None, base: System | None) -> float:
    if system is None or base is None:
        return float("nan")
    return float(np.median(np.array(system.speeds) / np.array(base.speeds)))


def cpu_flags() -> str:
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"]
    return ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in wanted)


def int8_paragraph(systems: list[System], starts: list[ColdStart], sts: tuple, layers: str) -> str:
    """Where int8 pays on this CPU and where it does not, in measured figures."""
    texts, first, second, gold = sts
    get = {(s.name, s.variant): s for s in systems}
    ov32, ov8 = get[(OPENVINO, "openvino")], get[(OPENVINO, "openvino-int8")]
    ovw, ort32, ort8 = (
        get[(OPENVINO, "openvino-int8-weights")],
        get[(RUNTIME, "fp32")],
        get[(RUNTIME, "O2-int8")],
    )
    st = get[(ST_TORCH, "fp32")]

    def drop(s: System, base: System) -> str:
        change = sts_spearman(s.vectors, texts, first, second, gold) - sts_spearman(
            base.vectors, texts, first, second, gold
        )
        return f"{-change:.4f} STSb Spearman" if change < 0 else f"no STSb Spearman ({change:+.4f})"

    def word(x: float) -> str:
        return "faster" if x > 1.03 else "slower" if x < 0.97 else "no faster"

    cold = {s.label: s for s in starts}

    def rss(label: str) -> float:
        return cold[label].median(3)

    def total(label: str) -> float:
        return float(np.median([sum(run[:3]) for run in cold[label].runs]))

    ov_r, w_r, ort_r = ratio(ov8, ov32), ratio(ovw, ov32), ratio(ort8, ort32)
    pays = [
        name for name, r in (("onnxruntime dynamic int8", ort_r), ("OpenVINO static int8", ov_r)) if r > 1.03
    ]
    best = max(systems, key=lambda s: np.median(s.speeds))
    ov8_label, ort8_label = f"{OPENVINO} openvino-int8", f"{RUNTIME} O2-int8"
    ov32_label, ort32_label, st_label = f"{OPENVINO} openvino", f"{RUNTIME} fp32", f"{ST_TORCH} fp32"
    smaller = rss(ov8_label) < rss(ov32_label) and rss(ort8_label) < rss(ort32_label)
    memory = " and in peak memory" if smaller else ""
    return (
        f"Where int8 pays here. This CPU has {cpu_flags()}. Without VNNI an int8 multiply-add takes "
        "vpmaddubsw + vpmaddwd (u8×s8 pairs summed in 16 bits, then widened) instead of one vpdpbusd, "
        "which leaves int8 matrix kernels at best about twice the fp32 FMA rate (four times with VNNI), "
        "before the cost of quantizing activations. Speed: OpenVINO static int8 (NNCF) runs "
        f"{ov_r:.2f}× OpenVINO fp32 ({word(ov_r)}) although its matrix layers do run in int8 ({layers}), "
        f"and costs {drop(ov8, ov32)}; OpenVINO int8 weights only runs {w_r:.2f}× ({word(w_r)}), as its "
        "weights are decompressed to float inside the kernels, and costs "
        f"{drop(ovw, ov32)}; onnxruntime dynamic int8 (O2 graph, avx2 preset) runs {ort_r:.2f}× "
        f"onnxruntime fp32 ({word(ort_r)}) and costs {drop(ort8, ort32)}. The fastest system is "
        f"{best.name} {best.variant}, {np.median(best.speeds):.0f} sent/s, {ratio(best, st):.2f}× "
        f"sentence-transformers torch. Size: every int8 file is about a quarter of fp32 ({ov8.megabytes:.1f} "
        f"MB OpenVINO int8, {ort8.megabytes:.1f} MB onnxruntime int8, against {ov32.megabytes:.1f} MB). "
        f"Memory and start: a process's peak RSS to its first embedding is {rss(ov8_label):.0f} MB for "
        f"OpenVINO int8 against {rss(ov32_label):.0f} MB for OpenVINO fp32, "
        f"{rss(ort8_label):.0f} MB for onnxruntime int8 against {rss(ort32_label):.0f} MB for "
        f"onnxruntime fp32, and {rss(st_label):.0f} MB for sentence-transformers torch; it takes "
        f"{total(ov8_label):.2f} s for OpenVINO int8 (fp32 {total(ov32_label):.2f} s; int8 "
        f"{total(f'{ov8_label}, {CACHED}'):.2f} s with a warm compiled-model cache), "
        f"{total(ort8_label):.2f} s for onnxruntime int8 (fp32 {total(ort32_label):.2f} s) and "
        f"{total(st_label):.2f} s for sentence-transformers torch"
        f"{', mostly importing torch' if cold[st_label].median(0) > total(st_label) / 2 else ''}. So on "
        f"this AVX2-only CPU int8 pays in speed {'only with ' + ' and '.join(pays) if pays else 'nowhere'}, "
        f"and everywhere in file size{memory}. Whether OpenVINO's static int8 pays in speed on CPUs with "
        "VNNI (AVX-512 VNNI, AVX-VNNI) or AMX, which it is built for, this machine cannot show."
    )


COLORS = {OPENVINO: "tab:green", RUNTIME: "tab:blue", ST_TORCH: "tab:red", ST_OPENVINO: "tab:purple"}


def plot(systems: list[System], starts: list[ColdStart], path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax, cold) = plt.subplots(1, 2, figsize=(13, 0.45 * len(systems) + 2.2))
    medians = np.array([np.median(s.speeds) for s in systems])
    spread = np.array(
        [[m - min(s.speeds), max(s.speeds) - m] for s, m in zip(systems, medians, strict=True)]
    ).T
    y = np.arange(len(systems))[::-1]
    ax.barh(y, medians, xerr=spread, color=[COLORS[s.name] for s in systems], capsize=3)
    for yi, m, s in zip(y, medians, systems, strict=True):
        ax.text(max(s.speeds), yi, f"  {m:.0f}", va="center", ha="left", fontsize=8)
    ax.set_yticks(y, [f"{s.name}\n{s.variant}" for s in systems], fontsize=8)
    ax.set_xlabel("sentences per second (median, bars: min–max of rounds)")
    ax.set_xlim(0, max(max(s.speeds) for s in systems) * 1.15)
    ax.set_title("throughput", fontsize=9)
    if starts:
        yc = np.arange(len(starts))[::-1]
        left = np.zeros(len(starts))
        for column, (label, color) in enumerate(
            [("interpreter + imports", "0.7"), ("load", "tab:cyan"), ("first embedding", "tab:orange")]
        ):
            widths = np.array([s.median(column) for s in starts])
            cold.barh(yc, widths, left=left, color=color, label=label)
            left += widths
        for yi, end, s in zip(yc, left, starts, strict=True):
            total = np.median([sum(run[:3]) for run in s.runs])  # as in the table: median of the totals
            cold.text(end, yi, f"  {total:.2f} s, {s.median(3):.0f} MB RSS", va="center", fontsize=8)
        cold.set_yticks(yc, [s.label.replace(") ", ")\n").replace(", ", "\n") for s in starts], fontsize=7)
        cold.set_xlim(0, left.max() * 1.6)
        cold.set_xlabel("seconds to first embedding (bars: median per phase)")
        cold.legend(fontsize=7, loc="upper right")
        cold.set_title("cold start and peak RSS", fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    parser.add_argument("--exported-openvino", type=Path, help="an exported OpenVINO folder to reuse")
    parser.add_argument("--exported-onnx", type=Path, help="an exported ONNX folder (with O2-int8) to reuse")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per system (median)")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold starts per process kind (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-save", action="store_true", help="print the tables only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    began = time.perf_counter()

    first, second, gold = stsb_test()
    texts = sorted(dict.fromkeys(first + second), key=len, reverse=True)  # as encode() orders them
    sts = (texts, first, second, gold)
    notes: list[str] = []
    source = resolve_model(args.model, allow_download=False)  # offline: local folder, cache or package
    temp = Path(tempfile.mkdtemp())
    atexit.register(shutil.rmtree, temp, ignore_errors=True)  # the exported folders
    ov_folder = args.exported_openvino or temp / "openvino"
    onnx_folder = args.exported_onnx or temp / "onnx"
    if args.exported_openvino is None:
        log(f"exporting {args.model} (OpenVINO) to {ov_folder}")
        export_model(source, ov_folder, backend="openvino", quantize=OV_QUANTIZE)
    if args.exported_onnx is None:
        log(f"exporting {args.model} (ONNX) to {onnx_folder}")
        export_model(source, onnx_folder, optimize=ONNX_OPTIMIZE, quantize=ONNX_QUANTIZE)
    log(f"exports done after {time.perf_counter() - began:.0f} s")

    batch = args.batch_size
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(source), device="cpu")
    st_encode = lambda t: st.encode(t, batch_size=batch, show_progress_bar=False)  # noqa: E731
    st_torch = System(ST_TORCH, "fp32", st_encode, weights_mb(source))
    systems = openvino_systems(ov_folder, args.threads, batch)
    systems += runtime_systems(onnx_folder, ONNX_VARIANTS, args.threads, batch)
    systems += [st_torch, *st_openvino_systems(source, args.threads, batch, notes)]
    measure(systems, texts, args.repeats, batch)
    log(f"throughput done after {time.perf_counter() - began:.0f} s")
    int8_xml = ov_folder / Manifest.load(ov_folder).variant("openvino-int8").file
    layers = int8_layers(int8_xml, args.threads)

    starts = cold_starts(ov_folder, onnx_folder, source, args.threads, first[0])
    measure_cold(starts, args.cold_runs)

    setting = f"{args.threads} threads, batch {batch}, {len(texts)} unique STSb-test sentences"
    report = "\n".join(
        [
            f"# OpenVINO variants: {args.model}",
            "",
            f"Machine: {machine()} ({cpu_flags()}); {setting}.",
            "",
            *table(systems, st_torch, sts),
            "",
            f"Cold start, fresh `python -c` process to the first embedding of one sentence "
            f"(median of {args.cold_runs}), and the process's peak resident memory:",
            "",
            *cold_table(starts),
        ]
    )
    print(report)
    for note in notes:
        print(f"note: {note}")
    log(f"took {time.perf_counter() - began:.0f} s")
    if args.no_save:
        return
    method = (
        "Method: `python -m benchmarks.openvino_variants`. The model, found offline, is exported twice: "
        f'`backend="openvino", quantize={OV_QUANTIZE}` (fp32 IR converted from the fp32 ONNX graph; '
        "static int8 by NNCF calibrated on the built-in text; int8 weight compression; fp16 weights) and "
        f'`backend="onnx", optimize="{ONNX_OPTIMIZE}", quantize={ONNX_QUANTIZE}` (dynamic int8 with '
        "the preset detected from the CPU; its plain fp32 graph is measured too). Every edgesbert row "
        f"runs through the runtime (`load(folder, variant=NAME, threads={args.threads})`, OpenVINO with "
        f'`performance_hint="{HINT}"`: the runtime runs one request at a time, and the throughput hint '
        "would split the threads into streams it never fills); sentence-transformers runs "
        f'`SentenceTransformer(path, device="cpu")` with `torch.set_num_threads({args.threads})`. Each '
        f"system embeds every unique STSb-test sentence {args.repeats} times, longest first in batches "
        f"of {batch}, interleaved as in `benchmarks.onnx_variants`: each round walks the sentences in "
        f"chunks of {batch * 10} and every system (in an order rotated each round) encodes a chunk before "
        "the next, after one warm-up batch each. sent/s is the median of the rounds; a speed-up is the "
        "median over rounds of the ratio of two systems' throughputs in the same round. Spearman is "
        "STSb-test Spearman of cosine similarity against the gold scores; mean cosine compares each "
        "embedding with sentence-transformers torch's (the PyTorch reference). MB is the graph file "
        "(xml + bin for OpenVINO) or the safetensors weights. Cold start: a fresh interpreter runs "
        "`python -c` with the imports, `load(...)` (or `SentenceTransformer(...)`) and `encode()` of one "
        "sentence; the parent takes the time from just before spawning it to the child's timestamp "
        f"after the embedding, {args.cold_runs} runs each interleaved, median per phase and in total; "
        "the OS file cache is warm (the files were just read). Peak RSS is the child's maximum resident "
        "set size from GNU `/usr/bin/time -f %M` (not `os.wait4`/`RUSAGE_CHILDREN`: a child forked from "
        "the benchmark inherits its RSS in that figure). The compiled-model cache row passes `cache_dir` "
        "to `load`, filled by one untimed start first; the other OpenVINO row compiles the graph on every "
        "start."
    )
    notes_md = [f"- {note}" for note in notes]
    paragraph = int8_paragraph(systems, starts, sts, layers)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "openvino-variants.md").write_text(
        "\n".join([report, "", method, "", paragraph, *(["", *notes_md] if notes_md else [])]) + "\n"
    )
    if plot(systems, starts, RESULTS / "openvino-variants.png", f"{args.model}\n{machine()}; {setting}"):
        log(f"wrote {RESULTS / 'openvino-variants.md'} and openvino-variants.png")
    else:
        log(f"wrote {RESULTS / 'openvino-variants.md'} (no plot: matplotlib is not installed)")


if __name__ == "__main__":
    main()
