"""edgesbert.util against sentence-transformers' own functions and against numpy brute force."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgesbert import util
from edgesbert.runtime.precision import quantize_embeddings


def clustered(n: int, dim: int = 64, clusters: int = 8, spread: float = 0.6, seed: int = 0) -> np.ndarray:
    """Gaussian clusters around random centres: structured like real embeddings, without exact ties."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return (centres[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, dim))).astype(np.float32)


def assert_same_ranking(ours: list, theirs: list, our_scores: list, their_scores: list) -> None:
    """Same scores within 1e-5 (relative, beyond 1) and same ids in the same order; ids whose scores lie
    that close to each other (float noise of two BLAS paths) may come in either order."""
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(our_scores, their_scores, atol=1e-5, rtol=1e-5)
    start = 0
    for end in range(1, len(theirs) + 1):
        tol = 1e-5 * max(1.0, abs(their_scores[end - 1]))
        if end == len(theirs) or their_scores[end - 1] - their_scores[end] > tol:
            assert set(ours[start:end]) == set(theirs[start:end]), (start, end)
            start = end


def assert_same_hits(ours: list[list[util.SearchHit]], theirs: list[list[dict]]) -> None:
    assert len(ours) == len(theirs)
    for our, their in zip(ours, theirs, strict=True):
        ids, scores = [h["corpus_id"] for h in our], [h["score"] for h in our]
        assert_same_ranking(ids, [h["corpus_id"] for h in their], scores, [h["score"] for h in their])


def brute_top_k(full: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Each row's best k of a full score matrix, ties to the lower id."""
    order = [np.lexsort((np.arange(full.shape[1]), -row))[:k] for row in full]
    return [[(int(i), float(row[i])) for i in best] for row, best in zip(full, order, strict=True)]


def assert_close_to_brute(hits: list[list[util.SearchHit]], full: np.ndarray, k: int) -> None:
    for ours, brute in zip(as_pairs(hits), brute_top_k(full, k), strict=True):
        assert_same_ranking(
            [i for i, _ in ours], [i for i, _ in brute], [s for _, s in ours], [s for _, s in brute]
        )


def as_pairs(hits: list[list[util.SearchHit]]) -> list[list[tuple[int, float]]]:
    return [[(h["corpus_id"], h["score"]) for h in row] for row in hits]


def hamming_scores(queries: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    bits_q, bits_c = np.unpackbits(queries, axis=1), np.unpackbits(corpus, axis=1)
    return -(bits_q[:, None, :] != bits_c[None, :, :]).sum(-1).astype(np.float64)


POINTS = clustered(3037)
CORPUS, QUERIES = POINTS[:3000], POINTS[3000:]


@pytest.mark.parametrize(
    ("score_function", "st_name"),
    [("cosine", "cos_sim"), ("cos_sim", "cos_sim"), (util.cos_sim, "cos_sim"), ("dot", "dot_score")],
)
@pytest.mark.parametrize(
    "options",
    [{}, {"top_k": 50, "query_chunk_size": 7, "corpus_chunk_size": 333}],
)
def test_semantic_search_matches_sentence_transformers(score_function, st_name, options) -> None:
    from sentence_transformers import util as st

    theirs = st.semantic_search(QUERIES, CORPUS, score_function=getattr(st, st_name), **options)
    ours = util.semantic_search(QUERIES, CORPUS, score_function=score_function, **options)
    assert_same_hits(ours, theirs)
    assert all(type(h["corpus_id"]) is int and type(h["score"]) is float for h in ours[0])


def test_semantic_search_top_k_beyond_the_corpus_and_a_callable() -> None:
    from sentence_transformers import util as st

    corpus = CORPUS[:45]
    theirs = st.semantic_search(QUERIES, corpus, top_k=100, corpus_chunk_size=10)
    ours = util.semantic_search(QUERIES, corpus, top_k=100, corpus_chunk_size=10, score_function=st.cos_sim)
    assert len(ours[0]) == 45
    assert_same_hits(ours, theirs)
    euclid = util.semantic_search(
        QUERIES, corpus, 4, 7, 100, lambda a, b: -np.linalg.norm(a[:, None] - b, axis=-1)
    )
    full = -np.linalg.norm(QUERIES[:, None].astype(np.float64) - corpus, axis=-1)
    assert_close_to_brute(euclid, full, 100)


def test_a_single_query_vector_float16_and_a_memory_mapped_corpus(tmp_path) -> None:
    assert util.semantic_search(QUERIES[0], CORPUS) == util.semantic_search(QUERIES[:1], CORPUS)
    half = util.semantic_search(QUERIES.astype(np.float16), CORPUS.astype(np.float16), top_k=5)
    assert half == util.semantic_search(
        QUERIES.astype(np.float16).astype(np.float32), CORPUS.astype(np.float16).astype(np.float32), top_k=5
    )
    np.save(tmp_path / "corpus.npy", CORPUS)
    mapped = np.load(tmp_path / "corpus.npy", mmap_mode="r")
    assert util.semantic_search(QUERIES, mapped, corpus_chunk_size=500) == util.semantic_search(
        QUERIES, CORPUS, 100, 500
    )


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_int8_and_uint8_against_brute_force(precision: str) -> None:
    ranges = np.stack([POINTS.min(0), POINTS.max(0)])
    corpus, queries = (quantize_embeddings(x, precision, ranges) for x in (CORPUS, QUERIES))
    dot = queries.astype(np.int64) @ corpus.astype(np.int64).T
    ours = util.semantic_search(queries, corpus, 5, 250, 20, "dot", precision=precision)
    assert as_pairs(ours) == brute_top_k(dot.astype(np.float64), 20)  # integer scores: exact, ties included
    unit_q, unit_c = (
        x / np.linalg.norm(x, axis=1, keepdims=True) for x in (np.float64(queries), np.float64(corpus))
    )
    cosine = unit_q @ unit_c.T
    ours = util.semantic_search(queries, corpus, 5, 250, 20, precision=precision)
    assert_close_to_brute(ours, cosine, 20)


@pytest.mark.parametrize("dim", [64, 61])
def test_binary_and_ubinary_are_minus_the_hamming_distance(dim: int) -> None:
    corpus, queries = CORPUS[:700, :dim], QUERIES[:, :dim]
    packed_c, packed_q = quantize_embeddings(corpus, "ubinary"), quantize_embeddings(queries, "ubinary")
    expected = brute_top_k(hamming_scores(packed_q, packed_c), 25)  # many ties: lower ids first
    for chunks in [(100, 16_384), (5, 97), (2, 3)]:
        ours = util.semantic_search(packed_q, packed_c, *chunks, 25, precision="ubinary")
        assert as_pairs(ours) == expected, chunks
    signed_q, signed_c = quantize_embeddings(queries, "binary"), quantize_embeddings(corpus, "binary")
    assert (
        as_pairs(util.semantic_search(signed_q, signed_c, 5, 97, 25, "dot", precision="binary")) == expected
    )


@pytest.mark.parametrize(
    ("query_chunk_size", "corpus_chunk_size", "top_k"),
    [(1, 1, 3), (4, 7, 10), (9, 333, 10), (2, 1000, 1), (9, 1001, 1001), (3, 250, 5000), (100, 50, 64)],
)
def test_chunking_boundaries(query_chunk_size: int, corpus_chunk_size: int, top_k: int) -> None:
    corpus = quantize_embeddings(CORPUS[:1001], "int8")
    queries = corpus[:9] // 2 + 1  # close to some corpus rows, still int8
    dot = queries.astype(np.int64) @ corpus.astype(np.int64).T
    ours = util.semantic_search(queries, corpus, query_chunk_size, corpus_chunk_size, top_k, "dot")
    assert as_pairs(ours) == brute_top_k(dot.astype(np.float64), top_k)


def test_semantic_search_errors() -> None:
    with pytest.raises(ValueError, match="differ in width: 64 and 32"):
        util.semantic_search(QUERIES, CORPUS[:, :32])
    with pytest.raises(ValueError, match="top_k must be at least 1, got 0"):
        util.semantic_search(QUERIES, CORPUS, top_k=0)
    with pytest.raises(ValueError, match="corpus_chunk_size must be at least 1"):
        util.semantic_search(QUERIES, CORPUS, corpus_chunk_size=0)
    with pytest.raises(ValueError, match=r"score_function must be one of \['cosine'"):
        util.semantic_search(QUERIES, CORPUS, score_function="euclidean")
    with pytest.raises(ValueError, match="precision must be one of"):
        util.semantic_search(QUERIES, CORPUS, precision="int4")
    with pytest.raises(ValueError, match="scored by Hamming distance"):
        util.semantic_search(QUERIES, CORPUS, score_function=lambda a, b: a @ b.T, precision="binary")
    with pytest.raises(ValueError, match="bytes of packed bits"):
        util.semantic_search(QUERIES, CORPUS, precision="binary")
    with pytest.raises(ValueError, match="must be matrices"):
        util.semantic_search(QUERIES, CORPUS[0])
    assert util.semantic_search(QUERIES[:3], np.empty((0, 64), np.float32)) == [[], [], []]
    assert util.semantic_search(QUERIES[:2], []) == [[], []]


PAIRS = clustered(250, seed=1)


@pytest.mark.parametrize(
    "options",
    [
        {"top_k": 5},
        {"top_k": 5, "max_pairs": 60, "query_chunk_size": 64, "corpus_chunk_size": 100},
        {"top_k": 300, "max_pairs": 2000, "query_chunk_size": 249, "corpus_chunk_size": 40},
        {"top_k": 3, "score_function": "dot"},
    ],
)
def test_paraphrase_mining_matches_sentence_transformers(options: dict) -> None:
    from sentence_transformers import util as st

    theirs_options = dict(options, score_function=st.dot_score if "score_function" in options else st.cos_sim)
    theirs = st.paraphrase_mining_embeddings(PAIRS, **theirs_options)
    ours = util.paraphrase_mining_embeddings(PAIRS, **options)
    assert all(i < j for _, i, j in ours) and len({(i, j) for _, i, j in ours}) == len(ours)
    assert_same_ranking(
        [(i, j) for _, i, j in ours],
        [(i, j) for _, i, j in theirs],
        *([s for s, _, _ in pairs] for pairs in (ours, theirs)),
    )


def test_paraphrase_mining_encodes_with_the_model() -> None:
    sentences = [f"sentence {i}" for i in range(len(PAIRS))]

    class Model:
        def encode(
            self, texts: list[str], *, batch_size: int = 32, show_progress_bar: bool = False
        ) -> np.ndarray:
            assert batch_size == 8 and texts == sentences
            return PAIRS

    mined = util.paraphrase_mining(Model(), sentences, batch_size=8, top_k=4, max_pairs=100)
    assert mined == util.paraphrase_mining_embeddings(PAIRS, top_k=4, max_pairs=100)
    assert util.paraphrase_mining_embeddings(PAIRS[:1]) == []


COMMUNITIES = np.concatenate(
    [clustered(size, clusters=1, spread=0.25, seed=seed) for seed, size in enumerate([40, 25, 12, 9, 30, 3])]
    + [clustered(60, clusters=60, seed=99)]
)[np.random.default_rng(3).permutation(179)]


@pytest.mark.parametrize(
    ("threshold", "min_size", "batch_size"), [(0.75, 10, 1024), (0.75, 3, 17), (0.9, 2, 64)]
)
def test_community_detection_matches_sentence_transformers(
    threshold: float, min_size: int, batch_size: int
) -> None:
    from sentence_transformers import util as st

    theirs = st.community_detection(COMMUNITIES, threshold, min_size, batch_size)
    ours = util.community_detection(COMMUNITIES, threshold, min_size, batch_size)
    assert [len(c) for c in ours] == [len(c) for c in theirs] and len(ours) >= 3
    unit = COMMUNITIES / np.linalg.norm(COMMUNITIES, axis=1, keepdims=True)
    for our, their in zip(ours, theirs, strict=True):
        assert our[0] == their[0]  # the central point first, then by decreasing similarity to it
        assert_same_ranking(our[1:], their[1:], *(list(unit[c[1:]] @ unit[c[0]]) for c in (our, their)))
    assert sorted(i for c in ours for i in c) == sorted({i for c in ours for i in c})


def test_community_detection_small_inputs() -> None:
    assert util.community_detection(np.empty((0, 8))) == []
    assert util.community_detection(COMMUNITIES[:5], min_community_size=10) == []
    assert util.community_detection(COMMUNITIES[0], min_community_size=1) == [[0]]
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        util.community_detection(COMMUNITIES, batch_size=0)


def test_util_needs_no_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; import numpy as np; from edgesbert import util; "
        "x = np.random.default_rng(0).normal(size=(50, 8)); util.semantic_search(x, x); "
        "util.paraphrase_mining_embeddings(x); util.community_detection(x, 0.5, 2); "
        "assert 'sentence_transformers' not in sys.modules"  # and importing torch would have raised
    )
    subprocess.run([sys.executable, "-c", code], check=True)
