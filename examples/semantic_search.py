"""Semantic search over real sentences with an exported bi-encoder and nothing but the runtime.

edgesbert export --output exported/all-MiniLM-L6-v2      # once
python examples/semantic_search.py "A man is playing a guitar." --top-k 5
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from edgesbert.runtime import load

CORPUS = Path(__file__).resolve().parents[1] / "data" / "stsb-en-test.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("queries", nargs="+")
    parser.add_argument("--model", type=Path, default=Path("exported/all-MiniLM-L6-v2"))
    parser.add_argument("--top-k", type=int, default=3)
    args = parser.parse_args()

    with CORPUS.open(encoding="utf-8") as f:
        corpus = list(dict.fromkeys(s for row in csv.reader(f) if len(row) == 3 for s in row[:2]))
    model = load(args.model)
    documents = model.encode(corpus, normalize_embeddings=True, show_progress_bar=True)
    scores = model.similarity(model.encode(args.queries, normalize_embeddings=True), documents)
    for query, row in zip(args.queries, scores, strict=True):
        print(f"\n{query}")
        for i in np.argsort(-row)[: args.top_k]:
            print(f"  {row[i]:.3f}  {corpus[i]}")


if __name__ == "__main__":
    main()
