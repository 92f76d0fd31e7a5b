"""Every route of ``edgesbert serve``: the shape of its response, and numbers equal to the in-process runtime.

One session server (conftest's ``server``) serves "mini", "prompted", "reranker" and "nli"; each test
loads the same folders with ``edgesbert.runtime.load`` and compares (max abs diff <= 1e-6).
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

import numpy as np
import pytest

from edgesbert.data import english_sentences
from edgesbert.runtime import load, quantize_embeddings
from edgesbert.runtime.ranking import softmax
from tests.serve.conftest import metric

TOL = 1e-6
DTYPES = {"int8": np.int8, "uint8": np.uint8, "binary": np.int8, "ubinary": np.uint8}
NAMES = ["mini", "prompted", "reranker", "nli"]


@pytest.fixture(scope="module")
def runtime(served_folders) -> dict[str, Any]:
    """The served models, loaded in this process."""
    return {name: load(folder) for name, folder in served_folders.items()}


@pytest.fixture(scope="module")
def texts(stsb_sentences) -> list[str]:
    """Real sentences of several lengths, the last longer than the models take (it gets truncated)."""
    long = " ".join(stsb_sentences[:12])
    return [*stsb_sentences[:6], long]


def ok(reply) -> Any:
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith("application/json")
    return reply.json()


def assert_close(got: Any, expected: Any, tol: float = TOL) -> None:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= tol


def assert_floats(rows: list[list[Any]]) -> None:
    assert all(isinstance(v, float) for row in rows for v in row)


def usage_tokens(model, items: list[Any]) -> int:
    return sum(min(count, model.max_seq_length) for count in model.tokenizer.token_counts(items))


# --- TEI: /embed --------------------------------------------------------------------------------------


@pytest.mark.parametrize("single", [True, False])
def test_embed_str_and_list(server, runtime, texts, single):
    inputs = texts[0] if single else texts
    rows = ok(server.post("/embed", {"inputs": inputs, "model": "mini"}))
    assert isinstance(rows, list) and all(isinstance(row, list) for row in rows)
    assert_floats(rows)
    assert_close(rows, runtime["mini"].encode([inputs] if single else inputs))


@pytest.mark.parametrize("normalize", [True, False])
def test_embed_normalize(server, runtime, texts, normalize):
    rows = ok(server.post("/embed", {"inputs": texts, "model": "prompted", "normalize": normalize}))
    assert_close(rows, runtime["prompted"].encode(texts, normalize_embeddings=normalize))
    norms = np.linalg.norm(rows, axis=1)
    assert np.allclose(norms, 1, atol=1e-5) if normalize else (norms > 2).all()


@pytest.mark.parametrize(("name", "normalize"), [("mini", True), ("mini", False), ("prompted", True)])
def test_embed_dimensions_truncate_then_normalize(server, runtime, texts, name, normalize):
    body = {"inputs": texts, "model": name, "dimensions": 8, "normalize": normalize}
    rows = np.array(ok(server.post("/embed", body)))
    expected = runtime[name].encode(texts, truncate_dim=8, normalize_embeddings=normalize)
    assert rows.shape == (len(texts), 8)
    assert_close(rows, expected)
    if normalize:  # normalized after the cut, not cut after normalizing
        assert np.allclose(np.linalg.norm(rows, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("prompt_name", [None, "query", "passage"])
def test_embed_prompts(server, runtime, texts, prompt_name):
    body = {"inputs": texts, "model": "prompted", "normalize": False, "prompt_name": prompt_name}
    rows = ok(server.post("/embed", body))
    model = runtime["prompted"]
    assert_close(rows, model.encode(texts, prompt_name=prompt_name))  # None: the default prompt, "query"
    assert np.abs(np.array(rows) - model.encode(texts, prompt="")).max() > 1e-3


def server_ranges(
    model, prompt: str = "", dimensions: int | None = None, normalize: bool = True
) -> np.ndarray:
    """The server's fixed int8/uint8 ranges: the built-in English sentences embedded with the request's
    prompt, then cut and normalized as the request's rows are."""
    calibration = model.encode([prompt + t for t in english_sentences()], prompt="")[:, :dimensions]
    if normalize and not (model.spec.normalize and dimensions is None):  # unit rows are left as they are
        calibration = calibration / np.linalg.norm(calibration, axis=1, keepdims=True)
    return np.stack([calibration.min(axis=0), calibration.max(axis=0)])


@pytest.fixture(scope="module")
def int8_ranges(runtime) -> np.ndarray:
    return server_ranges(runtime["mini"])


def decode_base64(rows: list[str], dtype: Any) -> np.ndarray:
    return np.stack(
        [np.frombuffer(base64.b64decode(row), dtype=np.dtype(dtype).newbyteorder("<")) for row in rows]
    )


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_embed_quantized(server, runtime, texts, int8_ranges, precision):
    body = {"inputs": texts, "model": "mini"}
    floats = np.array(ok(server.post("/embed", body)), dtype=np.float32)
    codes = ok(server.post("/embed", {**body, "precision": precision}))
    assert all(isinstance(v, int) for row in codes for v in row)
    ranges = int8_ranges if precision.endswith("int8") else None
    # The exact codes of the server's own floats (the same batch, so the same floats), and the runtime's
    # floats (equal to 1e-6, so a value on a bucket's edge may fall one bucket over).
    assert np.array_equal(codes, quantize_embeddings(floats, precision, ranges))
    assert (
        np.abs(np.array(codes) - quantize_embeddings(runtime["mini"].encode(texts), precision, ranges)).max()
        <= 1
    )
    if precision.endswith("binary"):
        assert np.array_equal(codes, runtime["mini"].encode(texts, precision=precision))
        assert np.array(codes).shape == (len(texts), 32 // 8)
    packed = ok(server.post("/embed", {**body, "precision": precision, "encoding_format": "base64"}))
    assert all(isinstance(row, str) for row in packed)
    assert np.array_equal(decode_base64(packed, DTYPES[precision]), codes)


@pytest.mark.parametrize(
    ("model", "options"),
    [
        ("prompted", {}),
        ("prompted", {"normalize": False, "prompt_name": "passage"}),
        ("mini", {"dimensions": 8}),
    ],
)
@pytest.mark.parametrize("precision", ["int8", "uint8"])
def test_int8_ranges_follow_the_request_shape(server, runtime, stsb_sentences, model, options, precision):
    """Ranges come from embeddings shaped like the request's (prompt, cut, normalization).

    So the codes spread over the buckets instead of piling up at the ends.
    """
    body = {"inputs": stsb_sentences[:32], "model": model, **options}
    floats = np.array(ok(server.post("/embed", body)), dtype=np.float32)
    codes = np.array(ok(server.post("/embed", {**body, "precision": precision})))
    encoder = runtime[model]
    prompt = (
        encoder.prompts[options.get("prompt_name") or encoder.default_prompt_name or ""]
        if encoder.prompts
        else ""
    )
    ranges = server_ranges(encoder, prompt, options.get("dimensions"), options.get("normalize", True))
    assert np.array_equal(codes, quantize_embeddings(floats, precision, ranges))
    low, high = (-128, 127) if precision == "int8" else (0, 255)
    assert np.isin(codes, [low, high]).mean() < 0.05
    assert np.mean([len(np.unique(column)) for column in codes.T]) > 10


def test_embed_base64_float32(server, runtime, texts):
    body = {"inputs": texts, "model": "prompted", "dimensions": 16}
    floats = ok(server.post("/embed", body))
    packed = ok(server.post("/embed", {**body, "encoding_format": "base64"}))
    decoded = decode_base64(packed, np.float32)
    assert np.array_equal(decoded, np.array(floats, dtype=np.float32))  # bit for bit
    assert_close(decoded, runtime["prompted"].encode(texts, truncate_dim=16, normalize_embeddings=True))


# --- TEI: /rerank, /predict, /similarity ----------------------------------------------------------------


@pytest.mark.parametrize(("raw_scores", "return_text"), [(False, False), (True, False), (False, True)])
def test_rerank(server, runtime, texts, raw_scores, return_text):
    query, documents = texts[0], texts[1:]
    body = {"query": query, "texts": documents, "model": "reranker", "raw_scores": raw_scores}
    ranks = ok(server.post("/rerank", {**body, "return_text": return_text}))
    pairs = [(query, d) for d in documents]
    logits = runtime["reranker"].predict(pairs, activation_fn="identity")  # one label: one score per pair
    expected = logits if raw_scores else runtime["reranker"].predict(pairs)
    assert np.allclose(expected, logits if raw_scores else 1 / (1 + np.exp(-logits)))  # sigmoid unless raw
    keys = ["index", "score", "text"] if return_text else ["index", "score"]
    assert [list(r) for r in ranks] == [keys] * len(documents)
    assert sorted(r["index"] for r in ranks) == list(range(len(documents)))
    scores = [r["score"] for r in ranks]
    assert scores == sorted(scores, reverse=True)
    assert_close(scores, expected[[r["index"] for r in ranks]])
    if return_text:
        assert [r["text"] for r in ranks] == [documents[r["index"]] for r in ranks]


def expected_predictions(model, pairs: list[tuple[str, str]], raw: bool) -> list[list[tuple[str, float]]]:
    """(label, score) of each pair, best first: the logits if raw, else sigmoid (one label) or softmax."""
    logits = model.predict(pairs, activation_fn="identity").reshape(len(pairs), -1)
    if raw:
        scores = logits
    elif logits.shape[1] == 1:
        scores = model.predict(pairs).reshape(len(pairs), 1)
    else:
        scores = softmax(logits)
    labels = model.spec.labels or tuple(f"LABEL_{i}" for i in range(logits.shape[1]))
    return [sorted(zip(labels, row, strict=True), key=lambda p: -p[1]) for row in scores]


def assert_predictions(got: list[dict[str, Any]], expected: list[tuple[str, float]]) -> None:
    assert [list(p) for p in got] == [["score", "label"]] * len(expected)
    assert [p["label"] for p in got] == [label for label, _ in expected]
    assert_close([p["score"] for p in got], [score for _, score in expected])


@pytest.mark.parametrize("name", ["reranker", "nli"])
@pytest.mark.parametrize("raw_scores", [False, True])
def test_predict(server, runtime, texts, name, raw_scores):
    pairs = [(texts[0], texts[1]), (texts[2], texts[3]), (texts[4], texts[6])]
    expected = expected_predictions(runtime[name], pairs, raw_scores)
    body = {"model": name, "raw_scores": raw_scores}
    one = ok(server.post("/predict", {**body, "inputs": list(pairs[0])}))
    assert_predictions(one, expected[0])
    batch = ok(server.post("/predict", {**body, "inputs": [list(p) for p in pairs]}))
    assert len(batch) == len(pairs)
    for got, want in zip(batch, expected, strict=True):
        assert_predictions(got, want)
    if name == "nli" and not raw_scores:
        assert runtime[name].spec.labels and len(one) == 3
        assert abs(sum(p["score"] for p in one) - 1) < 1e-5


@pytest.mark.parametrize("name", ["mini", "prompted"])
def test_similarity(server, runtime, texts, name):
    model = runtime[name]
    body = {"inputs": {"source_sentence": texts[0], "sentences": texts[1:]}, "model": name}
    scores = ok(server.post("/similarity", body))
    assert isinstance(scores, list) and all(isinstance(s, float) for s in scores)
    embeddings = model.encode(texts)
    expected = model.similarity(embeddings[:1], embeddings[1:])[0]
    # "prompted" uses dot products of unnormalized rows (about 225): 1e-6 relative there, under 1 ulp
    assert_close(scores, expected, TOL * max(1.0, np.abs(expected).max()))
    if name == "prompted":
        assert model.similarity_fn_name.value == "dot" and min(scores) > 1


# --- TEI: /tokenize, /info, /health, /metrics -----------------------------------------------------------


@pytest.mark.parametrize("add_special_tokens", [True, False])
def test_tokenize(server, runtime, texts, add_special_tokens):
    body = {"inputs": texts[:3], "model": "mini", "add_special_tokens": add_special_tokens}
    tokens = ok(server.post("/tokenize", body))
    expected = runtime["mini"].tokenizer.tokens(texts[:3], add_special_tokens=add_special_tokens)
    assert tokens == [[vars(t) for t in text] for text in expected]
    assert all(list(t) == ["id", "text", "special", "start", "stop"] for text in tokens for t in text)
    for text, sentence in zip(tokens, texts[:3], strict=True):
        assert any(t["special"] for t in text) is add_special_tokens
        for t in text:
            assert isinstance(t["id"], int) and isinstance(t["text"], str)
            if not t["special"]:
                assert sentence[t["start"] : t["stop"]].lower() in t["text"].lower()


def test_tokenize_str_and_prompt(server, runtime, texts):
    one = ok(server.post("/tokenize", {"inputs": texts[0], "model": "prompted", "prompt_name": "passage"}))
    expected = runtime["prompted"].tokenizer.tokens(["passage: " + texts[0]])
    assert one == [[vars(t) for t in expected[0]]]


def test_info(server, runtime):
    info = ok(server.get("/info"))
    required = {
        "model_id": str, "model_dtype": str, "served_model_name": str, "model_type": dict,
        "max_concurrent_requests": int, "max_input_length": int, "max_batch_tokens": int,
        "max_client_batch_size": int, "auto_truncate": bool, "tokenization_workers": int, "version": str,
    }  # fmt: skip
    models = info.pop("models")
    assert info == models[0]
    assert [m["served_model_name"] for m in models] == NAMES
    for described in models:
        for key, kind in required.items():
            assert isinstance(described[key], kind), key
        name = described["served_model_name"]
        assert described["max_input_length"] == runtime[name].max_seq_length
        assert described["model_dtype"] == {"fp32": "float32"}[runtime[name].variant.precision.value]
    assert models[0]["model_type"] == {"embedding": {"pooling": "mean"}}
    assert list(models[2]["model_type"]) == ["reranker"]
    classifier = models[3]["model_type"]["classifier"]
    labels = runtime["nli"].spec.labels
    assert classifier["id2label"] == {str(i): label for i, label in enumerate(labels)}
    assert classifier["label2id"] == {label: i for i, label in enumerate(labels)}


@pytest.mark.parametrize("path", ["/health", "/"])
def test_health(server, path):
    reply = server.get(path)
    assert (reply.status, reply.body) == (200, b"")


def test_metrics(server, texts):
    def read() -> str:
        reply = server.get("/metrics")
        assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
        return reply.body.decode()

    before = read()
    ok(server.post("/embed", {"inputs": texts[:3], "model": "mini"}))
    after = read()
    for name, labels, step in [
        ("edgesbert_requests_total", 'model="mini",route="/embed",status="200"', 1),
        ("edgesbert_batch_size_count", 'model="mini"', 1),
        ("edgesbert_batch_size_sum", 'model="mini"', 3),
    ]:
        assert metric(after, name, labels) == metric(before, name, labels) + step, name


# --- TEI: POST / ----------------------------------------------------------------------------------------


def test_post_root_dispatches(server, texts):
    bodies = {
        "/embed": {"inputs": texts, "model": "prompted", "normalize": False},
        "/similarity": {"inputs": {"source_sentence": texts[0], "sentences": texts[1:]}, "model": "mini"},
        "/rerank": {"query": texts[0], "texts": texts[1:], "model": "reranker", "return_text": True},
        "/predict": {"inputs": [[texts[0], texts[1]], [texts[2], texts[3]]], "model": "nli"},
    }
    for path, body in bodies.items():
        assert ok(server.post("/", body)) == ok(server.post(path, body)), path
    default = ok(server.post("/", {"inputs": texts[:2]}))  # no model: the first bi-encoder, "mini"
    assert default == ok(server.post("/embed", {"inputs": texts[:2], "model": "mini"}))


# --- OpenAI ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/embeddings", "/embeddings"])
@pytest.mark.parametrize(
    ("name", "encoding_format", "dimensions"),
    [("mini", "float", None), ("mini", "base64", None), ("mini", "float", 8), ("prompted", "base64", 16)],
)
def test_openai_embeddings(server, runtime, texts, path, name, encoding_format, dimensions):
    body = {"input": texts, "model": name, "encoding_format": encoding_format, "dimensions": dimensions}
    reply = ok(server.post(path, body))
    model = runtime[name]
    assert list(reply) == ["object", "data", "model", "usage"]
    assert (reply["object"], reply["model"]) == ("list", name)
    prompted = [model.prompts.get(model.default_prompt_name, "") + t for t in texts]  # the default prompt
    tokens = usage_tokens(model, prompted)
    assert tokens < sum(model.tokenizer.token_counts(prompted))  # the long text counts as truncated
    assert reply["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    data = reply["data"]
    assert [list(d) for d in data] == [["object", "embedding", "index"]] * len(texts)
    assert [(d["object"], d["index"]) for d in data] == [("embedding", i) for i in range(len(texts))]
    if encoding_format == "base64":
        rows = decode_base64([d["embedding"] for d in data], np.float32)
    else:
        assert_floats([d["embedding"] for d in data])
        rows = np.array([d["embedding"] for d in data])
    assert_close(rows, model.encode(texts, truncate_dim=dimensions, normalize_embeddings=True))


def test_openai_single_input(server, runtime, texts):
    reply = ok(server.post("/v1/embeddings", {"input": texts[1], "model": "mini"}))
    assert len(reply["data"]) == 1
    assert_close([reply["data"][0]["embedding"]], runtime["mini"].encode([texts[1]]))
    assert reply["usage"]["total_tokens"] == usage_tokens(runtime["mini"], [texts[1]])


def test_openai_models(server):
    reply = ok(server.get("/v1/models"))
    assert list(reply) == ["object", "data"] and reply["object"] == "list"
    assert [m["id"] for m in reply["data"]] == NAMES
    for m in reply["data"]:
        assert list(m) == ["id", "object", "created", "owned_by"] and m["object"] == "model"
        assert isinstance(m["created"], int) and isinstance(m["owned_by"], str)


# --- Cohere and Jina ------------------------------------------------------------------------------------


@pytest.mark.parametrize("top_n", [None, 3])
def test_cohere_v2_rerank(server, runtime, texts, top_n):
    query, documents = texts[0], texts[1:]
    body = {"model": "reranker", "query": query, "documents": documents, "top_n": top_n}
    reply = ok(server.post("/v2/rerank", body))
    assert list(reply) == ["id", "results", "meta"]
    uuid.UUID(reply["id"])
    assert reply["meta"]["api_version"]["version"] == "2"
    scores = runtime["reranker"].predict([(query, d) for d in documents])
    best = np.argsort(-scores, kind="stable")[:top_n]
    assert [list(r) for r in reply["results"]] == [["index", "relevance_score"]] * len(best)
    assert [r["index"] for r in reply["results"]] == best.tolist()
    assert_close([r["relevance_score"] for r in reply["results"]], scores[best])


@pytest.mark.parametrize("as_objects", [False, True])
@pytest.mark.parametrize("return_documents", [None, True, False])
def test_v1_rerank(server, runtime, texts, as_objects, return_documents):
    query, documents = texts[0], texts[1:]
    sent = [{"text": d} for d in documents] if as_objects else documents
    body = {"model": "reranker", "query": query, "documents": sent, "top_n": 4}
    if return_documents is not None:
        body["return_documents"] = return_documents
    reply = ok(server.post("/v1/rerank", body))
    assert list(reply) == ["id", "results", "meta", "model", "usage"]
    assert reply["model"] == "reranker" and reply["meta"]["api_version"]["version"] == "1"
    model = runtime["reranker"]
    assert reply["usage"] == {"total_tokens": usage_tokens(model, [(query, d) for d in documents])}
    scores = model.predict([(query, d) for d in documents])
    best = np.argsort(-scores, kind="stable")[:4]
    results = reply["results"]
    assert [r["index"] for r in results] == best.tolist()
    assert_close([r["relevance_score"] for r in results], scores[best])
    if return_documents is False:
        assert [list(r) for r in results] == [["index", "relevance_score"]] * 4
    else:  # returned unless asked not to
        assert [r["document"] for r in results] == [{"text": documents[i]} for i in best]


def test_tokenize_puts_the_default_prompt_first_as_embed_does(server, runtime, texts):
    tokens = ok(server.post("/tokenize", {"inputs": texts[0], "model": "prompted"}))
    assert tokens == [[vars(t) for t in runtime["prompted"].tokenizer.tokens(["query: " + texts[0]])[0]]]
    refused = server.post("/tokenize", {"inputs": "a", "model": "reranker", "prompt_name": "query"})
    assert refused.status == 422
