"""Output precisions: the same buckets and packed bits as sentence-transformers' quantize_embeddings."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edgesbert.runtime.precision import OutputPrecision, empty_embeddings, quantize_embeddings

DTYPES = {"float32": np.float32, "int8": np.int8, "uint8": np.uint8, "binary": np.int8, "ubinary": np.uint8}


@pytest.fixture(scope="module")
def st_quantize():
    util = pytest.importorskip("sentence_transformers.util")
    # sentence-transformers warns that ranges from fewer than 100 embeddings are unstable; we know.
    logging.getLogger("sentence_transformers.util.quantization").setLevel(logging.ERROR)
    return util.quantize_embeddings


def _random(*shape: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# --- against sentence-transformers ---------------------------------------------------------------


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_ranges_from_the_embeddings_themselves(st_quantize, precision):
    embeddings = _random(20, 32, seed=1)
    out = quantize_embeddings(embeddings, precision)
    expected = st_quantize(embeddings, precision)
    assert out.dtype == expected.dtype == DTYPES[precision]
    assert out.shape == (20, 32)
    np.testing.assert_array_equal(out, expected)
    # Each dimension's minimum falls in the first bucket, its maximum in the last (or, by float32
    # rounding of the step, the one before: sentence-transformers does the same).
    low = -128 if precision == "int8" else 0
    np.testing.assert_array_equal(out.min(axis=0), low)
    assert set(out.max(axis=0).tolist()) <= {low + 254, low + 255}


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_ranges_from_a_calibration_set(st_quantize, precision):
    calibration = _random(50, 32, seed=2)
    embeddings = 2 * _random(10, 32, seed=3)  # partly outside the calibration range: clipped
    ranges = np.stack([calibration.min(axis=0), calibration.max(axis=0)])
    out = quantize_embeddings(embeddings, precision, ranges=ranges)
    expected = st_quantize(embeddings, precision, calibration_embeddings=calibration)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out, st_quantize(embeddings, precision, ranges=ranges))
    low = -128 if precision == "int8" else 0
    assert (out == low).any() and (out == low + 255).any()


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_given_ranges_work_for_a_single_embedding(st_quantize, precision):
    ranges = np.array([[-1.0] * 8, [1.0] * 8], dtype=np.float32)
    vector = _random(8, seed=4) / 2
    out = quantize_embeddings(vector, precision, ranges=ranges)
    assert out.shape == (8,)
    np.testing.assert_array_equal(out, st_quantize(vector, precision, ranges=ranges))
    np.testing.assert_array_equal(quantize_embeddings(vector[None], precision, ranges=ranges), out[None])


@pytest.mark.parametrize("precision", ["binary", "ubinary"])
@pytest.mark.parametrize("dimension", [8, 12, 64, 384])
def test_binary_matches_sentence_transformers(st_quantize, precision, dimension):
    embeddings = _random(9, dimension, seed=dimension)
    embeddings[0, :4] = 0.0  # zero is not positive: a 0 bit
    out = quantize_embeddings(embeddings, precision)
    expected = st_quantize(embeddings, precision)
    assert out.dtype == expected.dtype == DTYPES[precision]
    assert out.shape == (9, (dimension + 7) // 8)
    np.testing.assert_array_equal(out, expected)


def test_float32_matches_sentence_transformers(st_quantize):
    embeddings = _random(4, 16, seed=5).astype(np.float64)
    out = quantize_embeddings(embeddings, "float32")
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, st_quantize(embeddings, "float32"))


@pytest.mark.parametrize("precision", list(DTYPES))
@pytest.mark.parametrize("dimension", [1, 8, 12, 384])
def test_empty_embeddings_are_what_sentence_transformers_gives_for_no_rows(st_quantize, precision, dimension):
    out = empty_embeddings(dimension, OutputPrecision(precision))
    expected = st_quantize(np.zeros((0, dimension), dtype=np.float32), precision)
    assert out.shape == expected.shape
    assert out.dtype == expected.dtype


# --- hand-computed -------------------------------------------------------------------------------


def test_buckets_by_hand():
    # With range [0, 255] each bucket is 1 wide: the bucket is floor(x), clipped to 0..255.
    ranges = np.array([[0.0], [255.0]], dtype=np.float32)
    values = np.array([[0.0], [0.5], [1.0], [127.9], [254.99], [255.0], [300.0], [-5.0]], dtype=np.float32)
    buckets = [0, 0, 1, 127, 254, 255, 255, 0]
    uint8 = quantize_embeddings(values, "uint8", ranges=ranges)
    assert uint8.dtype == np.uint8
    assert uint8[:, 0].tolist() == buckets
    int8 = quantize_embeddings(values, "int8", ranges=ranges)
    assert int8.dtype == np.int8
    assert int8[:, 0].tolist() == [b - 128 for b in buckets]


def test_dimensions_have_their_own_ranges():
    values = np.array([[0.0, 10.0], [51.0, 10.0], [255.0, 10.0]], dtype=np.float32)
    ranges = np.array([[0.0, 10.0], [255.0, 10.0]], dtype=np.float32)
    # The second dimension never varies: its step falls back to 1, so everything lands in bucket 0.
    out = quantize_embeddings(values, "uint8", ranges=ranges)
    assert out.tolist() == [[0, 0], [51, 0], [255, 0]]
    # Computed from the embeddings, the ranges are the same here.
    np.testing.assert_array_equal(quantize_embeddings(values, "uint8"), out)


def test_packed_bits_by_hand():
    embeddings = np.array(
        [
            [1.0, -1.0, 0.0, 2.0, 0.5, -3.0, 1.0, 1.0],  # 1001 1011
            [-1.0] * 8,  # 0000 0000
            [1.0] * 8,  # 1111 1111
        ],
        dtype=np.float32,
    )
    assert quantize_embeddings(embeddings, "ubinary").tolist() == [[0b10011011], [0], [255]]
    assert quantize_embeddings(embeddings, "binary").tolist() == [[0b10011011 - 128], [-128], [127]]
    # A width that is not a multiple of 8 is padded with 0 bits at the end.
    nine = np.array([[1.0] + [-1.0] * 7 + [1.0]], dtype=np.float32)
    assert quantize_embeddings(nine, "ubinary").tolist() == [[128, 128]]
    assert quantize_embeddings(nine, "binary").tolist() == [[0, 0]]
    vector = quantize_embeddings(nine[0], OutputPrecision.UBINARY)
    assert vector.shape == (2,)


def test_float32_is_unchanged():
    embeddings = _random(3, 5, seed=6)
    out = quantize_embeddings(embeddings, OutputPrecision.FLOAT32)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, embeddings)


@pytest.mark.parametrize("precision", list(DTYPES))
def test_enum_and_name_agree(precision):
    embeddings = _random(6, 16, seed=7)
    np.testing.assert_array_equal(
        quantize_embeddings(embeddings, OutputPrecision(precision)),
        quantize_embeddings(embeddings, precision),
    )


@pytest.mark.parametrize("precision", list(DTYPES))
@pytest.mark.parametrize(("dimension", "packed"), [(1, 1), (8, 1), (12, 2), (16, 2), (384, 48), (385, 49)])
def test_empty_embeddings_shape_and_dtype(precision, dimension, packed):
    out = empty_embeddings(dimension, OutputPrecision(precision))
    width = packed if precision.endswith("binary") else dimension
    assert out.shape == (0, width)
    assert out.dtype == DTYPES[precision]
    # The same width and dtype as the quantized output of a non-empty batch.
    full = quantize_embeddings(_random(3, dimension, seed=8), precision)
    assert full.shape == (3, width)
    assert full.dtype == out.dtype


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["int8", "uint8"])
@pytest.mark.parametrize("embeddings", [np.ones((1, 4)), np.ones(4)], ids=["one-row", "vector"])
def test_one_embedding_without_ranges_is_refused(precision, embeddings):
    message = f"{precision} output needs ranges: encode several texts at once, or pass ranges"
    with pytest.raises(ValueError, match=message):
        quantize_embeddings(embeddings, precision)


@pytest.mark.parametrize("precision", ["float16", "INT8", "bf16", "", None, 8])
def test_unknown_precision_is_refused(precision):
    names = "['float32', 'int8', 'uint8', 'binary', 'ubinary']"
    with pytest.raises(ValueError) as info:
        quantize_embeddings(np.ones((2, 4)), precision)
    assert str(info.value) == f"precision must be one of {names}, got {precision!r}"


@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_no_rows_quantize_to_no_rows(precision):
    out = quantize_embeddings(np.zeros((0, 8), dtype=np.float32), precision)
    assert out.shape == (0, 8)
    assert out.dtype == DTYPES[precision]
