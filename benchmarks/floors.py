"""What bounds one-sentence latency and cold start: the runtime against the libraries under it.

    python -m benchmarks.floors [MODEL] [--variant O2-int8] [--threads 2] [--calls 200] [--starts 7]

Latency: one STSb-test sentence per call through ``encode()``, through the bare onnxruntime session of
the same graph (inputs tokenized beforehand), and the session's own kernel time by operator (profiled).
Cold start: fresh processes of the runtime's own install (build/bench/venv-runtime, ``pip install .``;
built if missing) stamp each phase: interpreter, ``import numpy``, ``import onnxruntime``, ``import
tokenizers``, ``import edgesbert.runtime``, ``load()``, the first ``encode()``; other processes time
a bare ``InferenceSession`` of the graph. The medians go to benchmarks/results/floors.md, next to the
targets of issue 6 (p50 <= 1.5 ms, cold start <= 0.3 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.common.data import stsb_test
from benchmarks.common.exports import BI_EXPORTS, cached_export
from benchmarks.common.machine import cpu_flags, machine
from benchmarks.common.paths import RESULTS, ROOT
from benchmarks.common.timing import call_ms, log
from benchmarks.int8.profile import profile_onnxruntime
from benchmarks.suite.install import build_runtime_venv
from edgesbert.runtime import BiEncoder
from edgesbert.runtime.manifest import Manifest
from edgesbert.runtime.tokenizer import TextTokenizer

TARGET_P50_MS, TARGET_COLD_S = 1.5, 0.3  # issue 6
PHASES = ["interpreter", "numpy", "onnxruntime", "tokenizers", "edgesbert.runtime", "load", "first encode"]
CHILD = """
import sys, time
stamps = [float(sys.argv[1]), time.time()]
import numpy; stamps.append(time.time())
import onnxruntime; stamps.append(time.time())
import tokenizers; stamps.append(time.time())
if sys.argv[2] == "runtime":
    from edgesbert.runtime import load; stamps.append(time.time())
    model = load(sys.argv[3], variant=sys.argv[4], threads=int(sys.argv[5]), performance_hint="latency")
    stamps.append(time.time())
    model.encode(["The weather is lovely today."], batch_size=1); stamps.append(time.time())
else:
    options = onnxruntime.SessionOptions(); options.intra_op_num_threads = int(sys.argv[5])
    onnxruntime.InferenceSession(sys.argv[3], options, providers=["CPUExecutionProvider"])
    stamps.append(time.time())
print([b - a for a, b in zip(stamps, stamps[1:])])
"""


def latency(folder: Path, variant: str, threads: int, calls: int) -> list[str]:
    """p50 of encode() and of the bare session, and the profiled kernel time by operator."""
    import onnxruntime as ort

    texts = stsb_test()[0][:calls]
    model = BiEncoder(folder, variant=variant, threads=threads, performance_hint="latency")
    tokenizer = TextTokenizer(folder, model.manifest.tokenizer, model.max_seq_length)
    feeds = [tokenizer([text]) for text in texts]  # as encode() tokenizes
    graph = folder / model.variant.file
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for text, feed in zip(texts[:20], feeds, strict=False):  # warm-up
        model.encode([text], batch_size=1)
        session.run(None, {n: feed[n] for n in names})
    encode = statistics.median(call_ms(lambda t: model.encode([t], batch_size=1), texts))
    bare = statistics.median(call_ms(lambda f: session.run(None, {n: f[n] for n in names}), feeds))
    profile = profile_onnxruntime(graph, feeds, threads)
    kernels = profile.total() / (len(feeds) - 1)
    tokens = statistics.median(f["input_ids"].shape[1] for f in feeds)
    lines = [
        f"## One sentence per call ({variant}, {threads} threads, {calls} STSb-test sentences, "
        f"median {tokens:.0f} tokens)",
        "",
        "| what | ms |",
        "|---|---:|",
        f"| `encode([sentence])`, p50 | {encode:.2f} |",
        f"| bare `InferenceSession.run` of the same graph, p50 | {bare:.2f} |",
        f"| its kernels, summed (mean; the profiler itself adds time) | {kernels:.2f} |",
    ]
    for (operator, _), ms in profile.most_common(4):
        lines.append(f"| … {operator} | {ms / (len(feeds) - 1):.2f} ({100 * ms / profile.total():.0f}%) |")
    verdict = "below" if bare <= TARGET_P50_MS else "above"
    return [
        *lines,
        "",
        f"The bare session alone is {verdict} the {TARGET_P50_MS} ms target: the runtime adds "
        f"{encode - bare:.2f} ms (tokenizing, pooling, Python) to what onnxruntime's kernels take.",
        "",
    ]


def cold(python: Path, folder: Path, variant: str, threads: int, starts: int) -> list[str]:
    """Report lines: the median milliseconds of each phase of a cold start, and of a bare session's."""
    graph = str(folder / Manifest.load(folder).variant(variant).file)

    def run(mode: str, target: str) -> list[float]:
        start = time.time()
        argv = [str(python), "-c", CHILD, repr(start), mode, target, variant, str(threads)]
        out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd="/")
        return json.loads(out.stdout.strip().splitlines()[-1])

    runtime = [run("runtime", str(folder)) for _ in range(starts)]
    bare = [run("session", graph) for _ in range(starts)]
    phases = [statistics.median(column) * 1e3 for column in zip(*runtime, strict=True)]
    bare_total = statistics.median(sum(row) for row in bare) * 1e3
    session = statistics.median(row[-1] for row in bare) * 1e3
    lines = [
        f"## Cold start ({variant}; `{python.relative_to(ROOT) if python.is_relative_to(ROOT) else python}`, "
        f"median of {starts} fresh processes each)",
        "",
        "| phase | ms |",
        "|---|---:|",
        *(f"| {name} | {ms:.0f} |" for name, ms in zip(PHASES, phases, strict=True)),
        f"| **total** | **{statistics.median(sum(row) for row in runtime) * 1e3:.0f}** |",
        "",
        f"The libraries alone, with no edgesbert code (interpreter, numpy, onnxruntime, tokenizers, then "
        f"a bare `InferenceSession` of the graph, {session:.0f} ms of it): **{bare_total:.0f} ms**, against "
        f"the target of {TARGET_COLD_S * 1e3:.0f} ms for the whole cold start.",
        "",
    ]
    return lines


def main() -> None:
    """Measure both and write the report."""
    from edgesbert.resolve import resolve_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("model", nargs="?", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--variant", default="O2-int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    folder = cached_export(resolve_model(args.model, allow_download=False), "onnx", BI_EXPORTS["onnx"], [])
    python = build_runtime_venv() / "bin" / "python"
    log("timing one-sentence calls")
    lines = [
        "# What bounds one-sentence latency and cold start",
        "",
        f"Machine: {machine()} ({cpu_flags()}). Model: {args.model}. Command: `python -m benchmarks.floors "
        f"--variant {args.variant} --threads {args.threads} --calls {args.calls} --starts {args.starts}`",
        "",
        *latency(folder, args.variant, args.threads, args.calls),
    ]
    log("timing cold starts")
    lines += cold(python, folder, args.variant, args.threads, args.starts)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "floors.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
