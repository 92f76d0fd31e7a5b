"""Static variants against the graphs and model2vec: speed, accuracy, size and memory (issue 31).

    python -m benchmarks.static [MODEL] [--repeats 3] [--threads 2] [--batch-size 32] [--no-save]

Exports MODEL (default all-MiniLM-L6-v2) unless build/static-bench holds it: ONNX with O2, dynamic int8,
static int8 and ``--static``; OpenVINO with int8. Distills the same model with model2vec's own method (its
defaults: 256 dimensions, float16) in the peers environment (``make peers-venv``). Then measures, on every
unique STSb-test sentence: sentences/s at batch 32 (edgesbert's variants in interleaved rounds in one
process, ``benchmarks.common.interleaved``; model2vec in its own process), one sentence's latency (p50 of
200 calls), STSb-test Spearman, the files the variant needs (graph or table, tokenizer) and the peak RSS of
a fresh process that loads the variant and embeds the sentences once. Writes
benchmarks/results/static-<cpu kind>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import sts_spearman, stsb_test, unique_texts
from benchmarks.common.interleaved import Encoder, arguments, measure
from benchmarks.common.machine import cpu_flags, cpu_kind, machine
from benchmarks.common.paths import PEERS_PYTHON, RESULTS, ROOT
from benchmarks.common.timing import log, timed

BUILD = ROOT / "build" / "static-bench"
EXPORTS = {  # folder -> export options
    "onnx": {"optimize": "O2", "quantize": ["int8", "int8-static"], "static": True},
    "openvino": {"backend": "openvino", "quantize": ["int8"]},
}
SYSTEMS = [  # (folder, variant) of edgesbert
    ("onnx", "fp32"), ("onnx", "O2"), ("openvino", "openvino"),
    ("onnx", "O2-int8"), ("onnx", "int8-static"), ("openvino", "openvino-int8"),
    ("onnx", "static"), ("onnx", "static-int8"),
]  # fmt: skip
LATENCY_CALLS = 200

#: Run by the peers environment: distill with model2vec (once), then the same measurements as edgesbert's.
#: (Both scripts run from the repository's root, so they time and weigh with benchmarks.common.timing.)
MODEL2VEC = """
import json, sys
from pathlib import Path
import numpy as np
from model2vec import StaticModel
from benchmarks.common.timing import call_ms, peak_rss_mb, timed
spec = json.loads(sys.stdin.read())
folder = Path(spec["folder"])
if not (folder / "model.safetensors").is_file():
    from model2vec.distill import distill
    seconds, _ = timed(lambda: distill(spec["model"]).save_pretrained(str(folder)))
    (folder / "distill_seconds").write_text(str(seconds))
model, texts = StaticModel.from_pretrained(str(folder)), spec["texts"]
model.encode(texts[:320], batch_size=spec["batch"])
chunks = [texts[i : i + 320] for i in range(0, len(texts), 320)]
encode = lambda c: model.encode(c, batch_size=spec["batch"], use_multiprocessing=False)
speeds, vectors = [], None
for _ in range(spec["repeats"]):
    seconds, vectors = timed(lambda: np.concatenate([encode(c) for c in chunks]))
    speeds.append(len(texts) / seconds)
calls = call_ms(lambda text: model.encode([text], use_multiprocessing=False), spec["one"])
print(json.dumps({"speeds": speeds, "vectors": vectors.tolist(), "p50_ms": float(np.median(calls)),
                  "rss_mb": peak_rss_mb(), "distill_s": float((folder / "distill_seconds").read_text())}))
"""

#: Run in a fresh process per edgesbert system: its peak RSS after loading and embedding once.
RSS = """
import json, sys
from edgesbert.runtime import load
from benchmarks.common.timing import peak_rss_mb
model = load(sys.argv[1], variant=sys.argv[2], threads=int(sys.argv[3]))
model.encode(json.loads(sys.stdin.read()), batch_size=int(sys.argv[4]))
print(peak_rss_mb())
"""


def export(model: str) -> dict[str, Path]:
    """The benchmark's export folders, written once."""
    from edgesbert.exporters import export_model

    folders = {}
    for name, options in EXPORTS.items():
        folder = BUILD / name
        if not (folder / "edgesbert.json").is_file():
            log(f"exporting {model} to {folder} ({options})")
            export_model(model, folder, **options)  # type: ignore[arg-type]
        folders[name] = folder
    return folders


def megabytes(folder: Path, variant: str) -> float:
    """The files the runtime reads for ``variant``: its graph (and weights) or table, and the tokenizer."""
    from edgesbert.runtime.manifest import Manifest
    from edgesbert.runtime.verify import files_of

    manifest = Manifest.load(folder)
    return sum((folder / f).stat().st_size for f in files_of(manifest, manifest.variant(variant))) / 1e6


def peak_rss(folder: Path, variant: str, texts: list[str], threads: int, batch: int) -> float:
    command = [sys.executable, "-c", RSS, str(folder), variant, str(threads), str(batch)]
    done = subprocess.run(
        command, input=json.dumps(texts), capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(done.stdout.split()[-1])


def latencies(encoders: list[Encoder], texts: list[str]) -> dict[str, float]:
    """p50 milliseconds of one-sentence calls, each sentence sent to every encoder in turn."""
    calls: dict[str, list[float]] = {e.variant: [] for e in encoders}
    for text in texts:
        for encoder in encoders:
            calls[encoder.variant].append(timed(encoder.encode, [text])[0])
    return {name: float(np.median(seconds)) * 1000 for name, seconds in calls.items()}


def model2vec_figures(
    model: str, texts: list[str], one: list[str], repeats: int, batch: int
) -> dict[str, Any]:
    """model2vec's distillation of ``model``, measured in the peers environment."""
    if not PEERS_PYTHON.is_file():
        raise SystemExit(f"{PEERS_PYTHON} is missing: run `make peers-venv`")
    from edgesbert.resolve import resolve_model

    spec: dict[str, object] = {"model": str(resolve_model(model)), "folder": str(BUILD / "model2vec")}
    spec |= {"texts": texts, "one": one, "repeats": repeats, "batch": batch}
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "true"}
    done = subprocess.run(
        [str(PEERS_PYTHON), "-c", MODEL2VEC],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise SystemExit(f"model2vec failed: {done.stderr[-3000:]}")
    figures = json.loads(done.stdout.splitlines()[-1])
    folder = BUILD / "model2vec"
    figures["mb"] = sum((folder / f).stat().st_size for f in ("model.safetensors", "tokenizer.json")) / 1e6
    return figures


def distill_seconds(model: str, folder: Path) -> float:
    """How long edgesbert's distillation of ``model`` takes here (the export step, without validation)."""
    from tokenizers import Tokenizer

    from edgesbert.exporters import load_reference
    from edgesbert.exporters.static_distill import distill
    from edgesbert.reference import BiEncoder

    reference = load_reference(model)
    assert isinstance(reference, BiEncoder), f"{model} is not a bi-encoder"
    return timed(distill, reference, Tokenizer.from_file(str(folder / "tokenizer.json")), 256)[0]


def main() -> None:
    from edgesbert.runtime import BiEncoder, load

    parser = arguments(__doc__.splitlines()[0])
    args = parser.parse_args()
    BUILD.mkdir(parents=True, exist_ok=True)
    first, second, gold = stsb_test()
    texts = unique_texts(first, second)
    one = random.Random(0).sample(texts, LATENCY_CALLS)
    folders = export(args.model)
    encoders, systems = [], {}  # systems: encoder label -> (folder key, variant)
    for name, variant in SYSTEMS:
        hints = [None] if variant.startswith("static") else ["latency", "throughput"]
        for hint in hints:
            model = load(folders[name], variant=variant, threads=args.threads, performance_hint=hint)
            if not isinstance(model, BiEncoder):
                raise SystemExit(f"{args.model} is not a bi-encoder")
            encode = (lambda m: lambda batch: m.encode(batch, batch_size=args.batch_size))(model)
            label = f"{variant} ({hint[0].upper()})" if hint else variant
            encoders.append(Encoder(name, label, encode, megabytes(folders[name], variant)))
            systems[label] = (name, variant)
    load_before = os.getloadavg()
    measure(encoders, texts, args.repeats, args.batch_size)
    p50 = latencies(encoders, one)
    load_after = os.getloadavg()
    log("peak RSS, one fresh process per variant")
    rss = {v: peak_rss(folders[n], v, texts, args.threads, args.batch_size) for n, v in SYSTEMS}
    log("model2vec (distilling once, then measuring)")
    m2v = model2vec_figures(args.model, texts, one, args.repeats, args.batch_size)
    ours_seconds = distill_seconds(args.model, folders["onnx"])
    rows: list[Row] = []
    for _, variant in SYSTEMS:  # the faster hint's throughput, the lower p50
        mine = [e for e in encoders if systems[e.variant][1] == variant and e.vectors is not None]
        best = max(mine, key=lambda e: float(np.median(e.speeds)))
        label = f"{variant} ({best.variant[-2]})" if len(mine) > 1 else variant
        rho = sts_spearman(best.vectors, texts, first, second, gold)  # type: ignore[arg-type]
        latency = min(p50[e.variant] for e in mine)
        speed, cold = float(np.median(best.speeds)), best.speeds[0]
        rows.append((label, speed, cold, latency, rho, best.megabytes, rss[variant]))
    theirs = sts_spearman(np.array(m2v["vectors"]), texts, first, second, gold)
    speed = float(np.median(m2v["speeds"]))
    cold = m2v["speeds"][0]
    m2v_row = ("model2vec (own distillation)", speed, cold, m2v["p50_ms"], theirs, m2v["mb"], m2v["rss_mb"])
    rows.append(m2v_row)
    report = render(args, rows, load_before, load_after, ours_seconds, m2v["distill_s"])
    print(report)
    if not args.no_save:
        path = RESULTS / f"static-{cpu_kind()}.md"
        path.write_text(report, encoding="utf-8")
        log(f"wrote {path}")


#: system, sentences/s (median round), first round's sentences/s, p50 ms, Spearman, MB, RSS MB
Row = tuple[str, float, float, float, float, float, float]


def render(
    args: argparse.Namespace,
    rows: list[Row],
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
    ours_s: float,
    theirs_s: float,
) -> str:
    """The report: one row per system, speeds relative to the fastest int8 and fp32 graphs."""
    int8 = max((r for r in rows if "int8" in r[0] and not r[0].startswith("static")), key=lambda r: r[1])
    fp32 = max((r for r in rows if r[0].split(" ")[0] in ("fp32", "O2", "openvino")), key=lambda r: r[1])
    lines = [
        f"# Static variants: {args.model}",
        "",
        f"Machine: {machine()}; {cpu_flags()}. Threads: {args.threads}, batch {args.batch_size}, "
        f"{args.repeats} interleaved rounds (median); load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after the timed rounds (other processes shared the 2 cores).",
        f"Distillation here: edgesbert {ours_s:.0f} s, model2vec {theirs_s:.0f} s (2 cores, torch).",
        "",
        "| system | sentences/s (batch 32) | × best int8 | × best fp32 | first round (× its int8) "
        "| one sentence p50 (ms) "
        "| STSb test Spearman | MB | peak RSS (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, speed, first, p50, rho, mb, rss in rows:
        lines.append(
            f"| {name} | {speed:,.0f} | {speed / int8[1]:.1f}× | {speed / fp32[1]:.1f}× "
            f"| {first:,.0f} ({first / int8[2]:.1f}×) | {p50:.2f} "
            f"| {rho:.4f} | {mb:.1f} | {rss:.0f} |"
        )
    lines += [
        "",
        f"Best int8: `{int8[0]}`; best fp32: `{fp32[0]}` (fastest here). Each graph ran under both "
        "performance hints, (L) latency and (T) throughput; its row shows the faster one's throughput, the "
        "lower p50. "
        "`O2-int8` is dynamic int8 (its numbers depend on the batch; never a default). Static variants read "
        "no hint. model2vec ran in its own process (not interleaved), "
        "`encode(batch_size=32)` on chunks of 320 sentences; its MB: model.safetensors and tokenizer.json. "
        "Static MB: the table and the folder's tokenizer.json. The first round is every variant's first "
        "pass over the sentences: a static variant's word cache meets every word for the first time there "
        "(later rounds read it). Produced by `python -m benchmarks.static`.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
