"""Pooling in numpy, each mode against sums worked out by hand; padded positions must not count."""

from __future__ import annotations

import numpy as np
import pytest

from edgesbert.runtime.manifest import Pooling
from edgesbert.runtime.pooling import pool

PAD = 1000.0  # what padded positions hold: large enough to show if one leaks into a result

# Two texts of 3 and 2 tokens, padded to 4 on the right; dim 2.
TOKENS = np.array(
    [
        [[1.0, -4.0], [3.0, -2.0], [8.0, -9.0], [PAD, PAD]],
        [[-2.0, 6.0], [-4.0, 2.0], [PAD, PAD], [PAD, PAD]],
    ],
    dtype=np.float32,
)
MASK = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=np.int64)

EXPECTED = {
    Pooling.MEAN: [[(1 + 3 + 8) / 3, (-4 - 2 - 9) / 3], [(-2 - 4) / 2, (6 + 2) / 2]],
    Pooling.MEAN_SQRT_LEN: [[12 / np.sqrt(3), -15 / np.sqrt(3)], [-6 / np.sqrt(2), 8 / np.sqrt(2)]],
    Pooling.MAX: [[8.0, -2.0], [-2.0, 6.0]],
    Pooling.CLS: [[1.0, -4.0], [-2.0, 6.0]],
    Pooling.LAST_TOKEN: [[8.0, -9.0], [-4.0, 2.0]],
}


def test_every_pooling_mode_is_covered():
    assert set(EXPECTED) == set(Pooling)


@pytest.mark.parametrize("mode", list(Pooling))
def test_mode_by_hand(mode):
    out = pool(TOKENS, MASK, mode)
    assert out.shape == (2, 2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, EXPECTED[mode], rtol=1e-6)


@pytest.mark.parametrize("mode", list(Pooling))
def test_padded_positions_do_not_matter(mode):
    other_padding = np.where(MASK[:, :, None] == 1, TOKENS, np.float32(-PAD))
    np.testing.assert_array_equal(pool(other_padding, MASK, mode), pool(TOKENS, MASK, mode))


@pytest.mark.parametrize("mode", list(Pooling))
def test_unpadded_text_is_pooled_alone_the_same(mode):
    # The second text in a batch of its own, without padding.
    np.testing.assert_allclose(
        pool(TOKENS[1:, :2], MASK[1:, :2], mode), pool(TOKENS, MASK, mode)[1:], rtol=1e-6
    )


def test_mask_dtype_does_not_matter():
    for dtype in (np.int32, np.int64, np.float32, bool):
        for mode in Pooling:
            np.testing.assert_allclose(pool(TOKENS, MASK.astype(dtype), mode), EXPECTED[mode], rtol=1e-6)


def test_max_of_negative_tokens_ignores_zero_padding():
    tokens = np.array([[[-3.0, -1.0], [-2.0, -5.0], [0.0, 0.0]]], dtype=np.float32)
    out = pool(tokens, np.array([[1, 1, 0]]), Pooling.MAX)
    np.testing.assert_array_equal(out, [[-2.0, -1.0]])


def test_mean_with_a_single_token_is_that_token():
    tokens = np.array([[[2.0, 4.0], [PAD, PAD]]], dtype=np.float32)
    mask = np.array([[1, 0]])
    np.testing.assert_array_equal(pool(tokens, mask, Pooling.MEAN), [[2.0, 4.0]])
    np.testing.assert_array_equal(pool(tokens, mask, Pooling.MEAN_SQRT_LEN), [[2.0, 4.0]])


def test_lasttoken_with_left_padding_and_holes():
    tokens = np.arange(2 * 5 * 1, dtype=np.float32).reshape(2, 5, 1)
    mask = np.array([[0, 0, 1, 1, 1], [1, 0, 1, 0, 0]])  # left-padded; a hole in the mask
    np.testing.assert_array_equal(pool(tokens, mask, Pooling.LAST_TOKEN), [[4.0], [7.0]])


def test_fully_masked_row_gives_zeros_for_mean_and_lasttoken_like_sentence_transformers():
    tokens = np.ones((1, 3, 2), dtype=np.float32)
    mask = np.zeros((1, 3), dtype=np.int64)
    for mode in (Pooling.MEAN, Pooling.MEAN_SQRT_LEN, Pooling.LAST_TOKEN):
        np.testing.assert_array_equal(pool(tokens, mask, mode), [[0.0, 0.0]])
    # max over nothing is -inf, as with sentence-transformers' masked_fill(-inf).max()
    np.testing.assert_array_equal(pool(tokens, mask, Pooling.MAX), [[-np.inf, -np.inf]])


def test_float64_tokens_stay_float64():
    for mode in Pooling:
        out = pool(TOKENS.astype(np.float64), MASK, mode)
        assert out.dtype == np.float64
        np.testing.assert_allclose(out, EXPECTED[mode], rtol=1e-12)


def test_cls_with_left_padding_takes_the_first_attended_token():
    tokens = np.array([[[PAD, PAD], [PAD, PAD], [5.0, 6.0], [7.0, 8.0]]], dtype=np.float32)
    np.testing.assert_array_equal(pool(tokens, np.array([[0, 0, 1, 1]]), Pooling.CLS), [[5.0, 6.0]])
