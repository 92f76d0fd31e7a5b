"""Fixtures of the bulk jobs: the tiny exported models, corpus files in every format, and helpers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("pyarrow")

TEXTS = [
    "The weather is lovely today.",
    "It's so sunny outside!",
    "He drove to the stadium.",
    "x",
    "A man is playing a guitar on a stage in front of a crowd.",
    "Ein Mann spielt Gitarre.",
    'Der, die, das: "quoted", with commas',
    "short",
    "Another sentence that is rather long, to make the batch padding matter for the shorter ones.",
    "a b c d e f g",
]
PAIRS = [(f"query {i % 3}", text) for i, text in enumerate(TEXTS)]


@pytest.fixture(scope="session")
def bi_folder(exported) -> Path:
    return exported("bert-mean")


@pytest.fixture(scope="session")
def cross_folder(exported) -> Path:
    return exported("bert-1", "cross-encoder")


def write_corpus(path: Path, texts: list[str], ids: list[object] | None = None) -> Path:
    """``texts`` (and ``ids`` under ``id``) in the format of ``path``'s suffix; ``text`` column."""
    suffix = path.suffix
    rows = [
        {"id": i, "text": t} if ids is not None else {"text": t}
        for i, t in zip(ids or texts, texts, strict=True)
    ]
    if suffix == ".txt":
        path.write_text("".join(t + "\n" for t in texts), "utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    elif suffix in (".csv", ".tsv"):
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, list(rows[0]), delimiter="\t" if suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {"text": pa.array(texts, pa.string())}
        if ids is not None:
            columns = {"id": pa.array(ids), **columns}
        pq.write_table(pa.table(columns), path, row_group_size=4)
    return path


def write_pairs(path: Path, pairs: list[tuple[str, str]]) -> Path:
    rows = [{"query": q, "document": d} for q, d in pairs]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    elif path.suffix in (".csv", ".tsv"):
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(
                f, ["query", "document"], delimiter="\t" if path.suffix == ".tsv" else ","
            )
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"query": [q for q, _ in pairs], "document": [d for _, d in pairs]}), path)
    return path
