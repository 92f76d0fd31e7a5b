"""Soak: a million encode calls in one process, its resident memory sampled as it goes.

Long-running services must not grow (TEI #280, fastembed #222). Each setting runs in a fresh process:
``encode`` is called with one text at a time, cycling through the STSb-test sentences (1 to ~60 tokens)
with a 256-token text every 1,000th call, so every shape the arena will ever see comes early. RSS is read
from /proc every 1,000 calls; the figure is its growth from call 10,000 to the end. onnxruntime's CPU
memory arena is compared on and off; the runtime keeps the setting that grows least.

    python -m benchmarks.memory.soak             # 100k calls per arena setting, then 1M on a tiny model
    python -m benchmarks.memory.soak --calls 12000 --tiny-calls 12000 --output build/bench/soak-quick  # smoke
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common.data import stsb_test
from benchmarks.common.machine import cpu_flags, machine
from benchmarks.common.paths import RESULTS
from benchmarks.common.timing import log, status_mb

EXPORT = Path("build/bench/soak/all-MiniLM-L6-v2")
SAMPLE_EVERY = 1_000
BASELINE_CALL = 10_000


def worker(folder: Path, calls: int, arena: bool, threads: int) -> None:
    """Run ``calls`` one-text encodes and print one JSON line per RSS sample (calls, MB, seconds)."""
    import onnxruntime as ort

    from edgesbert.runtime import BiEncoder

    if not arena:  # the runtime does not expose the arena: switch it off in every session it makes
        base = ort.SessionOptions

        class NoArena(base):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                super().__init__()
                self.enable_cpu_mem_arena = False

        ort.SessionOptions = NoArena
    model = BiEncoder(folder, threads=threads)
    first, second, _ = stsb_test()
    texts = list(dict.fromkeys(first + second))
    long_text = " ".join(texts[:40])  # well past the 256-token limit: truncated to it
    start = time.perf_counter()
    for call in range(1, calls + 1):
        model.encode(long_text if call % 1000 == 0 else texts[call % len(texts)])
        if call % SAMPLE_EVERY == 0:
            resident = status_mb("VmRSS")
            print(json.dumps([call, round(resident, 1), round(time.perf_counter() - start, 1)]), flush=True)


def start(folder: Path, calls: int, arena: bool, threads: int) -> subprocess.Popen[str]:
    """One setting in a fresh process; ``collect`` reads its samples."""
    log(f"soak: {calls:,} calls, arena {'on' if arena else 'off'}, {threads} thread(s)")
    argv = [sys.executable, "-m", "benchmarks.memory.soak", "--worker", str(folder), str(calls)]
    return subprocess.Popen([*argv, str(int(arena)), str(threads)], stdout=subprocess.PIPE, text=True)


def collect(process: subprocess.Popen[str]) -> list[list[float]]:
    """The samples a worker printed, once it has finished."""
    out, _ = process.communicate()
    if process.returncode:
        raise RuntimeError(f"soak worker failed with exit status {process.returncode}")
    return [json.loads(line) for line in out.splitlines()]


def summary(name: str, samples: list[list[float]]) -> dict[str, float | str]:
    """RSS at call 10,000 and at the end, its growth, and the call rate."""
    base = next((s for s in samples if s[0] >= BASELINE_CALL), samples[0])  # short runs: the first sample
    end = samples[-1]
    return {
        "setting": name,
        "calls": end[0],
        "rss_10k_mb": base[1],
        "rss_end_mb": end[1],
        "growth_pct": round(100 * (end[1] - base[1]) / base[1], 2),
        "calls_per_s": round(end[0] / end[2]),
    }


def verdict(rows: list[dict]) -> str:
    """Which arena setting the runtime keeps: the one that grows least, then the smaller."""
    settings = [row for row in rows if "arena" in row["setting"] and "tiny" not in row["setting"]]
    best = min(settings, key=lambda row: (row["growth_pct"], row["rss_end_mb"]))
    worst = max(row["growth_pct"] for row in rows)
    return (
        f"Kept: {best['setting'].split(', ')[-1]} (onnxruntime's default; the backend sets nothing else): "
        f"of the real-model runs it grows least ({best['growth_pct']}%), "
        f"then holds least ({best['rss_end_mb']} MB). "
        f"Largest growth of any run: {worst}% (target: at most 5%). Calls per second are not speed figures: "
        "one thread, two runs side by side on a shared machine."
    )


def write(rows: list[dict], curves: dict[str, list[list[float]]], output: Path, folder: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    header = list(rows[0])
    lines = [
        "# Soak: resident memory over many encode calls",
        "",
        f"Machine: {machine()}; {cpu_flags()}. Models: {folder} and the tests' tiny bi-encoder (default "
        "variants), one text per call, one inference thread; the two arena runs side by side.",
        "Produced by `python -m benchmarks.memory.soak`; RSS sampled every 1,000 calls.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *[
            "| "
            + " | ".join(f"{row[h]:,}" if isinstance(row[h], int) else str(row[h]) for h in header)
            + " |"
            for row in rows
        ],
        "",
        verdict(rows),
        "",
        "![RSS over calls](soak-rss.png)",
        "",
    ]
    (output / "soak.md").write_text("\n".join(lines))
    (output / "soak.json").write_text(json.dumps({"rows": rows, "curves": curves}) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.5))
    for name, samples in curves.items():
        axes.plot([s[0] for s in samples], [s[1] for s in samples], label=name)
    axes.set_xlabel("encode calls")
    axes.set_ylabel("RSS (MB)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(output / "soak-rss.png", dpi=110)


def tiny_model(folder: Path) -> Path:
    """The tests' tiny random bi-encoder (hidden 32, 2 layers), exported: a fast model for a long soak."""
    if not (folder / "edgesbert.json").is_file():
        from edgesbert.exporters import export_model

        build = importlib.import_module("tests.tiny_models").build_bi_encoder  # the tests' own builder
        export_model(build(folder.with_name("tiny-source")), folder, validation_size=16)
    return folder


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        folder, calls, arena, threads = sys.argv[2:6]
        worker(Path(folder), int(calls), bool(int(arena)), int(threads))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=EXPORT, help="exported model (made if missing)")
    parser.add_argument("--calls", type=int, default=100_000, help="calls per arena setting, real model")
    parser.add_argument("--tiny-calls", type=int, default=1_000_000, help="then this many on a tiny model")
    parser.add_argument("--threads", type=int, default=1, help="inference threads per process")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (args.folder / "edgesbert.json").is_file():
        from edgesbert import DEFAULT_MODEL
        from edgesbert.exporters import export_model

        export_model(DEFAULT_MODEL, args.folder)
    # the two settings side by side, one core each: RSS does not depend on the neighbour, speed a little
    name = args.folder.name
    workers = {
        f"{name}, arena {s}": start(args.folder, args.calls, s == "on", args.threads) for s in ("on", "off")
    }
    curves = {label: collect(process) for label, process in workers.items()}
    if args.tiny_calls:
        tiny = tiny_model(Path("build/bench/soak/tiny"))
        curves["tiny model, arena on"] = collect(start(tiny, args.tiny_calls, True, args.threads))
    rows = [summary(label, samples) for label, samples in curves.items()]
    write(rows, curves, args.output, args.folder)
    print((args.output / "soak.md").read_text())


if __name__ == "__main__":
    main()
