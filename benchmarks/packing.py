"""Packed against padded batches on this CPU, in sorted and in random order (issue 29).

    python -m benchmarks.packing [MODEL] [--backend onnx|openvino] [--int8] [--exported FOLDER]
                                 [--repeats 3] [--threads 2] [--batch-size 32] [--no-save]
    python -m benchmarks.packing --rank [CROSS_ENCODER] [--int8] [--exported FOLDER] [--documents 100] ...
    python -m benchmarks.packing --first-pass [--int8] [--backend onnx|openvino] [--exported FOLDER] ...

Exports the model once with ``packed=True`` (``optimize="O2"`` for onnx; with ``--int8`` also its static
int8 variants: onnx int8-static, openvino int8) unless ``--exported`` names such a folder, then embeds every
unique STSb-test sentence with the padded variants and their packed twins in interleaved rounds
(``benchmarks.common.interleaved``), twice: longest first in batches of 32 (offline, little padding), and
in a random order one batch of 32 per call (as a server forms batches from one-sentence requests). Counts
the tokens each graph computes against the real ones. Writes benchmarks/results/packing-<backend>[-int8]-<cpu
kind>.md and .png.

``--rank`` times a cross-encoder (default: models/trecqa-reranker-minilm) instead: each TREC-dev question
ranks ``--documents`` answers drawn at random from all questions' (mixed lengths), padded against packed
(with ``--int8``, the int8 variants too, and how far each moves a score with its batch, which decides the
folder's default). Writes benchmarks/results/packing-rank-<backend>[-int8]-<cpu kind>.md.

``--first-pass`` runs each variant in fresh processes (``--repeats`` of them per order): the first pass over
the sentences, as a new CLI call, bulk job or server meets them (graphs compiled and memory allocated for
each new shape), against the second pass in the same process. Writes
benchmarks/results/packing-first-pass-<backend>[-int8]-<cpu kind>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from benchmarks.common.data import stsb_test, unique_texts
from benchmarks.common.interleaved import Encoder, arguments, measure, speedup
from benchmarks.common.machine import cpu_flags, cpu_kind, machine
from benchmarks.common.paths import RESULTS, ROOT, scratch
from benchmarks.common.timing import log, timed
from edgesbert import DEFAULT_MODEL
from edgesbert.exporters import export_model
from edgesbert.runtime import BiEncoder, CrossEncoder
from edgesbert.runtime.batching import BatchRunner
from edgesbert.runtime.inputs import Text
from edgesbert.runtime.packing import pack_features

VARIANTS = {"onnx": ("fp32", "O2", "packed"), "openvino": ("openvino", "openvino-packed")}
INT8 = {  # --quantize, and the padded and packed variants it makes
    "onnx": ("int8-static", ("int8-static", "packed-int8-static")),
    "openvino": ("int8", ("openvino-int8", "openvino-packed-int8")),
}
RERANKER = ROOT / "models" / "trecqa-reranker-minilm"


def padded_twin(name: str) -> str:
    """The padded variant a packed one is compared with: ``packed-int8-static`` -> ``int8-static``."""
    twin = name.replace("packed-", "").replace("-packed", "")
    return "fp32" if twin == "packed" else twin


def graph_tokens(model: BiEncoder, texts: list[str], call: int, batch: int, packed: bool) -> int:
    """Tokens the graph computes for ``texts`` in calls of ``call`` texts (batched as encode batches them)."""
    total = 0
    for start in range(0, len(texts), call):
        chunk = texts[start : start + call]
        for index in model.batch_indices(model._lengths(chunk), batch):
            features = model.tokenizer([chunk[i] for i in index])
            if packed:
                total += pack_features(features, 0).inputs["input_ids"].size
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
    parser.add_argument("--int8", action="store_true", help="static int8 too, padded and packed")
    parser.add_argument("--rank", action="store_true", help="a cross-encoder ranking documents")
    parser.add_argument("--documents", type=int, default=100, help="documents per query (--rank)")
    parser.add_argument("--first-pass", action="store_true", help="fresh processes: 1st pass vs 2nd")
    parser.add_argument("--pass-worker", nargs=2, metavar=("VARIANT", "ORDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank:
        return rank(args)
    if args.pass_worker:
        return pass_worker(args)
    variants = VARIANTS[args.backend]
    quantize, int8_variants = INT8[args.backend]
    if args.int8:
        variants = variants + int8_variants
    folder = args.exported
    if folder is None:
        folder = scratch("edgesbert-packing.") / "exported"
        log(f"exporting {args.model} with its packed graph")
        optimize = "O2" if args.backend == "onnx" else None
        export_model(args.model, folder, backend=args.backend, optimize=optimize, packed=True,
                     quantize=[quantize] if args.int8 else [])  # fmt: skip
    if args.first_pass:
        return first_pass(args, folder, variants)
    models = {name: BiEncoder(folder, variant=name, threads=args.threads) for name in variants}
    texts, shuffled = ordered_texts()
    batch = args.batch_size
    rows = []
    for order, ordered in (("sorted, longest first", texts), ("random, one batch per call", shuffled)):
        call = batch if order.startswith("random") else 10 * batch  # one batch, or measure's chunk
        encoders = [Encoder(name, name, in_calls(models[name], call, batch), 0.0) for name in variants]
        log(f"{order}: {len(ordered)} sentences, batches of {batch}")
        measure(encoders, ordered, args.repeats, batch)
        real = sum(int(models[variants[0]].tokenizer([t])["attention_mask"].sum()) for t in ordered)
        by_name = {encoder.name: encoder for encoder in encoders}
        for encoder in encoders:
            packed = models[encoder.name].variant.packed
            computed = graph_tokens(models[encoder.name], ordered, call, batch, packed)
            base = by_name[padded_twin(encoder.name)] if packed else by_name[variants[0]]
            gap = float(np.abs(np.asarray(encoder.vectors) - np.asarray(base.vectors)).max())
            rows.append((order, encoder.name, float(np.median(encoder.speeds)), speedup(encoder, base),
                         computed / real, gap))  # fmt: skip
    report = render(rows, args, len(texts))
    print(report)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        name = f"packing-{args.backend}{'-int8' if args.int8 else ''}-{cpu_kind()}"
        (RESULTS / f"{name}.md").write_text(report, encoding="utf-8")
        plot(rows, variants, RESULTS / f"{name}.png")


def ordered_texts() -> tuple[list[str], list[str]]:
    """STSb test's unique sentences, longest first, and the same in a fixed random order."""
    first, second, _ = stsb_test()
    texts = sorted(unique_texts(first, second), key=len, reverse=True)
    shuffled = texts[:]
    random.Random(0).shuffle(shuffled)
    return texts, shuffled


ORDERS = {"sorted": "sorted, longest first, batches of B", "random": "random, one batch of B per call"}


def pass_worker(args: argparse.Namespace) -> None:
    """In a fresh process: load, then two passes over the sentences; print their seconds as JSON."""
    variant, order = args.pass_worker
    loaded, model = timed(BiEncoder, args.exported, variant=variant, threads=args.threads)
    sorted_texts, shuffled = ordered_texts()
    texts, call = (sorted_texts, len(sorted_texts)) if order == "sorted" else (shuffled, args.batch_size)
    encode = in_calls(model, call, args.batch_size)
    seconds = [timed(encode, texts)[0] for _ in range(2)]
    print(json.dumps({"load_s": loaded, "seconds": seconds, "texts": len(texts)}))


def first_pass(args: argparse.Namespace, folder: Path, variants: tuple[str, ...]) -> None:
    """Every variant and order in ``args.repeats`` fresh processes, interleaved; the report."""
    runs: dict[tuple[str, str], list[dict]] = {}
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    for round_ in range(args.repeats):
        for order in ORDERS:
            for variant in variants[round_ % len(variants) :] + variants[: round_ % len(variants)]:
                argv = [sys.executable, "-m", "benchmarks.packing", args.model, "--exported", str(folder),
                        "--threads", str(args.threads), "--batch-size", str(args.batch_size),
                        "--pass-worker", variant, order]  # fmt: skip
                done = subprocess.run(argv, capture_output=True, text=True, check=True)
                runs.setdefault((order, variant), []).append(json.loads(done.stdout.splitlines()[-1]))
                log(f"{order} {variant}: {runs[order, variant][-1]}")
    lines = [
        "# The first pass in a fresh process against the second",
        "",
        f"Machine: {machine()} ({cpu_flags()}). Model: {args.model}, folder `{folder}`; STSb test's unique "
        f"sentences, {args.threads} threads, batches of {args.batch_size}; each variant and order in "
        f"{args.repeats} fresh processes, run in rotated order, medians (`python -m benchmarks.packing "
        f"--first-pass --backend {args.backend}{' --int8' if args.int8 else ''}`). First pass: right after "
        f"loading (no warm-up): every new input shape is met for the first time. Load average (1, 5, 15 "
        f"min) before the run: {load}.",
        "",
        "| order | variant | load s | first pass sent/s | second pass sent/s | first / second |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for (order, variant), found in runs.items():
        first, second = (float(np.median([r["seconds"][i] for r in found])) for i in (0, 1))
        count, loading = found[0]["texts"], float(np.median([r["load_s"] for r in found]))
        label = ORDERS[order].replace("B", str(args.batch_size))
        lines.append(f"| {label} | {variant} | {loading:.2f} | {count / first:,.0f} | "
                     f"{count / second:,.0f} | {second / first:.2f} |")  # fmt: skip
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        name = f"packing-first-pass-{args.backend}{'-int8' if args.int8 else ''}-{cpu_kind()}"
        (RESULTS / f"{name}.md").write_text(report, encoding="utf-8")


def rank(args: argparse.Namespace) -> None:
    """Time a cross-encoder ranking ``args.documents`` mixed-length documents per query, padded and packed."""
    from edgesbert.exporters.data_sets import trec_groups

    model = args.model if args.model != DEFAULT_MODEL else str(RERANKER)
    folder = args.exported
    if folder is None:
        folder = scratch("edgesbert-packing.") / "exported"
        log(f"exporting {model} with its packed graph")
        quantize = INT8[args.backend][0]
        export_model(
            model, folder, backend=args.backend, packed=True, quantize=[quantize] if args.int8 else []
        )
    names: tuple[str, ...] = {"onnx": ("fp32", "packed"), "openvino": ("openvino", "openvino-packed")}[
        args.backend
    ]
    if args.int8:
        names += INT8[args.backend][1]
    models = {name: CrossEncoder(folder, variant=name, threads=args.threads) for name in names}
    before = f"{names[0]}, batches by characters"  # the padded path before it sorted by tokens
    models[before] = ByCharacters(folder, variant=names[0], threads=args.threads)
    names = (before, *names)
    groups = trec_groups(10_000)
    pool = sorted({document for _, document in groups.pairs})
    queries = list(dict.fromkeys(query for query, _ in groups.pairs))[:40]
    pick = random.Random(0)
    documents = {query: pick.sample(pool, args.documents) for query in queries}

    def ranker(model: CrossEncoder) -> Callable[[list[str]], np.ndarray]:
        def run(chunk: list[str]) -> np.ndarray:
            return np.concatenate([model.predict([(q, d) for d in documents[q]], batch_size=args.batch_size)
                                   for q in chunk])  # fmt: skip

        return run

    encoders = [Encoder(name, name, ranker(models[name]), 0.0) for name in names]
    log(f"{len(queries)} queries x {args.documents} documents, batches of {args.batch_size}")
    measure(encoders, queries, args.repeats, 1)
    by_characters, padded = encoders[:2]
    lengths = [len(models[names[0]].tokenizer([(queries[0], d)])["input_ids"][0]) for d in pool]
    by_name = {e.name: e for e in encoders}

    def twin(e: Encoder) -> Encoder:
        return by_name[padded_twin(e.name)] if models[e.name].variant.packed else e

    def gap(e: Encoder) -> float:
        return float(np.abs(np.asarray(e.vectors) - np.asarray(twin(e).vectors)).max())

    def moves(e: Encoder) -> str:
        moved = models[e.name].variant.validation.get("batch_max_score_diff", float("nan"))
        return f"{moved:.1e}" + (" (not steady)" if models[e.name].variant.batch_dependent else "")

    flag = " --int8" if args.int8 else ""
    report = "\n".join([
        "# Packed against padded: a cross-encoder ranking mixed-length documents",
        "",
        f"Machine: {machine()} ({cpu_flags()}). Model: {model}; {len(queries)} TREC-dev questions, each "
        f"ranking {args.documents} answers drawn at random from all {len(pool)} (pair lengths "
        f"{min(lengths)}-{max(lengths)} tokens, median {int(np.median(lengths))}), {args.threads} threads, "
        f"batches of {args.batch_size}, median of {args.repeats} interleaved rounds "
        f"(`python -m benchmarks.packing --rank --backend {args.backend}{flag}`). Padded batches hold pairs "
        "of similar length in tokens; \"by characters\" is how they were formed before (as "
        "sentence-transformers forms them). Twin: a packed variant's padded twin (itself for the others), "
        "against which its speed and its largest score difference are given. Batch: how far a score moved "
        "with its batch in the export's validation; a variant that moves it more than 1e-5 is never the "
        "folder's default.",
        "",
        "| variant | queries/s | documents/s | vs padded fp32 | vs twin | vs by characters "
        "| max diff to twin | batch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *(f"| {e.name} | {np.median(e.speeds):.2f} | {np.median(e.speeds) * args.documents:,.0f} | "
          f"{speedup(e, padded)} | {speedup(e, twin(e))} | {speedup(e, by_characters)} | {gap(e):.1e} | "
          f"{moves(by_name[names[1]] if e is by_characters else e)} |"
          for e in encoders),
    ]) + "\n"  # fmt: skip
    print(report)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        name = f"packing-rank-{args.backend}{'-int8' if args.int8 else ''}-{cpu_kind()}.md"
        (RESULTS / name).write_text(report, encoding="utf-8")


class ByCharacters(CrossEncoder):
    """A cross-encoder batching pairs of similar length in characters, as the runtime did before tokens."""

    def _lengths(self, items: Sequence[Text]) -> Sequence[int]:
        return BatchRunner._lengths(self, items)


def render(rows: list[tuple], args: argparse.Namespace, count: int) -> str:
    lines = [
        "# Packed against padded batches",
        "",
        f"Machine: {machine()} ({cpu_flags()}). Model: {args.model}; {count} unique STSb-test sentences, "
        f"{args.threads} threads, batches of {args.batch_size}, median of {args.repeats} interleaved rounds "
        f"(`python -m benchmarks.packing --backend {args.backend}{' --int8' if args.int8 else ''}`). "
        "vs padded: a packed variant against its padded twin (fp32 against fp32), the others against the "
        "first. Graph tokens: tokens the graph computes per real token (padding included). Max diff: "
        "largest difference of any embedding value from that of the variant it is compared with.",
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
