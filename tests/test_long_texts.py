"""Texts longer than the window: truncated (the default), refused, or embedded in chunks (issue 32)."""

from __future__ import annotations

import numpy as np
import pytest

from edgesbert.runtime.chunking import Chunk, chunk_texts, mean_of_chunks
from edgesbert.runtime.similarity import normalize

#: over 10,000 tokens of the tiny vocabulary: 160 times the tiny model's window of 64
DOCUMENT = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 720)


def test_windows_cover_every_token_with_the_overlap_asked_for():
    spans = [[(i * 2, i * 2 + 1) for i in range(10)], [(0, 3)], []]
    chunks = chunk_texts(spans, [20, 3, 0], window=4, overlap=1)
    assert chunks == [
        Chunk(0, 0, 7, 4),  # tokens 0-3
        Chunk(0, 6, 13, 4),  # 3-6
        Chunk(0, 12, 19, 4),  # 6-9: the last window ends at the last token
        Chunk(1, 0, 3, 1),  # fits: the whole text
        Chunk(2, 0, 0, 0),
    ]
    with pytest.raises(
        ValueError, match=r"chunk_overlap must be in 0\.\.3 \(the window is 4 tokens\), got 4"
    ):
        chunk_texts(spans, [20, 3, 0], window=4, overlap=4)


def test_chunks_are_averaged_by_their_tokens():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], dtype=np.float32)
    chunks = [Chunk(0, 0, 1, 3), Chunk(0, 1, 2, 1), Chunk(1, 0, 1, 5)]
    np.testing.assert_allclose(mean_of_chunks(vectors, chunks, 2), [[0.75, 0.25], [2.0, 2.0]])


@pytest.fixture(scope="module")
def model(exported):
    from edgesbert.runtime import load

    return load(exported("bert-mean"))


def test_truncate_stays_the_default(model):
    np.testing.assert_array_equal(model.encode([DOCUMENT]), model.encode([DOCUMENT], long_texts="truncate"))


def test_a_long_document_is_the_token_weighted_mean_of_its_chunks_computed_by_hand(model):
    short = ["A short one.", ""]
    window = model.max_seq_length - 2  # [CLS] and [SEP]
    tokens = model.tokenizer.tokens([DOCUMENT], add_special_tokens=False)[0]
    assert len(tokens) > 10_000
    step = window - 8
    by_hand, weights = [], []
    for start in range(0, len(tokens), step):
        part = tokens[start : start + window]
        by_hand.append(model.encode(DOCUMENT[part[0].start : part[-1].stop]))
        weights.append(len(part))
        if start + window >= len(tokens):
            break
    expected = np.average(by_hand, axis=0, weights=weights)
    if model.spec.normalize:
        expected = normalize(expected[None])[0]
    found = model.encode([DOCUMENT, *short], long_texts="chunk", chunk_overlap=8, batch_size=4)
    np.testing.assert_allclose(found[0], expected, atol=1e-6)
    np.testing.assert_allclose(found[1:], model.encode(short), atol=1e-6)  # those that fit: as ever
    assert not np.allclose(found[0], model.encode(DOCUMENT), atol=1e-3)  # more than the first window


def test_chunks_leave_room_for_the_prompt(model):
    prompt = "query: " * 5
    plain = model.encode([DOCUMENT], long_texts="chunk")
    prompted = model.encode([DOCUMENT], long_texts="chunk", prompt=prompt)
    assert prompted.shape == plain.shape and not np.allclose(prompted, plain)


def test_error_names_the_text_and_its_tokens(model):
    assert model.encode(["short", "texts"], long_texts="error").shape[0] == 2
    with pytest.raises(ValueError, match=r"sentences\[1\] has \d+ tokens, more than the 62 this model takes"):
        model.encode(["short", DOCUMENT], long_texts="error")
    with pytest.raises(
        ValueError, match="long_texts must be one of 'truncate', 'chunk', 'error', got 'whole'"
    ):
        model.encode([DOCUMENT], long_texts="whole")


def test_the_reference_chunks_as_the_runtime(exported, tiny_bi_encoder_folder, model):
    from edgesbert.reference import BiEncoder

    reference = BiEncoder(tiny_bi_encoder_folder("bert-mean"))
    expected = model.encode([DOCUMENT, "short"], long_texts="chunk", chunk_overlap=4)
    found = reference.encode([DOCUMENT, "short"], long_texts="chunk", chunk_overlap=4)
    np.testing.assert_allclose(found, expected, atol=1e-5)
