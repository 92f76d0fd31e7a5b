"""The runtime models' sentence-transformers surface (issue 17).

``encode_query``/``encode_document``, ``get_sentence_embedding_dimension``, ``tokenize``, inputs of any
iterable of strings, ``close()`` and ``with``, against sentence-transformers on the same tiny model.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgesbert.errors import EdgesbertError
from edgesbert.runtime import load

TEXTS = ["A man is playing a guitar.", "A woman slices an onion.", "Two dogs run on the beach."]


@pytest.fixture(scope="module")
def prompted(exported, tiny_bi_encoder_folder):
    """(exported runtime model, sentence-transformers model) of the tiny model with query/passage prompts."""
    from sentence_transformers import SentenceTransformer

    source = tiny_bi_encoder_folder("bert-sqrt-prompts")
    return load(exported("bert-sqrt-prompts")), SentenceTransformer(str(source), device="cpu")


def test_encode_query_and_document_use_the_prompts_as_sentence_transformers(prompted):
    model, st = prompted
    np.testing.assert_allclose(model.encode_query(TEXTS), st.encode_query(TEXTS), atol=1e-5)
    # sentence-transformers 6 adds a blank "document" prompt, which wins over "passage"; version 5 used it
    st_passage = st.encode_document(TEXTS, prompt_name="passage")
    np.testing.assert_allclose(model.encode_document(TEXTS), st_passage, atol=1e-5)
    np.testing.assert_allclose(model.encode_document(TEXTS), model.encode(TEXTS, prompt_name="passage"))
    np.testing.assert_allclose(model.encode_query(TEXTS), model.encode(TEXTS, prompt_name="query"))
    explicit = model.encode_document(TEXTS, prompt="query: ")  # the caller's choice wins
    np.testing.assert_allclose(explicit, model.encode(TEXTS, prompt_name="query"))


def test_without_such_prompts_encode_query_and_document_use_none(exported, tiny_bi_encoder_folder):
    from sentence_transformers import SentenceTransformer

    model = load(exported("bert-mean"))
    np.testing.assert_array_equal(model.encode_query(TEXTS), model.encode(TEXTS))
    np.testing.assert_array_equal(model.encode_document(TEXTS), model.encode(TEXTS))
    st = SentenceTransformer(str(tiny_bi_encoder_folder("bert-mean")), device="cpu")
    np.testing.assert_allclose(model.encode_document(TEXTS), st.encode_document(TEXTS), atol=1e-5)


def test_dimension_and_tokenize_as_sentence_transformers(prompted):
    model, st = prompted
    assert model.get_sentence_embedding_dimension() == model.get_embedding_dimension()
    assert model.get_embedding_dimension() == st.get_embedding_dimension()
    ours, theirs = model.tokenize(TEXTS), st.tokenize(TEXTS)
    for name in ("input_ids", "attention_mask"):
        np.testing.assert_array_equal(ours[name], theirs[name].numpy())
    assert ours["input_ids"].dtype == np.int64


def test_inputs_may_be_numpy_strings_tuples_and_generators(exported):
    model = load(exported("bert-mean"))
    expected = model.encode(TEXTS)
    for given in (np.array(TEXTS), tuple(TEXTS), (text for text in TEXTS), iter(TEXTS)):
        np.testing.assert_allclose(model.encode(given), expected, atol=1e-6)
    np.testing.assert_allclose(model.encode(np.array(TEXTS)[0]), expected[0], atol=1e-6)


def test_close_and_the_context_manager(exported):
    folder = exported("bert-mean")
    with load(folder, performance_hint="throughput", threads=2) as model:
        before = model.encode(TEXTS * 20, batch_size=8)
    with pytest.raises(EdgesbertError, match="closed"):
        model.encode(TEXTS)
    model.close()  # idempotent
    cross = load(exported("bert-1", "cross-encoder"))
    cross.close()
    with pytest.raises(EdgesbertError, match="closed"):
        cross.predict([("a", "b")])
    np.testing.assert_allclose(load(folder).encode(TEXTS * 20, batch_size=8), before, atol=1e-6)
