"""Setting ``max_seq_length`` on a runtime model truncates its inputs there, as sentence-transformers does."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from edgesbert.runtime import load
from edgesbert.runtime.manifest import Manifest
from edgesbert.runtime.tokenizer import TextTokenizer


@pytest.fixture
def bi(exported):
    return load(exported("bert-mean"))


@pytest.fixture
def ce(exported):
    return load(exported("bert-1", "cross-encoder"))


@pytest.fixture(scope="module")
def words(exported) -> list[str]:
    """Words that are one token each in the tiny models' vocabulary, so n words are n tokens."""
    vocab = json.loads((exported("bert-mean") / "tokenizer.json").read_text())["model"]["vocab"]
    return sorted(w for w in vocab if w.isascii() and w.isalpha() and w.islower() and len(w) > 2)


def sentences(words: list[str], count: int, length: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    return [rng.choices(words, k=length) for _ in range(count)]


def test_the_default_is_the_longest_input_the_graph_takes(bi, ce, exported):
    assert bi.max_seq_length == Manifest.load(exported("bert-mean")).max_seq_length == 64
    assert ce.max_seq_length == Manifest.load(exported("bert-1", "cross-encoder")).max_seq_length
    assert type(bi.max_seq_length) is int


def test_encode_after_setting_16_equals_encode_of_texts_cut_to_16_tokens(bi, words):
    long = sentences(words, 5, 40)
    texts = [" ".join(s) for s in long]
    cut = [" ".join(s[:14]) for s in long]  # 16 tokens with [CLS] and [SEP]
    default = bi.encode(texts)

    bi.max_seq_length = 16
    assert bi.max_seq_length == 16
    assert bi._tokenizer(texts)["input_ids"].shape == (5, 16)
    truncated = bi.encode(texts)
    assert not np.allclose(truncated, default, atol=1e-3)

    bi.max_seq_length = 64
    np.testing.assert_allclose(truncated, bi.encode(cut), atol=1e-5)
    np.testing.assert_allclose(bi.encode(texts), default, atol=1e-6)  # back to the default


def test_short_texts_are_unchanged_by_a_lower_max_seq_length(bi, words):
    texts = [" ".join(s) for s in sentences(words, 4, 10)]
    default = bi.encode(texts)
    bi.max_seq_length = 12
    np.testing.assert_allclose(bi.encode(texts), default, atol=1e-5)


def test_predict_after_setting_16_equals_predict_of_pairs_cut_to_16_tokens(ce, words):
    firsts, seconds = sentences(words, 4, 30, seed=1), sentences(words, 4, 3, seed=2)
    pairs = [(" ".join(a), " ".join(b)) for a, b in zip(firsts, seconds, strict=True)]
    # [CLS] a [SEP] b [SEP]: 13 tokens of text; the longer text loses tokens first, down to 10 + 3.
    cut = [(" ".join(a[:10]), " ".join(b)) for a, b in zip(firsts, seconds, strict=True)]
    default = ce.predict(pairs)

    ce.max_seq_length = 16
    assert ce._tokenizer(pairs)["input_ids"].shape == (4, 16)
    truncated = ce.predict(pairs)
    assert not np.allclose(truncated, default, atol=1e-4)
    ranked = ce.rank(pairs[0][0], [b for _, b in pairs])
    np.testing.assert_allclose(
        sorted(r.score for r in ranked), sorted(ce.predict([(pairs[0][0], b) for _, b in pairs]))
    )

    ce.max_seq_length = 128
    np.testing.assert_allclose(truncated, ce.predict(cut), atol=1e-5)


@pytest.mark.parametrize("value", [65, 1000, 1, 0, -16])
def test_a_bi_encoder_refuses_lengths_outside_2_to_its_graph_limit(bi, value):
    with pytest.raises(ValueError) as info:
        bi.max_seq_length = value
    assert str(info.value) == (
        f"max_seq_length must be in 2..64, got {value}: this model's graph takes at most 64 tokens, "
        "and every input carries 2 special tokens"
    )
    assert bi.max_seq_length == 64  # unchanged


def test_a_cross_encoder_needs_room_for_its_three_special_tokens(ce):
    limit = ce.max_seq_length
    with pytest.raises(ValueError, match=rf"^max_seq_length must be in 3\.\.{limit}, got 2: "):
        ce.max_seq_length = 2
    with pytest.raises(ValueError, match=rf"^max_seq_length must be in 3\.\.{limit}, got {limit + 1}: "):
        ce.max_seq_length = limit + 1
    ce.max_seq_length = 3
    assert ce.predict(("a long first text", "and a second")).shape == ()


@pytest.mark.parametrize(
    ("value", "kind"), [("16", "str"), (16.0, "float"), (True, "bool"), (None, "NoneType")]
)
def test_a_length_that_is_not_an_int_is_a_type_error(bi, value, kind):
    with pytest.raises(TypeError) as info:
        bi.max_seq_length = value
    assert str(info.value) == f"max_seq_length must be an int, got {kind}"
    assert bi.max_seq_length == 64


def test_a_numpy_integer_is_accepted(bi):
    bi.max_seq_length = np.int64(16)
    assert bi.max_seq_length == 16 and type(bi.max_seq_length) is int


def test_the_tokenizer_takes_the_graph_limit_it_is_given(exported, words):
    """The exporter builds TextTokenizer(folder, spec, max_length) directly; a static shape's limit binds."""
    folder = exported("bert-mean")
    tokenizer = TextTokenizer(folder, Manifest.load(folder).tokenizer, 32)
    assert (tokenizer.max_length, tokenizer.limit, tokenizer.shortest) == (32, 32, 2)
    text = " ".join(words[:50])
    assert tokenizer([text])["input_ids"].shape == (1, 32)
    with pytest.raises(ValueError, match=r"^max_seq_length must be in 2\.\.32, got 33"):
        tokenizer.max_length = 33
    tokenizer.max_length = 8
    assert tokenizer([text, "a"])["input_ids"].shape == (2, 8)
    assert TextTokenizer(folder, Manifest.load(folder).tokenizer, 32, pairs=True).shortest == 3


def test_matches_sentence_transformers_with_the_same_max_seq_length(
    bi, tiny_bi_encoder_folder, stsb_sentences
):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    theirs = sentence_transformers.SentenceTransformer(str(tiny_bi_encoder_folder("bert-mean")), device="cpu")
    texts = sorted(stsb_sentences, key=len)[-20:]  # the longest: all cut at 16 tokens
    theirs.max_seq_length = bi.max_seq_length = 16
    np.testing.assert_allclose(bi.encode(texts), theirs.encode(texts), atol=1e-4)
