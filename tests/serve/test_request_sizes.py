"""Each API's request sizes: OpenAI's 2,048 inputs and token arrays, the per-request token limit, usage.

Numbers are compared with the in-process runtime at the other serve tests' tolerance (1e-6).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from edgesbert.runtime import load
from edgesbert.serve.models import ServedModel
from tests.serve.conftest import Server, server_in_thread, settings_for

TOL = 1e-6
LONG = "word " * 400  # far over the tiny models' 64 tokens


@pytest.fixture(scope="module")
def runtime(served_folders) -> dict[str, Any]:
    """The served models, loaded in this process."""
    return {name: load(folder) for name, folder in served_folders.items()}


@pytest.fixture(scope="module")
def short_texts(stsb_sentences) -> list[str]:
    """2,048 short texts (3 to 8 words of a real sentence, and a number that keeps them apart)."""
    return [
        " ".join(stsb_sentences[i % len(stsb_sentences)].split()[: 3 + i % 6]) + f" {i}" for i in range(2048)
    ]


def ok(reply) -> Any:
    assert reply.status == 200, reply.body
    return reply.json()


def rows_of(reply: dict[str, Any]) -> np.ndarray:
    return np.array([d["embedding"] for d in reply["data"]], dtype=np.float64)


def assert_close(got: Any, expected: Any) -> None:
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOL


def real_tokens(model, items: list[Any]) -> int:
    """Tokens the model runs: special tokens included, after truncation, no padding."""
    return sum(min(count, model.max_seq_length) for count in model.tokenizer.token_counts(items))


def token_ids(model, texts: list[str], special: bool = False) -> list[list[int]]:
    return [[t.id for t in text] for text in model.tokenizer.tokens(texts, add_special_tokens=special)]


# --- OpenAI: 2,048 inputs, split by the token budget -----------------------------------------------------


def test_openai_takes_2048_inputs(server: Server, runtime, short_texts):
    reply = ok(server.post("/v1/embeddings", {"input": short_texts, "model": "mini"}, timeout=300))
    assert [d["index"] for d in reply["data"]] == list(range(2048))
    assert_close(rows_of(reply), runtime["mini"].encode(short_texts))
    tokens = real_tokens(runtime["mini"], short_texts)
    assert tokens > 16384  # over the default max_batch_tokens: the server ran it in parts
    assert reply["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_openai_refuses_2049_inputs_and_tei_keeps_32(server: Server):
    reply = server.post("/v1/embeddings", {"input": ["x"] * 2049})
    assert reply.status == 422
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == "input holds 2049 texts, more than OpenAI's limit (2048); split the request"
    assert server.post("/v1/embeddings", {"input": [[5]] * 2049}).status == 422
    assert "max_client_batch_size (32)" in server.post("/embed", {"inputs": ["x"] * 33}).json()["error"]


def test_a_large_request_runs_in_batches_of_the_token_budget(
    served_folders, runtime, short_texts, monkeypatch
):
    batches: list[list[str]] = []
    lock = threading.Lock()
    original = ServedModel._embed_batch

    def recorded(self, texts):
        with lock:
            batches.append(list(texts))
        return original(self, texts)

    monkeypatch.setattr(ServedModel, "_embed_batch", recorded)
    texts = short_texts[:300]
    settings = settings_for({"mini": served_folders["mini"]}, max_batch_tokens=200)
    with server_in_thread(settings) as small:
        reply = ok(small.post("/v1/embeddings", {"input": texts}))
    model = runtime["mini"]
    assert_close(rows_of(reply), model.encode(texts))
    assert len(batches) >= real_tokens(model, texts) // 200
    assert all(real_tokens(model, batch) <= 200 for batch in batches)
    assert sorted(t for batch in batches for t in batch) == sorted(texts)  # each text ran once


# --- OpenAI: token arrays --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mini", "prompted"])
@pytest.mark.parametrize("special", [False, True])
def test_token_arrays_get_the_numbers_of_their_texts(server: Server, runtime, stsb_sentences, name, special):
    texts = [*stsb_sentences[:40], LONG]
    model = runtime[name]
    as_text = ok(server.post("/v1/embeddings", {"input": texts, "model": name}))
    as_ids = ok(server.post("/v1/embeddings", {"input": token_ids(model, texts, special), "model": name}))
    assert_close(rows_of(as_ids), rows_of(as_text))
    assert_close(rows_of(as_ids), model.encode(texts, normalize_embeddings=True))  # default prompt, if any
    assert as_ids["usage"] == as_text["usage"]


def test_one_token_array(server: Server, runtime, stsb_sentences):
    [ids] = token_ids(runtime["mini"], stsb_sentences[:1])
    reply = ok(server.post("/v1/embeddings", {"input": ids, "model": "mini"}))
    assert len(reply["data"]) == 1
    assert_close(rows_of(reply), runtime["mini"].encode(stsb_sentences[:1]))
    assert reply["usage"]["total_tokens"] == len(ids) + 2  # [CLS] and [SEP]


# --- usage -----------------------------------------------------------------------------------------------


def test_usage_counts_real_tokens(server: Server, runtime):
    texts = ["hi", "The weather is lovely today.", LONG]
    reply = ok(server.post("/v1/embeddings", {"input": texts, "model": "mini"}))
    # the server's own tokens of each text, cut at the model's limit: no padding to the longest
    tokenized = ok(server.post("/tokenize", {"inputs": texts, "model": "mini"}))
    limit = ok(server.get("/info"))["max_input_length"]
    real = sum(min(len(tokens), limit) for tokens in tokenized)
    assert reply["usage"] == {"prompt_tokens": real, "total_tokens": real}
    assert real == real_tokens(runtime["mini"], texts) < len(texts) * limit


# --- the per-request token limit -------------------------------------------------------------------------


def test_token_limit_refuses_with_its_number_in_each_api_shape(served_folders, runtime, stsb_sentences):
    folders = {"mini": served_folders["mini"], "reranker": served_folders["reranker"]}
    texts = stsb_sentences[:12]
    embedded = real_tokens(runtime["mini"], texts)
    ranked = real_tokens(runtime["reranker"], [(texts[0], d) for d in texts[1:]])
    assert embedded > 100 and ranked > 100
    with server_in_thread(settings_for(folders, max_client_batch_tokens=100)) as limited:
        assert ok(limited.get("/info"))["max_client_batch_tokens"] == 100
        limit = "more than this server's max_client_batch_tokens (100); split the request"

        reply = limited.post("/v1/embeddings", {"input": texts})
        assert reply.status == 413
        assert reply.json() == {
            "error": {
                "message": f"input holds {embedded} tokens (after truncation), {limit}",
                "type": "invalid_request_error",
                "param": None,
                "code": "PayloadTooLarge",
            }
        }
        reply = limited.post("/embed", {"inputs": texts})
        assert (reply.status, reply.json()) == (
            413,
            {
                "error": f"inputs holds {embedded} tokens (after truncation), {limit}",
                "error_type": "PayloadTooLarge",
            },
        )
        reply = limited.post("/v2/rerank", {"query": texts[0], "documents": texts[1:]})
        assert reply.status == 413
        assert reply.json() == {"message": f"documents holds {ranked} tokens (after truncation), {limit}"}
        assert limited.post("/v1/embeddings", {"input": token_ids(runtime["mini"], texts)}).status == 413
        assert ok(limited.post("/v1/embeddings", {"input": texts[:2]}))["usage"]["total_tokens"] <= 100


def test_token_limit_must_be_positive(served_folders):
    with pytest.raises(ValueError, match="max_client_batch_tokens must be at least 1"):
        settings_for({"mini": served_folders["mini"]}, max_client_batch_tokens=0)
