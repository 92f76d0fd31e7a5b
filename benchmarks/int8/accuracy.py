"""Accuracy-aware int8 on held-out data: what each model's int8 variants keep of its reference, and how fast.

    python -m benchmarks.int8.accuracy [--model FOLDER_OR_ID ...] [--backend openvino|onnx ...] [--packed]

Exports each model as a user would (``--quantize int8`` on OpenVINO, ``int8-static`` on ONNX, default
tolerances, so the accuracy-aware search runs), then measures every variant on data held out from
calibration and validation:

- bi-encoders on STSb test: Spearman of cosines against gold and its drop from the reference's, mean and
  worst cosine to the PyTorch reference's embedding of the same text;
- cross-encoders on STSb test (a model trained on STSb) or on 600 TREC QA train pairs (any other): Spearman
  against gold where there is one, and the rank correlation of the scores with the reference's.

Throughput is items per second at batch 32 (2 threads, warm), the variants of a folder timed in interleaved
rounds (median of ``--repeats``), with each variant's ratio to the fp32 graph of its backend in the same
round. ``--packed`` exports the packed twins too. Prints a markdown table and writes
benchmarks/results/int8-accuracy[-packed]-<CPU kind>.md.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import sts_spearman, stsb_test, unique_texts, unit
from benchmarks.common.exports import reference_scores, reference_vectors
from benchmarks.common.interleaved import Encoder, arguments, measure, speedup
from benchmarks.common.machine import cpu_flags, cpu_kind, machine
from benchmarks.common.paths import BENCH, DATA, RESULTS
from benchmarks.common.timing import log
from edgesbert.evaluation import spearman
from edgesbert.resolve import resolve_model

WORK = BENCH / "int8-accuracy"
QUANTIZE = {"openvino": "int8", "onnx": "int8-static"}
FP32 = {"openvino": "openvino", "onnx": "fp32"}  # the graph each backend's int8 is compared with
HEADER = ["model", "variant", "recipe settled on", "validated", "held-out data", "Spearman", "drop (pt)",
          "agreement", "worst", "items/s (b32)", "× fp32"]  # fmt: skip


@dataclass
class HeldOut:
    """A model's held-out items, what to call on a runtime, and how to judge its outputs."""

    name: str
    items: list[Any]  # texts (bi-encoders) or pairs, longest first
    run: Callable[[Any], Callable[[list[Any]], np.ndarray]]  # runtime -> batch call
    judge: Callable[[np.ndarray], tuple[str, str, str, str]]  # Spearman, drop, agreement, worst


def export(model: Path, label: str, backend: str, packed: bool) -> Path:
    """The model exported with the backend's int8 (once; delete the folder to export again)."""
    from edgesbert.exporters import export_model

    folder = WORK / f"{label}-{backend}{'-packed' if packed else ''}"
    if not (folder / "edgesbert.json").is_file():
        log(f"exporting {label} to {backend} {QUANTIZE[backend]}")
        export_model(model, folder, backend=backend, quantize=[QUANTIZE[backend]], packed=packed)
    return folder


def bi_encoder_held_out(model: Path) -> HeldOut:
    """STSb test, judged by cosine Spearman against gold and cosine to the reference."""
    first, second, gold = stsb_test()
    texts = unique_texts(first, second)
    reference = reference_vectors(model, texts, threads=2)
    base = sts_spearman(reference, texts, first, second, gold)
    unit_reference = unit(reference)

    def judge(vectors: np.ndarray) -> tuple[str, str, str, str]:
        held = sts_spearman(vectors, texts, first, second, gold)
        cosines = (unit(vectors) * unit_reference).sum(axis=1)
        return (
            f"{held:.4f}",
            f"{(base - held) * 100:+.2f}",
            f"cos {cosines.mean():.4f}",
            f"{cosines.min():.4f}",
        )

    return HeldOut(
        "STSb test", texts, lambda runtime: functools.partial(runtime.encode, batch_size=32), judge
    )


def cross_encoder_held_out(model: Path, label: str) -> HeldOut:
    """STSb test for an STS cross-encoder (judged against gold too), else 600 TREC QA train pairs."""
    if "stsb" in label:
        first, second, gold = stsb_test()
        pairs, name = list(zip(first, second, strict=True)), "STSb test"
    else:  # the last 600 train pairs: the export validates on dev and calibrates on the first train pairs
        with (DATA / "trecqa-train.csv").open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))[-600:]
        pairs, gold, name = [(r["qtext"], r["atext"]) for r in rows], None, "TREC QA train, last 600"
    order = sorted(range(len(pairs)), key=lambda i: -len(pairs[i][0] + pairs[i][1]))
    pairs = [pairs[i] for i in order]
    gold = None if gold is None else gold[order]
    reference = reference_scores(model, pairs, threads=2)
    base = spearman(reference, gold) if gold is not None else float("nan")

    def judge(scores: np.ndarray) -> tuple[str, str, str, str]:
        scores = scores.reshape(len(pairs), -1)[:, 0]
        worst = f"{np.abs(scores - reference).max():.2e} abs"
        agreement = f"ρ {spearman(reference, scores):.4f}"
        if gold is None:
            return "–", "–", agreement, worst
        held = spearman(scores, gold)
        return f"{held:.4f}", f"{(base - held) * 100:+.2f}", agreement, worst

    return HeldOut(name, pairs, lambda runtime: functools.partial(runtime.predict, batch_size=32), judge)


def rows(label: str, folder: Path, held: HeldOut, backend: str, repeats: int) -> list[list[str]]:
    """One row per variant of ``folder``: recipe, validation, held-out figures, speed against fp32."""
    from edgesbert.runtime import load
    from edgesbert.runtime.manifest import Manifest

    variants = Manifest.load(folder).variants
    encoders = [
        Encoder(v.name, v.name, held.run(load(folder, variant=v.name, threads=2)), 0.0) for v in variants
    ]
    log(f"{label}: {len(encoders)} variants on {len(held.items)} items of {held.name}")
    measure(encoders, held.items, repeats, 32)
    base = next((e for e in encoders if e.name == FP32[backend]), None)
    table = []
    for variant, encoder in zip(variants, encoders, strict=True):
        recipe, dev = variant.recipe, variant.validation
        settled = ", ".join(
            part
            for part in (
                f"SmoothQuant {recipe['smooth_quant']}" if recipe.get("smooth_quant") else "",
                f"{recipe['kept_float_matmuls']} MatMuls float" if recipe.get("kept_float_matmuls") else "",
                f"{recipe['recipes_tried']} tried" if "recipes_tried" in recipe else "",
            )
            if part
        )
        validated = (
            f"cos {dev['mean_cosine']:.4f}"
            if "mean_cosine" in dev
            else f"ρ {dev.get('score_spearman', 1.0):.4f}"
        )
        judged = held.judge(np.asarray(encoder.vectors))
        speed = f"{np.median(encoder.speeds):.0f}"
        table.append(
            [
                label,
                variant.name,
                settled or "-",
                validated,
                held.name,
                *judged,
                speed,
                speedup(encoder, base),
            ]
        )
    return table


def report(table: list[list[str]], repeats: int, command: str) -> str:
    """The markdown report: the machine, then the table."""
    lines = [
        f"# Accuracy-aware int8 on held-out data ({cpu_kind()})",
        "",
        f"{machine()}; {cpu_flags()}. `python -m benchmarks.int8.accuracy{command}`, median of {repeats}",
        "interleaved rounds. Drops are the reference's Spearman against gold minus the variant's; agreement",
        "is the mean cosine to the PyTorch reference's embedding of the same text (bi-encoders) or the rank",
        "correlation with its scores (cross-encoders); worst is the lowest cosine or the largest score gap.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join("---" if i < 5 else "---:" for i in range(len(HEADER))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    return "\n".join([*lines, ""])


def main() -> None:
    from edgesbert import DEFAULT_MODEL
    from edgesbert.exporters.pipeline import detect_kind
    from edgesbert.runtime.manifest import ModelKind

    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", dest="models", help=f"a folder or id (default {DEFAULT_MODEL})"
    )
    parser.add_argument("--backend", action="append", choices=sorted(QUANTIZE), help="default: openvino")
    parser.add_argument("--packed", action="store_true", help="export and time the packed variants too")
    args = parser.parse_args()
    table = []
    for name in args.models or [args.model]:
        model, label = resolve_model(name), name.rstrip("/").split("/")[-1]
        cross = detect_kind(model) is ModelKind.CROSS_ENCODER
        held = cross_encoder_held_out(model, label) if cross else bi_encoder_held_out(model)
        for backend in args.backend or ["openvino"]:
            table += rows(label, export(model, label, backend, args.packed), held, backend, args.repeats)
    text = report(table, args.repeats, " --packed" if args.packed else "")
    print(text)
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        name = f"int8-accuracy{'-packed' if args.packed else ''}-{cpu_kind()}.md"
        (RESULTS / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
