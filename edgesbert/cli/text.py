"""What the command line prints: tables and embeddings; no model code here (reading texts: cli_io)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from edgesbert.runtime.manifest import BATCH_MAX_SCORE_DIFF, BATCH_MIN_COSINE, Manifest
from edgesbert.runtime.packing import packing_note
from edgesbert.runtime.tuning import TUNED_FILE, portable_default, tuned_choice
from edgesbert.runtime.verify import FileCheck, files_of, weights_file

if TYPE_CHECKING:
    from edgesbert.runtime.numbers import VariantNumbers
    from edgesbert.tune import TuneResult

#: validation figures in the order the table shows them, with their format
FIGURES = {
    "spearman": ".4f",
    "reference_spearman": ".4f",
    "score_spearman": ".5f",
    "top1_agreement": ".3f",
    "label_agreement": ".3f",
    "mean_cosine": ".5f",
    "min_cosine": ".5f",
    "max_abs_diff": ".2e",
    "batch_min_cosine": ".6f",
    "batch_max_score_diff": ".2e",
    "samples": ".0f",
}
#: texts whose embeddings ``encode`` prints, and the most for which it prints their similarity matrix
SHOWN_TEXTS = 10


def table(rows: list[list[str]]) -> str:
    """Left-aligned columns under a header row and a rule."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def validation_table(manifest: Manifest, folder: Path) -> str:
    """Each variant's file, size, precision and validation figures; the default one starred."""
    present = {key for v in manifest.variants for key in v.validation}
    columns = [c for c in FIGURES if c in present] + sorted(present - set(FIGURES))
    rows = [["variant", "file", "MB", "precision", *columns]]
    for v in manifest.variants:
        figures = [
            format(v.validation[c], FIGURES.get(c, ".6g")) if c in v.validation else "" for c in columns
        ]
        # OpenVINO keeps weights in .bin, an ONNX graph over 2 GB in .onnx_data
        files = [folder / v.file, (folder / v.file).with_suffix(".bin"), folder / weights_file(v.file)]
        size = f"{sum(f.stat().st_size for f in files if f.is_file()) / 1e6:.1f}"
        name = f"{v.name}*" if v.name == manifest.default_variant else v.name
        rows.append([name, v.file, size, v.precision.value, *figures])
    return table(rows)


def recipe_lines(manifest: Manifest, detected_preset: bool = False) -> list[str]:
    """How each variant was made (``variant: key=value, ...``), as export and info print it."""
    lines = []
    for variant in manifest.variants:
        if variant.recipe:
            made = ", ".join(f"{key}={value}" for key, value in variant.recipe.items())
            detected = (
                " (int8 preset detected from this CPU)"
                if detected_preset and "preset" in variant.recipe
                else ""
            )
            lines.append(f"{variant.name}: {made}{detected}")
    return lines


def unsteady_lines(manifest: Manifest) -> list[str]:
    """Why each variant whose output follows its batch is not the default, and how to run or replace it."""
    lines = []
    packed = any(v.packed for v in manifest.variants)
    for v in manifest.variants:
        if not v.batch_dependent or v.name == manifest.default_variant:
            continue
        figures = v.validation
        if "batch_max_score_diff" in figures:
            moved = f"a score moves by {figures['batch_max_score_diff']:.1e}"
            moved += f" (steady: <= {BATCH_MAX_SCORE_DIFF:g})"
        elif "batch_min_cosine" in figures:
            moved = (
                f"a vector moves to cosine {figures['batch_min_cosine']:.6f} (steady: >= {BATCH_MIN_COSINE})"
            )
        else:
            moved = "activations are quantized per batch"
        # OpenVINO's attention sums a row in an order set by the row's length: whole packed rows fix it
        fix = "; export with --packed for a steady twin" if v.backend == "openvino" and not packed else ""
        lines.append(
            f"{v.name}: not the default: with its batch, {moved}; run it with --variant {v.name}{fix}"
        )
    return lines


def file_table(checks: Iterable[FileCheck], manifest: Manifest) -> str:
    """Each file of the folder, what its check found and which variants use it."""
    users: dict[str, list[str]] = {}
    for v in manifest.variants:
        for file in files_of(manifest, v):
            users.setdefault(file, []).append(v.name)
    rows = [["file", "state", "used by"]]
    rows += [[c.file, c.state.value, ", ".join(users.get(c.file, []))] for c in checks]
    return table(rows)


def print_description(manifest: Manifest, folder: Path) -> None:
    """What ``info`` says of a model folder above its table of variants."""
    print(f"{folder}: {manifest.kind.value}, schema {manifest.schema_version}")
    print(f"  source        {manifest.provenance.source_model} (exported {manifest.provenance.exported_at})")
    print(f"  max length    {manifest.max_seq_length} tokens")
    if manifest.embedding:
        e = manifest.embedding
        inside = "inside the graph" if e.pooling_in_graph else "in the runtime"
        print(
            f"  embedding     {e.dimension} dims, {e.pooling.value} pooling {inside}, normalize={e.normalize}"
        )
        print(f"  similarity    {e.similarity.value}; prompts: {dict(e.prompts) or 'none'}")
    if manifest.classifier:
        c = manifest.classifier
        print(f"  labels        {c.num_labels} {list(c.labels)}, activation {c.activation.value}")
    versions = ", ".join(f"{k} {v}" for k, v in manifest.provenance.versions.items())
    print(f"  versions      {versions}")
    where = manifest.provenance.cpu_name or "a CPU the export did not record"
    print(f"  default       {manifest.default_variant} (validated on {where})")
    tuned = tuned_choice(folder, manifest)
    portable = portable_default(folder, manifest, say=lambda _: None)
    if tuned is not None:
        hint = f", {tuned.performance_hint} hint" if tuned.performance_hint else ""
        rows = "" if tuned.row_tokens is None else f", {rows_label(tuned.row_tokens)}"
        where = f"(edgesbert tune, {tuned.measured_at}, {tuned.cpu})"
        print(f"  on this CPU   {tuned.variant}{hint}{rows} {where}")
    elif portable is not None:
        print(
            f"  on this CPU   {portable}: the default was chosen on another CPU kind and {portable} holds on "
            "any CPU (edgesbert tune measures the variants here)"
        )
    else:
        print("  on this CPU   not tuned: the default above (edgesbert tune times the variants)")
    packed = [v for v in manifest.variants if v.packed]
    note = packing_note(
        _model_type(folder), [v.name for v in packed], max((v.row_length for v in packed), default=0)
    )
    print(f"  packing       {note}")
    dependent = [v.name for v in manifest.variants if v.batch_dependent]
    if dependent:
        print(
            f"  batch effect  {', '.join(dependent)}: a text's output depends on the other texts of its "
            "batch (see batch_min_cosine / batch_max_score_diff); never the default"
        )


def _model_type(folder: Path) -> str:
    """The transformer's ``model_type`` from the folder's config.json ("unknown" without one)."""
    try:
        return str(
            json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type", "unknown")
        )
    except (OSError, ValueError):
        return "unknown"


def print_embeddings(
    texts: Sequence[str], embeddings: np.ndarray, variant: str, precision: str = "float32"
) -> None:
    """A header line, then the first embeddings beside their texts and how many more there are."""
    np.set_printoptions(precision=4, suppress=True, linewidth=110, floatmode="fixed")
    shown = variant if precision == "float32" else f"{variant}, {precision}"
    print(f"embeddings: {embeddings.shape[0]} x {embeddings.shape[1]} ({shown})")
    for text, vector in zip(texts[:SHOWN_TEXTS], embeddings[:SHOWN_TEXTS], strict=True):
        print(f"  {vector[:6]} ...  {text}")
    if len(texts) > SHOWN_TEXTS:
        print(f"  ... and {len(texts) - SHOWN_TEXTS} more (--json prints them all, --output FILE saves them)")


def numbers_table(numbers: Sequence[VariantNumbers], manifest: Manifest) -> str:
    """The variants on this CPU: agreement with fp32 here, batch effect, and whether each holds here."""
    cross = manifest.embedding is None
    header = ["variant", "max score diff to fp32" if cross else "mean cosine to fp32"]
    header += ["batch max score diff" if cross else "batch min cosine", "steady here", "as validated"]
    rows = [header]
    for n in numbers:
        if n.error is not None:
            rows.append([n.variant, f"not run here: {n.error}", "", "", ""])
            continue
        default = " (default)" if n.variant == manifest.default_variant else ""
        agreement = "other space" if n.mean_agreement != n.mean_agreement else f"{n.mean_agreement:.6f}"
        effect = f"{n.batch_effect:.2e}" if cross else f"{n.batch_effect:.6f}"
        rows.append([n.variant + default, agreement, effect, _yes(n.steady), _yes(n.as_validated)])
    return table(rows)


def _yes(value: bool) -> str:
    return "yes" if value else "NO"


def truncated_note(cut: int, total: int, limit: int) -> str:
    """The line that says how many texts were longer than the model's window and were cut."""
    texts = f"{cut} of {total:,} texts were" if total > 1 else "the text was"
    return (
        f"note: {texts} longer than {limit} tokens and truncated; --long-texts chunk embeds them whole, "
        "--long-texts error stops instead"
    )


def write_embeddings_json(texts: Sequence[str], embeddings: np.ndarray, out: TextIO) -> None:
    """``{"texts": [...], "embeddings": [[...], ...]}``, written row by row so memory stays flat."""
    out.write('{"texts": ' + json.dumps(texts) + ', "embeddings": [')
    for i, row in enumerate(embeddings):
        out.write((", " if i else "") + json.dumps(row.tolist()))
    out.write("]}\n")


def tuning_table(result: TuneResult) -> str:
    """What ``edgesbert tune`` measured, a row per variant and hint, and what it chose."""
    header = ["variant", "hint", "rows", "sentences/s", "short/s", "long/s", "unsorted/s", "one text p50 ms"]
    rows = [[*header, ""]]
    for f in result.figures:
        mark = "chosen" if f == result.choice else ("default" if f.variant == result.default_variant else "")
        hint = f.performance_hint or "default"
        packing = "padded" if f.row_tokens is None else str(f.row_tokens or "longest")
        if f.error is not None:
            rows.append([f.variant, hint, "-", "-", "-", "-", "-", "-", f"not run: {f.error}"])
            continue
        speeds = (f.sentences_per_s, f.short_per_s, f.long_per_s, f.unsorted_per_s)
        figures = [f"{speed:.0f}" for speed in speeds]
        rows.append([f.variant, hint, packing, *figures, f"{f.one_p50_ms:.2f}", mark])
    choice = result.choice
    how = [f"{choice.performance_hint} hint"] if choice.performance_hint else []
    how += [rows_label(choice.row_tokens)] if choice.row_tokens is not None else []
    chosen = choice.variant + (f" ({', '.join(how)})" if how else "")
    return (
        f"{result.folder} on {result.cpu.describe()}\n\n{table(rows)}\n\n"
        f"chosen: {chosen}; load() takes it on CPUs with these flags (written to {TUNED_FILE})"
    )


def rows_label(row_tokens: int) -> str:
    """How a packed variant fills its rows, in words: "rows of 64 tokens", or of each pass's longest text."""
    return f"rows of {row_tokens} tokens" if row_tokens else "rows of each pass's longest text"
