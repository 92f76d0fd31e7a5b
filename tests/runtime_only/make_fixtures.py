"""Export models and save the PyTorch reference's outputs, for the runtime-only test environment.

Run in the full environment: ``python -m tests.runtime_only.make_fixtures OUTPUT``. It writes, per model,
``OUTPUT/<name>/model`` (an exported folder) and ``OUTPUT/<name>/reference.npz`` (the inputs and what the
reference returned for them). ``test_installed_runtime.py`` then checks the runtime against these files
in an environment where torch, transformers, onnx and optimum are not installed.
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgesbert import DEFAULT_MODEL
from edgesbert.exporters import export_model, load_reference
from tests.tiny_models import build_bi_encoder, build_cross_encoder

STSB_TEST = Path(__file__).resolve().parents[2] / "data" / "stsb-en-test.csv"
QUERY = "A man is playing a guitar."
STATIC_VARIANTS = ("static", "static-int8")


def stsb_rows() -> list[list[str]]:
    """The STSb test rows: sentence1, sentence2, score."""
    with STSB_TEST.open(encoding="utf-8", newline="") as f:
        return [row for row in csv.reader(f) if len(row) == 3]


def save_bi_encoder(source: Path | str, target: Path, texts: list[str], packed: bool = False) -> None:
    """Export a bi-encoder (``packed``: with its packed graph); store the reference's embeddings."""
    export_model(source, target / "model", kind="bi-encoder", validation_size=64, packed=packed)
    reference = load_reference(source, "bi-encoder")
    embeddings = reference.encode(texts, batch_size=64, normalize_embeddings=True)
    np.savez(target / "reference.npz", texts=np.array(texts), embeddings=embeddings)


def save_static(source: Path, target: Path, texts: list[str]) -> None:
    """Export a bi-encoder with its static variants; store what the runtime gives here for each (issue 31)."""
    from edgesbert.runtime import load

    export_model(source, target / "model", kind="bi-encoder", validation_size=64, static=True)
    found = {variant: load(target / "model", variant=variant).encode(texts) for variant in STATIC_VARIANTS}
    np.savez(target / "reference.npz", texts=np.array(texts), **found)


def save_cross_encoder(source: Path, target: Path, query: str, documents: list[str]) -> None:
    """Export a cross-encoder, with its packed graph, and store the reference's scores and ranking."""
    export_model(source, target / "model", kind="cross-encoder", validation_size=64, packed=True)
    reference = load_reference(source, "cross-encoder")
    scores = reference.predict([(query, doc) for doc in documents])
    ranking = [hit.corpus_id for hit in reference.rank(query, documents)] if scores.ndim == 1 else []
    np.savez(
        target / "reference.npz",
        query=np.array(query),
        documents=np.array(documents),
        scores=scores,
        ranking=np.array(ranking, dtype=np.int64),
    )


def main(output: Path) -> None:
    """Write every fixture under ``output``."""
    rows = stsb_rows()
    tiny_texts = [s for row in rows[:100] for s in row[:2]] + ["", "word " * 5000]
    documents = [row[1] for row in rows[:40]]
    with tempfile.TemporaryDirectory() as tmp:
        sources = Path(tmp)
        for name, options in {
            "bert-mean": {"architecture": "bert", "pooling": "mean"},
            "distilbert-cls-dense": {"architecture": "distilbert", "pooling": "cls", "dense_out": 16},
        }.items():
            (output / name).mkdir(parents=True)
            save_bi_encoder(
                build_bi_encoder(sources / name, **options), output / name, tiny_texts, packed=True
            )
        save_static(build_bi_encoder(sources / "static", architecture="bert"), output / "static", tiny_texts)
        for name, labels in {"bert-1": 1, "distilbert-3": 3}.items():
            (output / name).mkdir(parents=True)
            architecture = name.split("-")[0]
            source = build_cross_encoder(sources / name, architecture=architecture, num_labels=labels)
            save_cross_encoder(source, output / name, QUERY, documents)

    # The real default model on every STSb test sentence.
    (output / "minilm").mkdir(parents=True)
    sentences = sorted({s for row in rows for s in row[:2]})
    save_bi_encoder(DEFAULT_MODEL, output / "minilm", sentences)
    (output / "minilm" / "stsb.json").write_text(json.dumps(rows), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.runtime_only.make_fixtures OUTPUT_FOLDER")
    main(Path(sys.argv[1]))
