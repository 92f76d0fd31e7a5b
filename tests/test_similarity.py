"""Similarity matrices and pairwise scores: the same numbers as sentence-transformers' util functions."""

from __future__ import annotations

import numpy as np
import pytest

from edgesbert.runtime.manifest import SimilarityFunction
from edgesbert.runtime.similarity import normalize, similarity, similarity_pairwise

MATRIX = {"cosine": "cos_sim", "dot": "dot_score", "euclidean": "euclidean_sim", "manhattan": "manhattan_sim"}
PAIRWISE = {
    "cosine": "pairwise_cos_sim",
    "dot": "pairwise_dot_score",
    "euclidean": "pairwise_euclidean_sim",
    "manhattan": "pairwise_manhattan_sim",
}


@pytest.fixture(scope="module")
def st_util():
    return pytest.importorskip("sentence_transformers.util")


def _random(*shape: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _exact(a: np.ndarray, b: np.ndarray, fn: str) -> np.ndarray:
    """The matrix in float64, straight from the definitions (distances negated)."""
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    diff = a[:, None, :] - b[None, :, :]
    if fn == "cosine":
        norms = np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :]
        return (a @ b.T) / norms
    if fn == "dot":
        return a @ b.T
    if fn == "euclidean":
        return -np.sqrt((diff**2).sum(-1))
    return -np.abs(diff).sum(-1)


@pytest.mark.parametrize("fn", list(MATRIX))
def test_matrix_matches_sentence_transformers(st_util, fn):
    a, b = _random(5, 48, seed=1), _random(7, 48, seed=2)
    out = similarity(a, b, fn)
    expected = getattr(st_util, MATRIX[fn])(a, b).numpy()
    assert out.shape == (5, 7)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out, _exact(a, b, fn), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn", list(PAIRWISE))
def test_pairwise_matches_sentence_transformers(st_util, fn):
    a, b = _random(6, 48, seed=3), _random(6, 48, seed=4)
    out = similarity_pairwise(a, b, fn)
    expected = getattr(st_util, PAIRWISE[fn])(a, b).numpy()
    assert out.shape == (6,)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out, np.diag(_exact(a, b, fn)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fn", list(MATRIX))
def test_pairwise_is_the_diagonal_of_the_matrix(fn):
    a, b = _random(4, 16, seed=5), _random(4, 16, seed=6)
    np.testing.assert_allclose(
        similarity_pairwise(a, b, fn), np.diag(similarity(a, b, fn)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("fn", ["euclidean", "manhattan"])
def test_distances_are_negated_so_that_higher_is_closer(st_util, fn):
    a = np.array([[0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    b = np.array([[3.0, 4.0], [1.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    distances = {
        "euclidean": [[5.0, np.sqrt(2), 1.0], [np.sqrt(13), 0.0, np.sqrt(5)]],
        "manhattan": [[7.0, 2.0, 1.0], [5.0, 0.0, 3.0]],
    }[fn]
    out = similarity(a, b, fn)
    np.testing.assert_allclose(out, -np.array(distances), atol=1e-6)
    assert (out <= 0).all()
    np.testing.assert_allclose(out, getattr(st_util, MATRIX[fn])(a, b).numpy(), atol=1e-6)
    # The nearest neighbour is the highest score.
    assert out.argmax(axis=1).tolist() == [2, 1]
    pairwise = similarity_pairwise(a, b[:2], fn)
    np.testing.assert_allclose(pairwise, [-distances[0][0], -distances[1][1]], atol=1e-6)
    np.testing.assert_allclose(pairwise, getattr(st_util, PAIRWISE[fn])(a, b[:2]).numpy(), atol=1e-6)


def test_hand_computed_cosine_and_dot():
    a = np.array([[1.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    b = np.array([[0.0, 2.0], [6.0, 8.0]], dtype=np.float32)
    np.testing.assert_allclose(similarity(a, b, "cosine"), [[0.0, 0.6], [0.8, 1.0]], atol=1e-6)
    np.testing.assert_allclose(similarity(a, b, "dot"), [[0.0, 6.0], [8.0, 50.0]], atol=1e-5)
    np.testing.assert_allclose(similarity_pairwise(a, b, "cosine"), [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(similarity_pairwise(a, b, "dot"), [0.0, 50.0], atol=1e-5)


def test_enum_and_name_are_the_same_function():
    a, b = _random(3, 8, seed=7), _random(2, 8, seed=8)
    for fn in SimilarityFunction:
        np.testing.assert_array_equal(similarity(a, b, fn), similarity(a, b, fn.value))
        np.testing.assert_array_equal(similarity_pairwise(a, a, fn), similarity_pairwise(a, a, fn.value))


def test_lists_and_float64_are_accepted_and_give_float32():
    out = similarity([[1, 0], [0, 1]], np.array([[1.0, 1.0]]), "dot")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.0], [1.0]])


def test_zero_vectors_have_cosine_zero_like_sentence_transformers(st_util):
    a = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]], dtype=np.float32)
    out = similarity(a, a, "cosine")
    np.testing.assert_allclose(out, [[0.0, 0.0], [0.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(out, st_util.cos_sim(a, a).numpy(), atol=1e-6)
    np.testing.assert_allclose(similarity_pairwise(a, a, "cosine"), [0.0, 1.0], atol=1e-6)


def test_normalize_gives_unit_rows_and_keeps_zero_rows():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]], dtype=np.float32)
    out = normalize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [0.0, -1.0]], atol=1e-7)


@pytest.mark.parametrize("fn", list(MATRIX))
def test_vectors_are_treated_as_one_row_matrices(st_util, fn):
    v, w, m = _random(16, seed=9), _random(16, seed=10), _random(3, 16, seed=11)
    assert similarity(v, w, fn).shape == (1, 1)
    np.testing.assert_allclose(similarity(v, w, fn), getattr(st_util, MATRIX[fn])(v, w).numpy(), rtol=1e-5)
    assert similarity(v, m, fn).shape == (1, 3)
    assert similarity(m, v, fn).shape == (3, 1)
    np.testing.assert_allclose(similarity(v, m, fn), similarity(m, v, fn).T, rtol=1e-5, atol=1e-6)
    pairwise = similarity_pairwise(v, w, fn)
    assert pairwise.shape == (1,)  # sentence-transformers returns a 0-d tensor here
    np.testing.assert_allclose(pairwise[0], getattr(st_util, PAIRWISE[fn])(v, w).item(), rtol=1e-5)


@pytest.mark.parametrize("fn", list(MATRIX))
def test_more_than_two_dimensions_are_refused(fn):
    cube = np.zeros((2, 3, 4), dtype=np.float32)
    message = r"embeddings must be a vector or a matrix, got shape \(2, 3, 4\)"
    with pytest.raises(ValueError, match=message):
        similarity(cube, np.zeros((1, 4)), fn)
    with pytest.raises(ValueError, match=message):
        similarity(np.zeros((1, 4)), cube, fn)
    with pytest.raises(ValueError, match=message):
        similarity_pairwise(cube, cube, fn)
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        similarity(np.float32(1.0), np.zeros((1, 1)), fn)


@pytest.mark.parametrize("fn", list(MATRIX))
def test_pairwise_needs_equal_shapes(fn):
    with pytest.raises(
        ValueError, match=r"pairwise similarity needs equal shapes, got \(3, 4\) and \(2, 4\)"
    ):
        similarity_pairwise(np.ones((3, 4)), np.ones((2, 4)), fn)
    # A vector is a one-row matrix, not broadcast against every row.
    with pytest.raises(ValueError, match=r"got \(3, 4\) and \(1, 4\)"):
        similarity_pairwise(np.ones((3, 4)), np.ones(4), fn)
    with pytest.raises(ValueError, match=r"got \(2, 4\) and \(2, 5\)"):
        similarity_pairwise(np.ones((2, 4)), np.ones((2, 5)), fn)


@pytest.mark.parametrize("fn", list(MATRIX))
def test_matrix_of_different_widths_is_refused(fn):
    with pytest.raises(ValueError):
        similarity(np.ones((2, 4)), np.ones((3, 5)), fn)


def test_unknown_function_is_refused():
    with pytest.raises(ValueError, match="'jaccard' is not a valid SimilarityFunction"):
        similarity(np.ones((1, 2)), np.ones((1, 2)), "jaccard")
    with pytest.raises(ValueError, match="'Cosine' is not a valid SimilarityFunction"):
        similarity_pairwise(np.ones((1, 2)), np.ones((1, 2)), "Cosine")


def test_euclidean_distance_of_a_vector_to_itself_is_zero(st_util):
    a = _random(5, 384, seed=12)
    np.testing.assert_array_equal(np.diag(st_util.euclidean_sim(a, a).numpy()), 0.0)
    np.testing.assert_allclose(np.diag(similarity(a, a, "euclidean")), 0.0, atol=1e-5)


def test_euclidean_distance_of_near_duplicates_is_accurate(st_util):
    a = _random(5, 384, seed=13)
    b = a + 1e-3 * _random(5, 384, seed=14)
    exact = _exact(a, b, "euclidean")
    np.testing.assert_allclose(st_util.euclidean_sim(a, b).numpy(), exact, rtol=1e-3)
    np.testing.assert_allclose(similarity(a, b, "euclidean"), exact, rtol=1e-3)
