"""Packed against padded batches on this CPU, in sorted and in random order (issue 29).

    python -m benchmarks.packing [MODEL] [--backend onnx|openvino] [--exported FOLDER] [--repeats 3]
                                 [--threads 2] [--batch-size 32] [--no-save]

Exports the model once with ``packed=True`` (fp32 graphs only; ``optimize="O2"`` for onnx) unless
``--exported`` names such a folder, then embeds every unique STSb-test sentence with the padded variants
(onnx: fp32 and O2; openvino: openvino) and the packed one in interleaved rounds
(``benchmarks.interleaved``), twice: longest first in batches of 32 (offline, little
padding), and in a random order one batch of 32 per call (as a server forms batches from one-sentence
requests). Counts the tokens each graph computes against the real ones. Writes
benchmarks/results/packing-<backend>-<cpu kind>.md and .png.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.common import cpu_flags, cpu_kind, log, machine, stsb_test, unique_texts
from benchmarks.interleaved import Encoder, arguments, measure, speedup
from edgesbert.exporters import export_model
from edgesbert.runtime import BiEncoder
from edgesbert.runtime.packing import pack, unpadded

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {"onnx": ("fp32", "O2", "packed"), "openvino": ("openvino", "openvino-packed")}


def graph_tokens(model: BiEncoder, texts: list[str], call: int, batch: int, packed: bool) -> int:
    """Tokens the graph computes for ``texts`` in calls of ``call`` texts (each sorted, as encode does)."""
    total = 0
    for start in range(0, len(texts), call):
        chunk = sorted(texts[start : start + call], key=len, reverse=True)
        for first in range(0, len(chunk), batch):
            features = model.tokenizer(chunk[first : first + batch])
            if packed:
                total += pack(unpadded(features), model.variant.row_length or 128, 0).inputs["input_ids"].size
            else:
                total += features["input_ids"].size
    return total


def in_calls(model: BiEncoder, call: int, batch: int) -> Callable[[list[str]], np.ndarray]:
    """Encode in calls of ``call`` texts, batches of ``batch`` (call = batch: a server's batcher)."""

    def encode(chunk: list[str]) -> np.ndarray:
        starts = range(0, len(chunk), call)
        return np.concatenate([model.encode(chunk[i : i + call], batch_size=batch) for i in starts])

    return encode


def main() -> None:
    """Export (or reuse), time both orders, write the report."""
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(VARIANTS), default="onnx")
    parser.add_argument("--exported", type=Path, help="a folder exported with --packed (onnx: --optimize O2)")
    args = parser.parse_args()
    folder, variants = args.exported, VARIANTS[args.backend]
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="edgesbert-packing.")) / "exported"
        log(f"exporting {args.model} with its packed graph")
        optimize = "O2" if args.backend == "onnx" else None
        export_model(args.model, folder, backend=args.backend, optimize=optimize, packed=True)
    models = {name: BiEncoder(folder, variant=name, threads=args.threads) for name in variants}
    first, second, _ = stsb_test()
    texts = sorted(unique_texts(first, second), key=len, reverse=True)
    shuffled = texts[:]
    random.Random(0).shuffle(shuffled)
    batch = args.batch_size
    rows = []
    for order, ordered in (("sorted, longest first", texts), ("random, one batch per call", shuffled)):
        call = batch if order.startswith("random") else 10 * batch  # one batch, or measure's chunk
        encoders = [Encoder(name, name, in_calls(models[name], call, batch), 0.0) for name in variants]
        log(f"{order}: {len(ordered)} sentences, batches of {batch}")
        measure(encoders, ordered, args.repeats, batch)
        real = sum(int(models[variants[0]].tokenizer([t])["attention_mask"].sum()) for t in ordered)
        fp32 = encoders[0]
        for encoder in encoders:
            computed = graph_tokens(
                models[encoder.name], ordered, call, batch, models[encoder.name].variant.packed
            )
            gap = float(np.abs(np.asarray(encoder.vectors) - np.asarray(fp32.vectors)).max())
            rows.append((order, encoder.name, float(np.median(encoder.speeds)), speedup(encoder, fp32),
                         computed / real, gap))  # fmt: skip
    report = render(rows, args, len(texts))
    print(report)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        name = f"packing-{args.backend}-{cpu_kind()}"
        (RESULTS / f"{name}.md").write_text(report, encoding="utf-8")
        plot(rows, variants, RESULTS / f"{name}.png")


def render(rows: list[tuple], args: argparse.Namespace, count: int) -> str:
    lines = [
        "# Packed against padded batches",
        "",
        f"Machine: {machine()} ({cpu_flags()}). Model: {args.model}; {count} unique STSb-test sentences, "
        f"{args.threads} threads, batches of {args.batch_size}, median of {args.repeats} interleaved rounds "
        "(`python -m benchmarks.packing`). "
        "Graph tokens: tokens the graph computes per real token (padding included). Max diff: largest "
        "difference of any embedding value from the first (padded) variant's.",
        "",
        "| order | variant | sentences/s | vs padded | graph tokens per real token | max diff |",
        "|---|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {o} | {v} | {s:,.0f} | {x} | {t:.2f} | {d:.1e} |" for o, v, s, x, t, d in rows]
    return "\n".join(lines) + "\n"


def plot(rows: list[tuple], variants: tuple[str, ...], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    orders = list(dict.fromkeys(r[0] for r in rows))
    figure, axis = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(variants)
    for i, variant in enumerate(variants):
        speeds = [next(r[2] for r in rows if r[0] == o and r[1] == variant) for o in orders]
        axis.bar(np.arange(len(orders)) + i * width, speeds, width, label=variant)
    axis.set_xticks(np.arange(len(orders)) + width * (len(variants) - 1) / 2, orders)
    axis.set_ylabel("sentences / s")
    axis.legend()
    axis.set_title(f"packed vs padded ({cpu_kind()})")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
