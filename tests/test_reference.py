"""The PyTorch reference reproduces sentence-transformers on tiny models of every supported layout."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import BI_ENCODERS, CROSS_ENCODERS

pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="module", params=sorted(BI_ENCODERS))
def bi_pair(request, tiny_bi_encoder_folder):
    from sentence_transformers import SentenceTransformer

    from edgesbert.reference import BiEncoder

    folder = tiny_bi_encoder_folder(request.param)
    return BiEncoder(folder), SentenceTransformer(str(folder), device="cpu")


@pytest.fixture(scope="module", params=sorted(CROSS_ENCODERS))
def cross_pair(request, tiny_cross_encoder_folder):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    from edgesbert.reference import CrossEncoder

    folder = tiny_cross_encoder_folder(request.param)
    return CrossEncoder(folder), STCrossEncoder(str(folder), device="cpu")


def test_encode_matches_sentence_transformers(bi_pair, stsb_sentences):
    ours, theirs = bi_pair
    expected = theirs.encode(stsb_sentences, batch_size=16)
    actual = ours.encode(stsb_sentences, batch_size=16)
    assert actual.shape == expected.shape == (len(stsb_sentences), ours.embedding_dimension)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        {"normalize_embeddings": True},
        {"truncate_dim": 8},
        {"truncate_dim": 8, "normalize_embeddings": True},
        {"prompt": "search: "},
        {"precision": "int8"},
        {"precision": "uint8"},
        {"precision": "binary"},
        {"precision": "ubinary"},
    ],
    ids=str,
)
def test_encode_options_match_sentence_transformers(bi_pair, stsb_sentences, options):
    ours, theirs = bi_pair
    texts = stsb_sentences[:20]
    expected = theirs.encode(texts, **options)
    actual = ours.encode(texts, **options)
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual.astype(np.float32), expected.astype(np.float32), atol=1e-5)


def test_prompts_match_sentence_transformers(tiny_bi_encoder_folder):
    from sentence_transformers import SentenceTransformer

    from edgesbert.reference import BiEncoder

    folder = tiny_bi_encoder_folder("bert-sqrt-prompts")
    ours, theirs = BiEncoder(folder), SentenceTransformer(str(folder), device="cpu")
    texts = ["what is a cat", "a cat is an animal"]
    for name in (None, "query", "passage"):
        np.testing.assert_allclose(
            ours.encode(texts, prompt_name=name), theirs.encode(texts, prompt_name=name), atol=1e-5
        )
    # The default prompt is applied when none is named: it changes the embedding.
    assert not np.allclose(ours.encode(texts), ours.encode(texts, prompt=""))
    with pytest.raises(ValueError, match="passage, query"):
        ours.encode(texts, prompt_name="nope")


def test_single_text_gives_vector_and_empty_list_gives_empty_matrix(bi_pair):
    ours, _ = bi_pair
    vector = ours.encode("one sentence")
    assert vector.shape == (ours.embedding_dimension,)
    np.testing.assert_allclose(vector, ours.encode(["one sentence"])[0], atol=1e-6)
    assert ours.encode([]).shape == (0, ours.embedding_dimension)
    assert ours.encode([], precision="ubinary").shape == (0, (ours.embedding_dimension + 7) // 8)


def test_similarity_matches_sentence_transformers(bi_pair, stsb_sentences):
    ours, theirs = bi_pair
    embeddings = ours.encode(stsb_sentences[:10])
    assert ours.similarity_fn_name.value == theirs.similarity_fn_name
    np.testing.assert_allclose(
        ours.similarity(embeddings, embeddings),
        theirs.similarity(embeddings, embeddings).numpy(),
        rtol=1e-5,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        ours.similarity_pairwise(embeddings[:5], embeddings[5:]),
        theirs.similarity_pairwise(embeddings[:5], embeddings[5:]).numpy(),
        rtol=1e-5,
        atol=1e-5,
    )


def test_max_seq_length_matches_sentence_transformers(bi_pair):
    ours, theirs = bi_pair
    assert ours.max_seq_length == theirs.max_seq_length


def test_predict_matches_sentence_transformers(cross_pair, stsb_sentences):
    ours, theirs = cross_pair
    pairs = list(zip(stsb_sentences[0::2], stsb_sentences[1::2], strict=True))
    np.testing.assert_allclose(ours.predict(pairs), theirs.predict(pairs), atol=1e-5)
    if ours.num_labels > 1:
        probabilities = ours.predict(pairs, apply_softmax=True)
        np.testing.assert_allclose(probabilities, theirs.predict(pairs, apply_softmax=True), atol=1e-5)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        assert ours.labels == ("contradiction", "entailment", "neutral")


def test_single_pair_gives_one_score(cross_pair):
    ours, _ = cross_pair
    pair = ("a question", "an answer")
    single = ours.predict(pair)
    np.testing.assert_allclose(single, ours.predict([pair])[0], atol=1e-6)


def test_rank_matches_sentence_transformers(tiny_cross_encoder_folder, stsb_sentences):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    from edgesbert.reference import CrossEncoder

    folder = tiny_cross_encoder_folder("bert-1")
    ours, theirs = CrossEncoder(folder), STCrossEncoder(str(folder), device="cpu")
    query, documents = stsb_sentences[0], stsb_sentences[1:30]
    expected = theirs.rank(query, documents, top_k=10, return_documents=True)
    actual = ours.rank(query, documents, top_k=10, return_documents=True)
    assert [r.corpus_id for r in actual] == [r["corpus_id"] for r in expected]
    np.testing.assert_allclose([r.score for r in actual], [r["score"] for r in expected], atol=1e-5)
    assert [r.text for r in actual] == [documents[r.corpus_id] for r in actual]


def test_sigmoid_is_the_default_activation_for_one_label(tiny_cross_encoder_folder):
    from edgesbert.reference import CrossEncoder
    from edgesbert.runtime.manifest import Activation

    assert CrossEncoder(tiny_cross_encoder_folder("bert-1")).activation is Activation.SIGMOID
    assert CrossEncoder(tiny_cross_encoder_folder("distilbert-3")).activation is Activation.IDENTITY
