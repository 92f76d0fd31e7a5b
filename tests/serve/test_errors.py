"""Bad requests get their status code and an error body of the route's API, never a 500 or a traceback."""

from __future__ import annotations

import json

import pytest

from tests.serve.conftest import Server, server_in_thread, settings_for

LONG = "word " * 400  # far over the tiny models' 64 tokens

# (path, body, status, TEI error_type, words the message must hold)
BAD_REQUESTS = [
    ("/embed", {"inputs": []}, 422, "Validation", "inputs is empty"),
    ("/embed", {"inputs": ["a", ""]}, 422, "Validation", "inputs[1] is an empty string"),
    ("/embed", {"inputs": 5}, 422, "Validation", "inputs"),
    ("/embed", {"inputs": ["a", 3]}, 422, "Validation", "inputs"),
    ("/embed", {"text": "a"}, 422, "Validation", "inputs is missing"),
    ("/embed", {"inputs": ["x"] * 33}, 422, "Validation", "max_client_batch_size (32)"),
    ("/embed", {"inputs": "a", "model": "nope"}, 404, "NotFound", "'nope' is not served"),
    ("/embed", {"inputs": "a", "model": "reranker"}, 422, "Validation", "needs a bi-encoder"),
    ("/embed", {"inputs": "a", "dimensions": 0}, 422, "Validation", "dimensions must be in 1..32"),
    ("/embed", {"inputs": "a", "dimensions": 33}, 422, "Validation", "dimensions must be in 1..32"),
    ("/embed", {"inputs": "a", "precision": "int4"}, 422, "Validation", "precision"),
    ("/embed", {"inputs": "a", "encoding_format": "hex"}, 422, "Validation", "encoding_format"),
    ("/embed", {"inputs": "a", "prompt_name": "nope", "model": "prompted"}, 422, "Validation", "'nope'"),
    ("/embed", {"inputs": "a", "truncation_direction": "left"}, 422, "Validation", "only 'right'"),
    # a lone surrogate: pydantic's JSON parser refuses it, Python's json (behind POST /) lets the tokenizer
    ("/embed", {"inputs": ["ok", "a\ud800b"]}, 422, "Validation", "not valid JSON (unexpected end of hex"),
    ("/", {"inputs": ["ok", "a\ud800b"]}, 422, "Tokenizer", "inputs[1] is not valid Unicode"),
    ("/embed", {"inputs": LONG, "truncate": False}, 413, "Validation", "more than the 64 this model takes"),
    ("/rerank", {"query": "q", "texts": []}, 422, "Validation", "texts is empty"),
    ("/rerank", {"query": "", "texts": ["a"]}, 422, "Validation", "query is empty"),
    ("/rerank", {"query": "q", "texts": ["a"], "model": "mini"}, 422, "Validation", "needs a cross-encoder"),
    ("/rerank", {"query": "q", "texts": ["a"], "model": "nli"}, 422, "Validation", "has 3 labels"),
    ("/rerank", {"query": "q"}, 422, "Validation", "texts is missing"),
    ("/predict", {"inputs": "one text"}, 422, "Validation", "pair of two texts"),
    ("/predict", {"inputs": [["a", "b"], ["c"]]}, 422, "Validation", "inputs[1] must be a pair"),
    ("/predict", {"inputs": []}, 422, "Validation", "inputs is empty"),
    ("/similarity", {"inputs": {"source_sentence": "a", "sentences": []}}, 422, "Validation", "empty"),
    ("/similarity", {"inputs": {"sentences": ["a"]}}, 422, "Validation", "source_sentence is missing"),
    ("/tokenize", {"inputs": []}, 422, "Validation", "inputs is empty"),
    ("/", {"inputs": []}, 422, "Validation", "inputs is empty"),
    ("/", {"query": "q", "texts": "not a list"}, 422, "Validation", "texts"),
]


@pytest.mark.parametrize(("path", "body", "status", "error_type", "words"), BAD_REQUESTS)
def test_bad_request_gets_its_status_and_tei_body(server: Server, path, body, status, error_type, words):
    reply = server.post(path, body)
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()
    assert set(error) == {"error", "error_type"}
    assert error["error_type"] == error_type
    assert words in error["error"]


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/v2/rerank", {"query": "q", "documents": []}, 422, "documents is empty"),
        ("/v2/rerank", {"query": "q", "documents": ["a"], "top_n": 0}, 422, "top_n must be"),
        ("/v2/rerank", {"query": "q", "documents": ["a"], "model": "x"}, 404, "'x' is not served"),
        ("/v1/rerank", {"query": "q", "documents": [{"txt": "a"}]}, 422, "documents"),
        ("/v2/rerank", {"query": "q", "documents": ["a"], "max_tokens_per_doc": 8}, 422, "below"),
    ],
)
def test_cohere_route_errors_have_cohere_shape(server: Server, path, body, status, words):
    reply = server.post(path, body)
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()
    assert set(error) == {"message"}
    assert words in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"input": []}, 422, "input is empty"),
        ({"input": [[5, 6], []]}, 422, "input[1] is an empty token array"),
        ({"input": [[5, 6], [7, 10**6]]}, 422, "input[1][1] is token id 1000000, outside this model's vocab"),
        ({"input": [5, -1]}, 422, "input[0][1] is token id -1"),
        ({"input": [2, 0, 3]}, 422, "input[0] holds no text, only special or padding tokens"),
        ({"input": ["a", 1]}, 422, "input"),
        ({"input": [[1, "a"]]}, 422, "input"),
        ({"input": "a", "model": "mini", "precision": "int4"}, 422, "precision"),
        ({"input": "a", "model": "text-embedding-3-small"}, 404, "not served"),
        ({"input": "a", "model": "reranker"}, 422, "needs a bi-encoder"),
        ({"input": "a", "encoding_format": "hex"}, 422, "encoding_format"),
        ({"model": "mini"}, 422, "input is missing"),
    ],
)
def test_openai_route_errors_have_openai_shape(server: Server, body, status, words):
    reply = server.post("/v1/embeddings", body)
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert words in error["message"]
    expected = "not_found_error" if status == 404 else "invalid_request_error"
    assert error["type"] == expected


def test_malformed_json_and_wrong_method_and_unknown_route(server: Server):
    reply = server.call("POST", "/embed", raw=b'{"inputs": ["a",')
    assert reply.status == 422
    assert "not valid JSON" in reply.json()["error"]
    reply = server.call("POST", "/", raw=b"[1, 2")
    assert (reply.status, reply.json()["error_type"]) == (422, "Validation")
    reply = server.call("POST", "/", body=["a list"])
    assert (reply.status, reply.json()["error"]) == (422, "the body must be a JSON object")
    reply = server.get("/embed")
    assert (reply.status, reply.json()["error_type"]) == (405, "Validation")
    reply = server.get("/no/such/route")
    assert (reply.status, reply.json()) == (404, {"error": "Not Found", "error_type": "NotFound"})


def test_payload_over_the_limit_is_413_declared_or_streamed(served_folders):
    folders = {"mini": served_folders["mini"]}
    with server_in_thread(settings_for(folders, payload_limit=1000)) as small:
        body = json.dumps({"inputs": "x" * 2000}).encode()
        reply = small.call("POST", "/embed", raw=body)
        assert reply.status == 413
        limit = "the request body is larger than this server's payload limit (1000 bytes)"
        assert reply.json()["error"] == limit
        # without a Content-Length the body is measured as it arrives
        chunked = small.call("POST", "/embed", raw=iter([body[:600], body[600:]]))  # type: ignore[arg-type]
        assert chunked.status == 413
        assert small.post("/embed", {"inputs": "x" * 900}).status == 200


def test_default_payload_limit_is_two_megabytes(server: Server):
    body = json.dumps({"inputs": ["y" * 70_000] * 30}).encode()  # 2.1 MB
    assert len(body) > 2_000_000
    assert server.call("POST", "/embed", raw=body).status == 413


def test_api_key_guards_every_route_but_health(served_folders):
    folders = {"mini": served_folders["mini"], "reranker": served_folders["reranker"]}
    with server_in_thread(settings_for(folders, api_key="s3cret")) as guarded:
        assert guarded.get("/health").status == 200
        calls = [
            ("POST", "/embed", {"inputs": "a"}),
            ("POST", "/v1/embeddings", {"input": "a"}),
            ("POST", "/v2/rerank", {"query": "q", "documents": ["a"]}),
            ("GET", "/info", None),
            ("GET", "/metrics", None),
        ]
        for method, path, body in calls:
            for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret"}):
                reply = guarded.call(method, path, body, headers=headers)
                assert reply.status == 401, (path, headers)
                assert reply.headers["www-authenticate"] == "Bearer"
            reply = guarded.call(method, path, body, headers={"authorization": "Bearer s3cret"})
            assert reply.status == 200, (path, reply.body)
        error = guarded.post("/v1/embeddings", {"input": "a"}).json()["error"]
        assert error["type"] == "authentication_error"
        assert guarded.get("/openapi.json").status == 401
        schema = guarded.get("/openapi.json", headers={"authorization": "Bearer s3cret"}).json()
        assert schema["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
        secured = {path: [op.get("security") for op in ops.values()] for path, ops in schema["paths"].items()}
        assert secured["/health"] == [None] and secured["/ping"] == [None]
        assert secured["/v1/embeddings"] == [[{"bearer": []}]]
        assert all(
            s == [{"bearer": []}] for p, ss in secured.items() if p not in ("/health", "/ping") for s in ss
        )


def test_no_cors_headers_unless_asked(server: Server, served_folders):
    origin = {"origin": "https://app.example"}
    assert "access-control-allow-origin" not in server.post("/embed", {"inputs": "a"}, headers=origin).headers
    folders = {"mini": served_folders["mini"]}
    with server_in_thread(settings_for(folders, cors_origins=("https://app.example",), api_key="k")) as cors:
        preflight = cors.call(
            "OPTIONS", "/embed", headers={**origin, "access-control-request-method": "POST"}
        )
        assert preflight.status == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        reply = cors.post("/embed", {"inputs": "a"}, headers={**origin, "authorization": "Bearer k"})
        assert reply.headers["access-control-allow-origin"] == "https://app.example"
        other = cors.post("/embed", {"inputs": "a"}, headers={"origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_no_auto_truncate_refuses_long_inputs_unless_asked(served_folders):
    folders = {"mini": served_folders["mini"]}
    with server_in_thread(settings_for(folders, auto_truncate=False)) as strict:
        reply = strict.post("/embed", {"inputs": ["short", LONG]})
        assert reply.status == 413  # as TEI answers it
        assert "inputs[1] has" in reply.json()["error"]
        assert strict.post("/embed", {"inputs": LONG, "truncate": True}).status == 200
        assert strict.post("/v1/embeddings", {"input": LONG}).status == 413
