"""What the command line reads and prints: stdin lines, tables, embeddings; no model code here."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from edgesbert.runtime.manifest import Manifest
from edgesbert.runtime.verify import FileCheck, files_of

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


def texts_or_stdin(values: Sequence[str]) -> list[str]:
    """The texts given, or every line of stdin for a single ``-`` (blank lines too: one row per line)."""
    if list(values) != ["-"]:
        return list(values)
    lines = []
    for number, raw in enumerate(sys.stdin.buffer, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"line {number} of stdin is not UTF-8 text (byte {raw[e.start]:#04x} at byte {e.start + 1} "
                "of the line); convert the input to UTF-8, e.g. with iconv"
            ) from None
        lines.append(line.removesuffix("\n").removesuffix("\r"))
    return lines


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
        files = [folder / v.file, (folder / v.file).with_suffix(".bin")]  # OpenVINO keeps weights in .bin
        size = f"{sum(f.stat().st_size for f in files if f.is_file()) / 1e6:.1f}"
        name = f"{v.name}*" if v.name == manifest.default_variant else v.name
        rows.append([name, v.file, size, v.precision.value, *figures])
    return table(rows)


def file_table(checks: Iterable[FileCheck], manifest: Manifest) -> str:
    """Each file of the folder, what its check found and which variants use it."""
    users: dict[str, list[str]] = {}
    for v in manifest.variants:
        for file in files_of(manifest, v):
            users.setdefault(file, []).append(v.name)
    rows = [["file", "state", "used by"]]
    rows += [[c.file, c.state.value, ", ".join(users.get(c.file, []))] for c in checks]
    return table(rows)


def print_embeddings(texts: Sequence[str], embeddings: np.ndarray) -> None:
    """The first embeddings beside their texts."""
    np.set_printoptions(precision=4, suppress=True, linewidth=110, floatmode="fixed")
    for text, vector in zip(texts[:SHOWN_TEXTS], embeddings[:SHOWN_TEXTS], strict=True):
        print(f"  {vector[:6]} ...  {text}")
    if len(texts) > SHOWN_TEXTS:
        print(f"  ... and {len(texts) - SHOWN_TEXTS} more (--json prints them all)")


def write_embeddings_json(texts: Sequence[str], embeddings: np.ndarray, out: TextIO) -> None:
    """``{"texts": [...], "embeddings": [[...], ...]}``, written row by row so memory stays flat."""
    out.write('{"texts": ' + json.dumps(texts) + ', "embeddings": [')
    for i, row in enumerate(embeddings):
        out.write((", " if i else "") + json.dumps(row.tolist()))
    out.write("]}\n")
