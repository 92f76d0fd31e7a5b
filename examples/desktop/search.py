"""Answer a query from a search table: cosine over all paragraphs, optionally reranked by a cross-encoder."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from examples.desktop.engine import Engine
from examples.desktop.store import SearchTable

#: how many of the bi-encoder's best paragraphs the cross-encoder rescores
RERANK_DEPTH = 50
SNIPPET_CHARS = 240


@dataclass(frozen=True)
class Hit:
    """One result: its score (cosine, or the reranker's), the file (relative path) and a snippet."""

    score: float
    file: str
    snippet: str
    text: str


def search(
    engine: Engine, table: SearchTable, query: str, top_k: int = 10, rerank: bool = False
) -> list[Hit]:
    """The ``top_k`` best paragraphs of ``table`` for ``query``, best first; [] for a blank query."""
    query = " ".join(query.split())
    if not query or not len(table.chunks):
        return []
    scores = table.embeddings @ engine.embed_query(query)
    depth = max(top_k, RERANK_DEPTH) if rerank and engine.can_rerank else top_k
    best = np.argsort(-scores, kind="stable")[:depth]
    if depth > top_k:
        rescored = engine.rerank(query, [table.chunks[i] for i in best])
        order = np.argsort(-rescored, kind="stable")[:top_k]
        best, top = best[order], rescored[order]
    else:
        top = scores[best]
    return [
        Hit(float(s), table.files[i], snippet(table.chunks[i]), table.chunks[i])
        for i, s in zip(best, top, strict=True)
    ]


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """``text`` cut at a word to at most ``limit`` characters, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"
