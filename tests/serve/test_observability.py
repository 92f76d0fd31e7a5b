"""What operators see: request ids in responses and logs, JSON access logs, metrics per model and route."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest

from edgesbert.runtime import load
from edgesbert.serve.logs import JsonFormatter, RequestIdFilter, TextFormatter
from edgesbert.serve.models import ServedModel
from tests.serve.conftest import Server, metric, server_in_thread, settings_for, start_process, stop_process

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def runtime(served_folders) -> dict[str, Any]:
    """The served models, loaded in this process."""
    return {name: load(folder) for name, folder in served_folders.items()}


# --- X-Request-Id ----------------------------------------------------------------------------------------


def test_every_response_carries_a_request_id(server: Server):
    replies = [
        server.get("/health"),
        server.get("/metrics"),
        server.get("/info"),
        server.post("/embed", {"inputs": "a"}),
        server.post("/embed", {"inputs": []}),  # 422
        server.post("/v1/embeddings", {"input": "a", "model": "nope"}),  # 404
        server.get("/no/such/route"),
    ]
    ids = [reply.headers["x-request-id"] for reply in replies]
    assert all(GENERATED.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_client_request_id_is_echoed(server: Server):
    for path, body in [("/embed", {"inputs": "a"}), ("/v1/embeddings", {"input": []}), ("/nope", None)]:
        reply = server.call("POST", path, body, headers={"x-request-id": "client-7f3a.1:b"})
        assert reply.headers["x-request-id"] == "client-7f3a.1:b", path
    for unusable in ["has a space", "x" * 129, "caf\u00e9"]:  # not visible ASCII, or too long: a new id
        reply = server.call("GET", "/health", headers={"x-request-id": unusable.encode().decode("latin-1")})
        assert GENERATED.fullmatch(reply.headers["x-request-id"]), unusable


def test_refusals_and_preflights_carry_the_id(served_folders):
    folders = {"mini": served_folders["mini"]}
    origin = {"origin": "https://app.example"}
    with server_in_thread(
        settings_for(folders, api_key="k", cors_origins=("https://app.example",))
    ) as guarded:
        refused = guarded.post("/embed", {"inputs": "a"}, headers={"x-request-id": "no-key"})
        assert (refused.status, refused.headers["x-request-id"]) == (401, "no-key")
        preflight = guarded.call(
            "OPTIONS", "/embed", headers={**origin, "access-control-request-method": "POST"}
        )
        assert preflight.status == 200 and GENERATED.fullmatch(preflight.headers["x-request-id"])
        answered = guarded.post("/embed", {"inputs": "a"}, headers={**origin, "authorization": "Bearer k"})
        assert "x-request-id" in answered.headers["access-control-expose-headers"].lower()


# --- logs ------------------------------------------------------------------------------------------------


def test_json_access_logs_carry_the_request_id(served_folders, runtime, stsb_sentences, tmp_path):
    folders = {"mini": served_folders["mini"], "reranker": served_folders["reranker"]}
    server = start_process(
        folders, "--log-format", "json", "--max-client-batch-tokens", "60", log=tmp_path / "log"
    )
    try:
        texts = stsb_sentences[:2]
        answered = server.post("/v1/embeddings", {"input": texts}, headers={"x-request-id": "json-ok"})
        refused = server.post("/embed", {"inputs": stsb_sentences[:10]}, headers={"x-request-id": "json-413"})
        health = server.get("/health")
    finally:
        stop_process(server)
    assert (answered.status, refused.status) == (200, 413)
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.strip()]  # every line
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's lines too
    access = {line["request_id"]: line for line in lines if line["logger"] == "edgesbert.serve.access"}
    tokens = answered.json()["usage"]["total_tokens"]
    line = access["json-ok"]
    assert {k: line[k] for k in ("method", "route", "status", "model", "inputs", "tokens")} == {
        "method": "POST", "route": "/v1/embeddings", "status": 200, "model": "mini", "inputs": 2,
        "tokens": tokens,
    }  # fmt: skip
    assert line["level"] == "INFO" and line["duration_ms"] > 0 and line["client"] == "127.0.0.1"
    refusal = access["json-413"]
    assert (refusal["route"], refusal["status"], refusal["model"]) == ("/embed", 413, "mini")
    assert refusal["tokens"] == sum(
        min(c, 64) for c in runtime["mini"].tokenizer.token_counts(stsb_sentences[:10])
    )
    assert access[health.headers["x-request-id"]]["route"] == "/health"


def test_a_failure_is_logged_with_its_request_id(served_folders, monkeypatch):
    def broken(self, texts):
        raise RuntimeError("the graph fell over")

    monkeypatch.setattr(ServedModel, "_embed_batch", broken)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("edgesbert.serve")
    logger.addHandler(handler)
    try:
        with server_in_thread(settings_for({"mini": served_folders["mini"]})) as failing:
            reply = failing.post("/embed", {"inputs": "a"}, headers={"x-request-id": "fails-1"})
    finally:
        logger.removeHandler(handler)
    assert reply.status == 424
    [line] = [json.loads(s) for s in stream.getvalue().splitlines() if "fails-1" in s]
    assert line["message"] == "request to /embed failed" and line["level"] == "ERROR"
    assert "RuntimeError: the graph fell over" in line["exception"]


def test_text_lines_end_with_the_request_id():
    record = logging.LogRecord("edgesbert.serve", logging.INFO, __file__, 1, "answered %s", ("it",), None)
    formatter = TextFormatter()
    assert formatter.format(record) == "INFO: answered it"
    record.request_id = "abc"
    assert formatter.format(record) == "INFO: answered it request_id=abc"


# --- metrics ---------------------------------------------------------------------------------------------


def test_metrics_per_model_and_route(server: Server, stsb_sentences):
    texts = stsb_sentences[:3]
    before = server.get("/metrics").body.decode()
    assert server.post("/embed", {"inputs": texts, "model": "mini"}).status == 200
    usage = server.post("/v1/embeddings", {"input": texts, "model": "prompted"}).json()["usage"]
    assert (
        server.post("/v2/rerank", {"query": texts[0], "documents": texts[1:], "model": "reranker"}).status
        == 200
    )
    assert server.post("/embed", {"inputs": "a", "model": "not-served"}).status == 404
    after = server.get("/metrics").body.decode()
    steps = [
        ("edgesbert_requests_total", 'model="mini",route="/embed",status="200"', 1),
        ("edgesbert_requests_total", 'model="prompted",route="/v1/embeddings",status="200"', 1),
        ("edgesbert_requests_total", 'model="reranker",route="/v2/rerank",status="200"', 1),
        ("edgesbert_requests_total", 'model="",route="/embed",status="404"', 1),  # never the client's name
        ("edgesbert_request_duration_seconds_count", 'model="reranker",route="/v2/rerank"', 1),
        ("edgesbert_request_inputs_total", 'model="prompted",route="/v1/embeddings"', 3),
        ("edgesbert_request_tokens_total", 'model="prompted",route="/v1/embeddings"', usage["total_tokens"]),
        ("edgesbert_request_inputs_total", 'model="reranker",route="/v2/rerank"', 2),
    ]
    for name, labels, step in steps:
        assert metric(after, name, labels) == metric(before, name, labels) + step, (name, labels)
    assert 'model="not-served"' not in after


def test_truncated_inputs_are_counted_and_named_in_a_header(server: Server):
    long = "word " * 400  # far over the tiny model's 64 tokens
    labels = 'model="mini",route="/embed"'
    before = metric(server.get("/metrics").body.decode(), "edgesbert_truncated_inputs_total", labels)
    reply = server.post("/embed", {"inputs": [long, "short", long], "model": "mini"})
    assert reply.status == 200 and reply.headers["x-truncated-inputs"] == "2"
    assert "x-truncated-inputs" not in server.post("/embed", {"inputs": "short", "model": "mini"}).headers
    after = metric(server.get("/metrics").body.decode(), "edgesbert_truncated_inputs_total", labels)
    assert after == before + 2
