"""Accuracy-aware int8 on held-out data: what each model's int8 variants keep of its reference.

    python -m benchmarks.int8.accuracy [--model FOLDER_OR_ID ...] [--backend openvino --backend onnx]

Exports each bi-encoder as a user would (``--quantize int8`` on OpenVINO, ``int8-static`` on ONNX, default
tolerances, so the accuracy-aware search runs), then measures every variant on STSb *test* (held out from
calibration and validation): Spearman against gold and against the reference's, cosine to the PyTorch
reference, and sentences per second at batch 32 (warm, 2 threads; compare speeds only within one run on
a quiet machine). Prints a markdown table and writes benchmarks/results/int8-accuracy-<CPU kind>.md.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import numpy as np

from benchmarks.common.data import sts_spearman, stsb_test, unique_texts
from benchmarks.common.exports import reference_vectors
from benchmarks.common.machine import cpu_flags, cpu_kind, machine
from benchmarks.common.paths import BENCH, RESULTS
from benchmarks.common.timing import log, one_pass
from edgesbert import DEFAULT_MODEL
from edgesbert.resolve import resolve_model

WORK = BENCH / "int8-accuracy"
QUANTIZE = {"openvino": "int8", "onnx": "int8-static"}


def export(model: Path, label: str, backend: str) -> Path:
    """The model exported with the backend's int8 (once; delete the folder to export again)."""
    from edgesbert.exporters import export_model

    folder = WORK / f"{label}-{backend}"
    if not (folder / "edgesbert.json").is_file():
        log(f"exporting {label} to {backend} {QUANTIZE[backend]}")
        export_model(model, folder, backend=backend, quantize=[QUANTIZE[backend]])
    return folder


def rows(model: Path, label: str, folder: Path, sts: tuple) -> list[list[str]]:
    """One row per variant of ``folder``: recipe, STSb-dev and -test figures, speed."""
    from edgesbert.runtime import BiEncoder, load
    from edgesbert.runtime.manifest import Manifest

    first, second, gold = sts
    texts = unique_texts(first, second)
    reference = reference_vectors(model, texts, threads=2)
    reference_spearman = sts_spearman(reference, texts, first, second, gold)
    unit_reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    table = []
    for variant in Manifest.load(folder).variants:
        runtime = load(folder, variant=variant.name, threads=2)
        if not isinstance(runtime, BiEncoder):
            raise SystemExit(f"{model} is a cross-encoder; this benchmark measures bi-encoders")
        speed, vectors = one_pass(functools.partial(runtime.encode, batch_size=32), texts, warm_up=64)
        cosines = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True) * unit_reference).sum(axis=1)
        held_out = sts_spearman(vectors, texts, first, second, gold)
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
        table.append([
            label, variant.name, settled or "-",
            f"{(dev['reference_spearman'] - dev['spearman']) * 100:+.2f}", f"{dev['mean_cosine']:.4f}",
            f"{held_out:.4f}", f"{(reference_spearman - held_out) * 100:+.2f}",
            f"{cosines.mean():.4f}", f"{cosines.min():.4f}", f"{speed:.0f}",
        ])  # fmt: skip
    return table


def report(table: list[list[str]]) -> str:
    """The markdown report: the machine, then the table."""
    header = ["model", "variant", "recipe settled on", "dev drop (pt)", "dev mean cos", "test Spearman",
              "test drop (pt)", "test mean cos", "test min cos", "sent/s (b32)"]  # fmt: skip
    lines = [
        f"# Accuracy-aware int8 on held-out STSb test ({cpu_kind()})",
        "",
        f"{machine()}; {cpu_flags()}. `python -m benchmarks.int8.accuracy`. Drops are the reference's",
        "Spearman minus the variant's; cosines are to the PyTorch reference's embedding of the same text.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i < 3 else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", help=f"a bi-encoder folder or id (default {DEFAULT_MODEL})"
    )
    parser.add_argument("--backend", action="append", choices=sorted(QUANTIZE), help="default: openvino")
    args = parser.parse_args()
    sts = stsb_test()
    table = []
    for name in args.model or [DEFAULT_MODEL]:
        model, label = resolve_model(name), name.rstrip("/").split("/")[-1]
        for backend in args.backend or ["openvino"]:
            table += rows(model, label, export(model, label, backend), sts)
    text = report(table)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"int8-accuracy-{cpu_kind()}.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
