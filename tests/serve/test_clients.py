"""Client libraries nobody here wrote, unchanged, against ``edgesbert serve``: the runtime's numbers.

The openai SDK (OpenAI's API), LangChain's OpenAIEmbeddings (on the openai SDK, 1,000 texts a request),
huggingface_hub's InferenceClient (TEI's client) and the cohere SDK (Cohere's v1 and v2 rerank). Each
returns float32 values unchanged (JSON floats, or base64 bytes), so the tolerance stays the routes' 1e-6.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgesbert.runtime import load
from tests.serve.conftest import metric

TOL = 1e-6


@pytest.fixture(scope="module")
def runtime(served_folders) -> dict[str, Any]:
    """The served models, loaded in this process."""
    return {name: load(folder) for name, folder in served_folders.items()}


@pytest.fixture(scope="module")
def texts(stsb_sentences) -> list[str]:
    """Real sentences, the last longer than the models take."""
    return [*stsb_sentences[10:16], " ".join(stsb_sentences[20:32])]


def assert_close(got: Any, expected: Any) -> None:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOL


def tokens(model, items: list[Any]) -> int:
    return sum(min(count, model.max_seq_length) for count in model.tokenizer.token_counts(items))


# --- openai ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openai_client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def test_openai_default_base64(openai_client, runtime, texts):
    raw = openai_client.embeddings.with_raw_response.create(input=texts, model="mini")
    sent = raw.http_response.json()
    assert all(isinstance(d["embedding"], str) for d in sent["data"])  # the SDK asked for base64
    response = raw.parse()
    assert response.model == "mini" and [d.index for d in response.data] == list(range(len(texts)))
    assert_close([d.embedding for d in response.data], runtime["mini"].encode(texts))
    expected = tokens(runtime["mini"], texts)
    assert (response.usage.prompt_tokens, response.usage.total_tokens) == (expected, expected)


@pytest.mark.parametrize(("name", "dimensions"), [("mini", None), ("mini", 8), ("prompted", 16)])
def test_openai_float_and_dimensions(openai_client, runtime, texts, name, dimensions):
    kwargs = {} if dimensions is None else {"dimensions": dimensions}
    response = openai_client.embeddings.create(input=texts, model=name, encoding_format="float", **kwargs)
    rows = [d.embedding for d in response.data]
    assert all(isinstance(v, float) for row in rows for v in row)
    # OpenAI's route normalizes (after the cut); "prompted" gets its default prompt
    expected = runtime[name].encode(texts, truncate_dim=dimensions, normalize_embeddings=True)
    assert_close(rows, expected)


# --- huggingface_hub ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_client(server):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    return huggingface_hub.InferenceClient(base_url=server.url)


def test_hf_feature_extraction(hf_client, runtime, texts):
    rows = hf_client.feature_extraction(texts)
    assert rows.dtype == np.float32 and rows.shape == (len(texts), runtime["mini"].embedding_dimension)
    assert_close(rows, runtime["mini"].encode(texts))
    assert_close(hf_client.feature_extraction(texts[0]), runtime["mini"].encode([texts[0]]))


def test_hf_feature_extraction_options(hf_client, runtime, texts):
    # The client sends normalize and dimensions in the body; its `model` argument replaces the URL (it is
    # never sent), so the server's first bi-encoder, "mini", answers. "mini" is normalized at full width,
    # so only a cut shows whether normalize=False was honoured.
    cut = hf_client.feature_extraction(texts, normalize=False, dimensions=8)
    assert_close(cut, runtime["mini"].encode(texts, truncate_dim=8))
    assert (np.linalg.norm(cut, axis=1) < 0.99).all()
    renormalized = hf_client.feature_extraction(texts, dimensions=8)
    assert_close(renormalized, runtime["mini"].encode(texts, truncate_dim=8, normalize_embeddings=True))


def test_hf_sentence_similarity(hf_client, runtime, texts):
    scores = hf_client.sentence_similarity(texts[0], [texts[1], texts[2]])
    assert isinstance(scores, list) and len(scores) == 2
    embeddings = runtime["mini"].encode(texts[:3])
    assert_close(scores, runtime["mini"].similarity(embeddings[:1], embeddings[1:])[0])


# --- cohere ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cohere():
    return pytest.importorskip("cohere")


def best_scores(runtime, query: str, documents: list[str], top_n: int | None) -> tuple[list[int], np.ndarray]:
    scores = runtime["reranker"].predict([(query, d) for d in documents])  # sigmoid of the logits
    best = np.argsort(-scores, kind="stable")[:top_n]
    return best.tolist(), scores[best]


def test_cohere_v2_rerank(cohere, server, runtime, texts):
    client = cohere.ClientV2(base_url=server.url, api_key="unused")
    query, documents = texts[0], texts[1:]
    response = client.rerank(model="reranker", query=query, documents=documents, top_n=3)
    best, scores = best_scores(runtime, query, documents, 3)
    assert [r.index for r in response.results] == best
    assert_close([r.relevance_score for r in response.results], scores)
    assert all(getattr(r, "document", None) is None for r in response.results)


def test_cohere_v1_rerank_documents(cohere, server, runtime, texts):
    client = cohere.Client(base_url=server.url, api_key="unused")
    query, documents = texts[0], texts[1:]
    response = client.rerank(model="reranker", query=query, documents=documents, return_documents=True)
    best, scores = best_scores(runtime, query, documents, None)
    assert [r.index for r in response.results] == best
    assert_close([r.relevance_score for r in response.results], scores)
    assert [r.document.text for r in response.results] == [documents[i] for i in best]


def test_cohere_client_reads_the_error_as_cohere_sends_it(cohere, server, texts):
    from cohere.core.api_error import ApiError

    client = cohere.ClientV2(base_url=server.url, api_key="unused")
    with pytest.raises(ApiError) as raised:
        client.rerank(model="reranker", query=texts[0], documents=texts[1:], top_n=0)
    assert raised.value.status_code == 422
    assert raised.value.body == {"message": "top_n must be at least 1, got 0"}


# --- langchain-openai -----------------------------------------------------------------------------------


def test_langchain_openai_embeddings(server, runtime, stsb_sentences):
    """LangChain's OpenAIEmbeddings sends 1,000 texts per request (its default); one request takes them."""
    langchain_openai = pytest.importorskip("langchain_openai")
    texts = [f"{stsb_sentences[i % len(stsb_sentences)]} ({i})" for i in range(1200)]
    embeddings = langchain_openai.OpenAIEmbeddings(
        model="mini", base_url=server.url + "/v1", api_key="unused", max_retries=0, chunk_size=1000,
        check_embedding_ctx_length=False,  # send strings: its tiktoken token ids mean nothing to this model
    )  # fmt: skip
    expected = runtime["mini"].encode(texts)
    series = 'model="mini",route="/v1/embeddings"'
    before = server.get("/metrics").body.decode()
    assert_close(embeddings.embed_documents(texts), expected)
    assert_close([embeddings.embed_query(texts[5])], expected[5:6])
    after = server.get("/metrics").body.decode()
    requests = ("edgesbert_requests_total", f'{series},status="200"')
    assert metric(after, *requests) - metric(before, *requests) == 3  # 1,000 texts, 200, then the query
    inputs = ("edgesbert_request_inputs_total", series)
    assert metric(after, *inputs) - metric(before, *inputs) == 1201
