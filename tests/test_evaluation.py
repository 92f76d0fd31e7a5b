"""Correlation metrics without scipy: the same figures as scipy.stats, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from edgesbert.evaluation import pearson, rank_average, spearman


@pytest.fixture(scope="module")
def stats():
    return pytest.importorskip("scipy.stats")


def _pair(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    return a, 0.6 * a + rng.standard_normal(n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pearson_matches_scipy(stats, seed):
    a, b = _pair(200, seed)
    result = pearson(a, b)
    assert isinstance(result, float)
    assert result == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)
    assert pearson(a, -b) == pytest.approx(-result, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spearman_matches_scipy(stats, seed):
    a, b = _pair(200, seed)
    result = spearman(a, b)
    assert isinstance(result, float)
    assert result == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_float32_and_lists_match_scipy(stats):
    a, b = _pair(100, 3)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    assert pearson(a32, b32) == pytest.approx(stats.pearsonr(a32.astype(np.float64), b32).statistic, abs=1e-7)
    assert spearman(a32, b32) == pytest.approx(stats.spearmanr(a32, b32).statistic, abs=1e-12)
    assert pearson(a.tolist(), b.tolist()) == pytest.approx(pearson(a, b), abs=1e-15)
    assert spearman(a.tolist(), b.tolist()) == pytest.approx(spearman(a, b), abs=1e-15)


@pytest.mark.parametrize("seed", [4, 5])
def test_ties_match_scipy(stats, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, size=60).astype(np.float64)  # gold scores on a 0..5 scale: many ties
    b = np.round(a + rng.standard_normal(60), 1)
    assert pearson(a, b) == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    np.testing.assert_array_equal(rank_average(a), stats.rankdata(a))
    np.testing.assert_array_equal(rank_average(b), stats.rankdata(b))


def test_rank_average_by_hand():
    ranks = rank_average(np.array([3.0, 1.0, 3.0, 2.0, 3.0]))
    assert ranks.dtype == np.float64
    assert ranks.tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]
    assert rank_average([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert rank_average([0.5, -1.0, 7.0]).tolist() == [2.0, 1.0, 3.0]
    assert rank_average([2.0] * 4).tolist() == [2.5] * 4
    assert rank_average([9.0]).tolist() == [1.0]
    assert rank_average([]).tolist() == []


def test_rank_average_matches_scipy(stats):
    values = np.random.default_rng(6).integers(0, 20, size=500)
    np.testing.assert_array_equal(rank_average(values), stats.rankdata(values))
    unique = np.random.default_rng(7).permutation(50)
    np.testing.assert_array_equal(rank_average(unique), unique + 1.0)


def test_perfect_and_monotonic_correlations():
    a = np.array([0.1, 0.4, 0.2, 0.9, 0.5])
    assert pearson(a, 3 * a + 2) == pytest.approx(1.0, abs=1e-12)
    assert pearson(a, -a) == pytest.approx(-1.0, abs=1e-12)
    # Spearman only sees the order: any increasing map gives 1.
    assert spearman(a, np.exp(10 * a)) == pytest.approx(1.0, abs=1e-12)
    assert spearman(a, -(a**3)) == pytest.approx(-1.0, abs=1e-12)
    assert pearson(a, np.exp(10 * a)) < 0.95


def test_constant_input_gives_zero_not_nan():
    # scipy returns nan (and warns) here; edgesbert's contract is 0.0.
    assert pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) == 0.0
    assert pearson([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]) == 0.0
    assert spearman([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0


def test_spearman_refuses_unequal_lengths():
    with pytest.raises(ValueError, match=r"^spearman needs equally long inputs, got 3 and 2$"):
        spearman([1.0, 2.0, 3.0], [1.0, 2.0])


@pytest.mark.parametrize(("a", "b"), [([1.0], [1.0, 2.0, 3.0]), ([1.0, 2.0, 3.0], [1.0, 2.0])])
def test_pearson_refuses_unequal_lengths(a, b):
    with pytest.raises(ValueError, match="equally long"):
        pearson(a, b)
