"""Semantic search, paraphrase mining and communities over stored embeddings, with numpy only.

sentence-transformers' ``util`` functions: same arguments, same results, no torch. The corpus is
scored block by block keeping a running top-k per query, so memory beyond the embeddings depends on the
chunk sizes, not on the corpus (a memory-mapped corpus works too). int8/uint8 embeddings are scored in
float32 (exactly while |scores| < 2**24: int8 up to 1024 dimensions); packed bits (``precision="binary"``
or ``"ubinary"``) by minus their Hamming distance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypedDict

import numpy as np
from numpy.typing import ArrayLike

from edgesbert.runtime.batching import progress

ScoreFunction = str | Callable[[np.ndarray, np.ndarray], Any]
_Scorer = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]
_PRECISIONS = (None, "float32", "int8", "uint8", "binary", "ubinary")


class SearchHit(TypedDict):
    """One corpus entry found for a query: its row in the corpus and its score (higher is closer)."""

    corpus_id: int
    score: float


class Encoder(Protocol):
    """Anything that embeds a list of texts, as edgesbert's and sentence-transformers' models do."""

    def encode(self, sentences: list[str], *, batch_size: int = ..., show_progress_bar: bool = ...) -> Any:
        """Embed ``sentences``: one row per text."""


def cos_sim(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Cosine similarity of every row of ``a`` with every row of ``b`` (a vector counts as one row)."""
    return _floats(np.atleast_2d(a), unit=True) @ _floats(np.atleast_2d(b), unit=True).T


def dot_score(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Dot product of every row of ``a`` with every row of ``b`` (a vector counts as one row)."""
    return _floats(np.atleast_2d(a)) @ _floats(np.atleast_2d(b)).T


_NAMED: dict[object, str] = {"cosine": "cosine", "cos_sim": "cosine", cos_sim: "cosine"}
_NAMED.update({"dot": "dot", "dot_score": "dot", dot_score: "dot"})


def semantic_search(
    query_embeddings: ArrayLike,
    corpus_embeddings: ArrayLike,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 16_384,
    top_k: int = 10,
    score_function: ScoreFunction = "cosine",
    *,
    precision: str | None = None,
) -> list[list[SearchHit]]:
    """The ``top_k`` corpus entries closest to each query, as sentence-transformers' ``semantic_search``.

    Args:
        query_embeddings: (queries, dim) matrix, or one query vector.
        corpus_embeddings: (corpus, dim) matrix; float32/float16, int8/uint8, or packed bits.
        query_chunk_size: queries scored together.
        corpus_chunk_size: corpus rows scored together; beyond the embeddings, memory is about
            ``corpus_chunk_size * (4 * dim + 5 * query_chunk_size)`` bytes.
        top_k: hits per query (fewer if the corpus is smaller).
        score_function: "cosine" (or "cos_sim"), "dot" (or "dot_score"), or a callable (a, b) -> scores
            matrix (sentence-transformers' ``cos_sim`` works, at the cost of a conversion).
        precision: "binary" or "ubinary" when both sides are packed bits: the score is then minus the
            Hamming distance, whatever the score function names (a callable is refused). Packed bits
            scored without it give meaningless numbers.

    Returns:
        One list per query of ``{"corpus_id", "score"}`` dicts, best first; equal scores keep corpus order.
    """
    queries, corpus = np.asarray(query_embeddings), np.asarray(corpus_embeddings)
    queries = queries[None, :] if queries.ndim == 1 else queries
    chunks = (query_chunk_size, corpus_chunk_size)
    _check(queries, corpus, top_k=top_k, query_chunk_size=chunks[0], corpus_chunk_size=chunks[1])
    scorer = _scorer(score_function, precision)
    if len(corpus) == 0:
        return [[] for _ in range(len(queries))]
    scores, ids = _top_k(queries, corpus, min(top_k, len(corpus)), scorer, chunks)
    return [
        [{"corpus_id": i, "score": s} for s, i in zip(row_scores, row_ids, strict=True) if i >= 0]
        for row_scores, row_ids in zip(scores.tolist(), ids.tolist(), strict=True)
    ]


def paraphrase_mining(
    model: Encoder,
    sentences: list[str],
    show_progress_bar: bool = False,
    batch_size: int = 32,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100_000,
    max_pairs: int = 500_000,
    top_k: int = 100,
    score_function: ScoreFunction = "cosine",
) -> list[list[Any]]:
    """Embed ``sentences`` with ``model.encode`` and mine the most similar pairs among them.

    Returns:
        ``[score, i, j]`` triplets with ``i < j``, best first; see ``paraphrase_mining_embeddings``.
    """
    embeddings = model.encode(sentences, batch_size=batch_size, show_progress_bar=show_progress_bar)
    return paraphrase_mining_embeddings(
        np.asarray(embeddings), query_chunk_size, corpus_chunk_size, max_pairs, top_k, score_function
    )


def paraphrase_mining_embeddings(
    embeddings: ArrayLike,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100_000,
    max_pairs: int = 500_000,
    top_k: int = 100,
    score_function: ScoreFunction = "cosine",
    *,
    precision: str | None = None,
) -> list[list[Any]]:
    """The most similar pairs of embeddings, as sentence-transformers' ``paraphrase_mining_embeddings``.

    Each embedding is compared with all the others; its ``top_k`` neighbours make candidate pairs, of
    which the ``max_pairs`` best are kept. The score function is assumed symmetric.

    Returns:
        ``[score, i, j]`` triplets with ``i < j``, each pair once, best first.
    """
    data, chunks = np.asarray(embeddings), (query_chunk_size, corpus_chunk_size)
    _check(
        data, data, top_k=top_k, max_pairs=max_pairs, query_chunk_size=chunks[0], corpus_chunk_size=chunks[1]
    )
    scorer, n = _scorer(score_function, precision), len(data)
    if n < 2:
        return []
    keys, values = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    for start in range(0, n, query_chunk_size):
        queries = data[start : start + query_chunk_size]
        scores, ids = _top_k(queries, data, min(top_k, n - 1), scorer, chunks, start)
        rows = np.broadcast_to(np.arange(start, start + len(queries))[:, None], ids.shape)[ids >= 0]
        found = ids[ids >= 0]
        keys = np.concatenate([keys, np.minimum(rows, found) * n + np.maximum(rows, found)])
        values = np.concatenate([values, scores[ids >= 0]])
        _, first = np.unique(keys, return_index=True)  # a pair's first score, as sentence-transformers
        best = first[np.argsort(-values[first], kind="stable")[:max_pairs]]
        keys, values = keys[best], values[best]
    return [[s, i // n, i % n] for s, i in zip(values.tolist(), keys.tolist(), strict=True)]


def community_detection(
    embeddings: ArrayLike,
    threshold: float = 0.75,
    min_community_size: int = 10,
    batch_size: int = 1024,
    show_progress_bar: bool = False,
) -> list[list[int]]:
    """Groups of embeddings with cosine similarity at least ``threshold`` to a central one.

    As sentence-transformers' ``community_detection``: communities of at least ``min_community_size``
    members, none sharing a member, the largest first, each with its central point first and the rest by
    decreasing similarity to it. ``batch_size`` rows are compared with all the others at once.
    """
    data = np.asarray(embeddings)
    _check(data, data[:0], min_community_size=min_community_size, batch_size=batch_size)
    if data.size == 0 or len(np.atleast_2d(data)) < min_community_size:
        return []
    data = _floats(np.atleast_2d(data), unit=True)
    found: list[tuple[int, np.ndarray]] = []
    starts = range(0, len(data), batch_size)
    for start in progress(starts, len(starts), show_progress_bar):
        scores = data[start : start + batch_size] @ data.T
        close = scores >= threshold
        for row in np.flatnonzero(close.sum(axis=1) >= min_community_size):
            members = np.flatnonzero(close[row])
            found.append((start + int(row), members[np.argsort(-scores[row, members], kind="stable")]))
    found.sort(key=lambda community: len(community[1]), reverse=True)
    used, communities = np.zeros(len(data), dtype=bool), []
    for center, members in found:
        free = members[~used[members]]
        if not used[center] and len(free) >= min_community_size:
            communities.append([center, *free[free != center].tolist()])
            used[communities[-1]] = True
    return sorted(communities, key=len, reverse=True)


def _top_k(
    queries: np.ndarray,
    corpus: np.ndarray,
    k: int,
    scorer: _Scorer,
    chunks: tuple[int, int],
    self_offset: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and corpus ids, (queries, k), of each query's best ``k``, best first, ties to the lower id.

    With ``self_offset``, query ``i`` is corpus row ``self_offset + i`` and is not its own neighbour.
    Unfilled places (fewer than ``k`` finite scores) have id -1.
    """
    (prepare, score), (query_chunk_size, corpus_chunk_size) = scorer, chunks
    best, ids = np.full((len(queries), k), -np.inf, dtype=np.float32), np.full((len(queries), k), -1)
    for c_start in range(0, len(corpus), corpus_chunk_size):
        chunk = prepare(corpus[c_start : c_start + corpus_chunk_size])
        for q_start in range(0, len(queries), query_chunk_size):
            rows = slice(q_start, q_start + query_chunk_size)
            scores = score(prepare(queries[rows]), chunk)
            if self_offset is not None:
                own = np.arange(max(self_offset + q_start, c_start), c_start + scores.shape[1])
                own = own[own < self_offset + q_start + len(scores)]
                scores[own - self_offset - q_start, own - c_start] = -np.inf
            best[rows], ids[rows] = _merge(best[rows], ids[rows], scores, c_start)
            del scores  # before the next block is scored: two would double the memory
        del chunk
    return best, ids


def _merge(
    best: np.ndarray, ids: np.ndarray, scores: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's best ``k`` of a running top-k and of a block of scores whose ids start at ``offset``.

    Blocks come in corpus order: a new score equal to the k-th best loses to it, having the higher id.
    """
    k = best.shape[1]
    keep = scores > best[:, -1:]
    if scores.shape[1] > k and np.count_nonzero(keep) > 2 * k * len(scores):
        keep &= scores >= np.partition(scores, -k, axis=1)[:, -k, None]
    if not keep.any():
        return best, ids
    rows, cols = np.divmod(np.flatnonzero(keep), keep.shape[1])  # faster than a 2-D nonzero
    all_scores = np.concatenate([best.ravel(), scores[rows, cols]])
    all_ids = np.concatenate([ids.ravel(), cols + offset])
    order = np.lexsort((all_ids, -all_scores, np.concatenate([np.repeat(np.arange(len(best)), k), rows])))
    counts = k + np.bincount(rows, minlength=len(best))  # order: row 0's candidates best first, row 1's…
    take = order[(np.cumsum(counts) - counts)[:, None] + np.arange(k)].ravel()
    return all_scores[take].reshape(best.shape), all_ids[take].reshape(ids.shape)


def _scorer(score_function: ScoreFunction, precision: str | None) -> _Scorer:
    """How to prepare each side of a block (cast, normalize or unpack), and how to score the block."""
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {list(_PRECISIONS)}, got {precision!r}")
    name = _NAMED.get(score_function) if isinstance(score_function, str) or score_function in _NAMED else None
    binary = precision in ("binary", "ubinary")
    if name is not None and binary:
        return _signs, lambda q, c: (q @ c.T - q.shape[1]) / 2
    if name is not None:
        return (lambda x: _floats(x, unit=True)) if name == "cosine" else _floats, lambda q, c: q @ c.T
    if isinstance(score_function, str) or not callable(score_function):
        names = [key for key in _NAMED if isinstance(key, str)]
        raise ValueError(f"score_function must be one of {names} or a callable, got {score_function!r}")
    if binary:
        raise ValueError("packed binary embeddings are scored by Hamming distance: drop score_function")
    function = score_function
    return np.asarray, lambda q, c: np.asarray(function(q, c), dtype=np.float32)


def _floats(x: np.ndarray, unit: bool = False) -> np.ndarray:
    """``x`` as float32 (copied to be scaled in place), its rows scaled to unit length if ``unit``."""
    out = x.astype(np.float32, copy=unit)
    if unit:
        out /= np.maximum(np.sqrt(np.einsum("ij,ij->i", out, out)), 1e-12)[:, None]
    return out


def _signs(packed: np.ndarray) -> np.ndarray:
    """Packed bits as a ±1 float32 matrix: two rows' dot product is their bits less twice their Hamming.

    "binary" is "ubinary" - 128, the top bit of every byte flipped on both sides: no distance sees it.
    """
    if packed.dtype.kind not in "iu":
        raise ValueError(f"binary embeddings are bytes of packed bits (uint8 or int8), got {packed.dtype}")
    signs = np.unpackbits(packed.astype(np.uint8, copy=False), axis=1).astype(np.float32)
    return np.subtract(np.multiply(signs, 2, out=signs), 1, out=signs)


def _check(queries: np.ndarray, corpus: np.ndarray, **sizes: int) -> None:
    """Refuse sizes below 1, and queries and a non-empty corpus of different widths."""
    for name, size in sizes.items():
        if size < 1:
            raise ValueError(f"{name} must be at least 1, got {size}")
    if len(corpus) and (queries.ndim != 2 or corpus.ndim != 2):
        raise ValueError(f"embeddings must be matrices, got shapes {queries.shape} and {corpus.shape}")
    if len(corpus) and queries.shape[1] != corpus.shape[1]:
        widths = f"{queries.shape[1]} and {corpus.shape[1]}"
        raise ValueError(f"queries and corpus differ in width: {widths} (binary ones must both be packed)")
