"""Property-based tests of the runtime's public inputs: any text, any container, any batch size.

Whatever is passed, encode, predict and rank either answer with the right shapes, equal to calling them
one item at a time, or raise a TypeError or ValueError that names the item at fault. The examples are
derandomized, so every run (and CI) tests the same ones.
"""

from __future__ import annotations

import csv
import operator
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgesbert.runtime import load

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_STSB = Path(__file__).resolve().parents[1] / "data" / "stsb-en-test.csv"
with _STSB.open(encoding="utf-8") as _f:
    WORDS = sorted({w for row in list(csv.reader(_f))[:100] for s in row[:2] for w in s.split()})

ODD = [
    "\x00",
    "\n",
    "\t",
    "\r\n",
    "\u202e",
    "\u200f",
    "\u0301",
    "\ufeff",
    "😀",
    "👩‍👩‍👧",
    "中文",
    "ـــ",
    "[SEP]",
]
PIECES = st.one_of(
    st.characters(codec=None, exclude_categories=()),  # any code point
    st.characters(categories=["Cs"]),  # lone surrogates, which UTF-8 cannot hold
    st.sampled_from(ODD),  # control characters, NUL, bidi marks, combining marks, emoji, a special token
)
SHORT = st.lists(PIECES, max_size=40).map("".join)
TEXTS = st.one_of(
    SHORT,
    st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join),  # words the tokenizer knows
    st.builds(operator.mul, st.lists(PIECES, min_size=1, max_size=8).map("".join), st.integers(50, 600)),
)
VALID_TEXTS = st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join)

#: How a list of texts (or pairs) is handed to the runtime.
CONTAINERS: dict[str, Callable[[list[Any]], Iterable[Any]]] = {
    "list": list,
    "tuple": tuple,
    "generator": lambda items: (item for item in items),
    "unicode array": lambda items: np.array(items, dtype=str),
    "object array": lambda items: np.array(items, dtype=object),
}


def seen(items: list[Any], container: str) -> list[Any]:
    """What the runtime receives: a numpy unicode array drops trailing NULs, as numpy always does."""
    return np.array(items, dtype=str).tolist() if container == "unicode array" else items


def first_invalid(texts: Iterable[str]) -> tuple[int, int, str] | None:
    """(index, character position, character) of the first text UTF-8 cannot encode."""
    for i, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            return i, e.start, text[e.start]
    return None


def invalid_message(name: str, position: int, character: str) -> str:
    return f"{name} is not valid Unicode text: lone surrogate {character!a} at character {position};"


@pytest.fixture(scope="module")
def bi(exported):
    return load(exported("bert-mean"))


@pytest.fixture(scope="module")
def ce(exported):
    return load(exported("bert-1", "cross-encoder"))


# --- encode --------------------------------------------------------------------------------------


@SETTINGS
@given(
    texts=st.lists(TEXTS, max_size=6), container=st.sampled_from(sorted(CONTAINERS)), batch=st.integers(1, 4)
)
def test_encode_equals_one_by_one_or_names_the_invalid_text(bi, texts, container, batch):
    received = seen(texts, container)
    invalid = first_invalid(received)
    if invalid is not None:
        index, position, character = invalid
        with pytest.raises(ValueError) as info:
            bi.encode(CONTAINERS[container](texts), batch_size=batch)
        assert str(info.value).startswith(invalid_message(f"sentences[{index}]", position, character))
        return
    embeddings = bi.encode(CONTAINERS[container](texts), batch_size=batch)
    assert embeddings.shape == (len(received), bi.embedding_dimension)
    assert embeddings.dtype == np.float32
    assert np.isfinite(embeddings).all()
    for row, text in zip(embeddings, received, strict=True):
        one = bi.encode(text)
        assert one.shape == (bi.embedding_dimension,)
        np.testing.assert_allclose(row, one, atol=1e-5)


@SETTINGS
@given(text=TEXTS)
def test_encode_one_string_is_a_vector_or_names_the_character(bi, text):
    invalid = first_invalid([text])
    if invalid is None:
        assert bi.encode(text).shape == (bi.embedding_dimension,)
    else:
        with pytest.raises(ValueError) as info:
            bi.encode(text)
        assert str(info.value).startswith(invalid_message("sentences", *invalid[1:]))


BAD_ITEMS = st.one_of(
    st.none(),
    st.binary(max_size=4),
    st.integers(),
    st.floats(),
    st.lists(st.text(max_size=3), max_size=2),
    st.tuples(st.text(max_size=3)),
    st.dictionaries(st.text(max_size=2), st.text(max_size=2), max_size=1),
)


def object_array(items: list[Any]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        array[i] = item
    return array


@SETTINGS
@given(
    texts=st.lists(VALID_TEXTS, max_size=5),
    bad=BAD_ITEMS,
    where=st.integers(0, 5),
    container=st.sampled_from(["list", "tuple", "generator", "object array"]),
)
def test_a_non_string_item_is_a_type_error_naming_its_index(bi, texts, bad, where, container):
    index = min(where, len(texts))
    items = [*texts[:index], bad, *texts[index:]]
    given_items = object_array(items) if container == "object array" else CONTAINERS[container](items)
    with pytest.raises(TypeError) as info:
        bi.encode(given_items)
    # numpy keeps a tuple stored in an object array as a tuple, or (some versions) makes it a list
    tuple_in_array = container == "object array" and isinstance(bad, tuple)
    shown = {"list", "tuple"} if tuple_in_array else {type(bad).__name__}
    assert str(info.value) in {f"sentences[{index}] is {k}, not a string; pass only strings" for k in shown}


@pytest.mark.parametrize("bad", [None, 7, 2.5, b"bytes", {"a", "b"}, {"a": "b"}, object()], ids=repr)
def test_encode_refuses_what_is_not_texts_with_a_type_error(bi, bad):
    with pytest.raises(TypeError, match=r"^sentences must be a string or a list of strings, got "):
        bi.encode(bad)


@pytest.mark.parametrize("container", sorted(CONTAINERS))
def test_no_texts_give_an_empty_matrix(bi, ce, container):
    empty = bi.encode(CONTAINERS[container]([]))
    assert empty.shape == (0, bi.embedding_dimension) and empty.dtype == np.float32
    scores = ce.predict(CONTAINERS[container]([]))
    assert scores.shape == (0,) and scores.dtype == np.float32
    assert bi.rank("query", CONTAINERS[container]([])) == ce.rank("query", CONTAINERS[container]([])) == []


def test_an_invalid_text_is_named_when_batches_run_on_threads(exported):
    model = load(exported("bert-mean"), threads=2, performance_hint="throughput")
    texts = [f"sentence number {i}" for i in range(40)]
    texts[33] = "broken \udc80 text"
    with pytest.raises(ValueError, match=r"^sentences\[33\] is not valid Unicode text: .* at character 7;"):
        model.encode(texts, batch_size=4)


# --- predict and rank ----------------------------------------------------------------------------

PAIR_CONTAINERS = {**CONTAINERS, "list of lists": lambda pairs: [list(pair) for pair in pairs]}


@SETTINGS
@given(
    pairs=st.lists(st.tuples(TEXTS, TEXTS), max_size=5),
    container=st.sampled_from(sorted(PAIR_CONTAINERS)),
    batch=st.integers(1, 3),
)
def test_predict_equals_one_by_one_or_names_the_invalid_text(ce, pairs, container, batch):
    received = [tuple(pair) for pair in seen(pairs, container)]
    invalid = first_invalid(text for pair in received for text in pair)
    if invalid is not None:
        flat, position, character = invalid
        name = f"pairs[{flat // 2}][{flat % 2}]"
        with pytest.raises(ValueError) as info:
            ce.predict(PAIR_CONTAINERS[container](pairs), batch_size=batch)
        assert str(info.value).startswith(invalid_message(name, position, character))
        return
    scores = ce.predict(PAIR_CONTAINERS[container](pairs), batch_size=batch)
    assert scores.shape == (len(received),)
    assert scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()  # sigmoid
    for score, pair in zip(scores, received, strict=True):
        one = ce.predict(pair)
        assert one.shape == ()
        np.testing.assert_allclose(score, one, atol=1e-5)


BAD_PAIRS = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.tuples(st.text(max_size=3)),
    st.tuples(st.text(max_size=3), st.text(max_size=3), st.text(max_size=3)),
    st.tuples(st.text(max_size=3), st.one_of(st.none(), st.integers(), st.binary(max_size=2))),
    st.tuples(st.integers(), st.text(max_size=3)),
)


@SETTINGS
@given(
    pairs=st.lists(st.tuples(VALID_TEXTS, VALID_TEXTS), max_size=4),
    bad=BAD_PAIRS,
    where=st.integers(0, 4),
    container=st.sampled_from(["list", "tuple", "generator"]),
)
def test_a_bad_pair_is_a_type_error_naming_its_index(ce, pairs, bad, where, container):
    index = min(where, len(pairs))
    items = [*pairs[:index], bad, *pairs[index:]]
    with pytest.raises(TypeError) as info:
        ce.predict(CONTAINERS[container](items))
    assert str(info.value).startswith(f"pairs[{index}] must be a pair of two strings, got ")


def rank_error(query: str, documents: list[str]) -> str | None:
    """The start of the error ``rank`` must raise for the first invalid text (the query first), or None."""
    invalid = first_invalid([query])
    if invalid is not None:
        return invalid_message("query", *invalid[1:])
    invalid = first_invalid(documents)
    return None if invalid is None else invalid_message(f"documents[{invalid[0]}]", *invalid[1:])


@SETTINGS
@given(query=TEXTS, documents=st.lists(TEXTS, max_size=5), container=st.sampled_from(sorted(CONTAINERS)))
def test_cross_encoder_rank_orders_predict_scores_or_names_the_invalid_text(ce, query, documents, container):
    received = seen(documents, container)
    if (expected_error := rank_error(query, received)) is not None:
        with pytest.raises(ValueError, match=f"^{re.escape(expected_error)}"):
            ce.rank(query, CONTAINERS[container](documents))
        return
    ranked = ce.rank(query, CONTAINERS[container](documents), return_documents=True)
    assert sorted(r.corpus_id for r in ranked) == list(range(len(received)))
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    expected = ce.predict([(query, doc) for doc in received]) if received else []
    for result in ranked:
        assert result.text == received[result.corpus_id]
        np.testing.assert_allclose(result.score, expected[result.corpus_id], atol=1e-6)


@SETTINGS
@given(query=TEXTS, documents=st.lists(TEXTS, max_size=5), top_k=st.one_of(st.none(), st.integers(1, 6)))
def test_bi_encoder_rank_is_a_ranking_or_names_the_invalid_text(bi, query, documents, top_k):
    if (expected_error := rank_error(query, documents)) is not None:
        with pytest.raises(ValueError, match=f"^{re.escape(expected_error)}"):
            bi.rank(query, iter(documents), top_k=top_k)
        return
    ranked = bi.rank(query, iter(documents), top_k=top_k)
    assert len(ranked) == min(len(documents), top_k or len(documents))
    assert len({r.corpus_id for r in ranked}) == len(ranked)
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


# --- max_seq_length ------------------------------------------------------------------------------


@SETTINGS
@given(
    value=st.one_of(st.integers(-3, 140), st.floats(), st.text(max_size=3), st.none(), st.booleans()),
    text=TEXTS,
)
def test_max_seq_length_is_set_within_its_range_or_refused(bi, value, text):
    try:
        if isinstance(value, bool) or not isinstance(value, int):
            with pytest.raises(TypeError, match=r"^max_seq_length must be an int, got "):
                bi.max_seq_length = value
        elif not 2 <= value <= 64:
            with pytest.raises(ValueError, match=r"^max_seq_length must be in 2\.\.64, got "):
                bi.max_seq_length = value
        else:
            bi.max_seq_length = value
            if first_invalid([text]) is None:
                assert bi._tokenizer([text])["input_ids"].shape[1] <= value
                assert bi.encode(text).shape == (bi.embedding_dimension,)
        assert 2 <= bi.max_seq_length <= 64
    finally:
        bi.max_seq_length = 64
