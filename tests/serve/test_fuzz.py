"""Every route fuzzed from the server's own OpenAPI schema (schemathesis), over a real socket.

Bodies the schema allows and bodies it does not, for every operation: no 5xx, every status code, content
type and response body as the schema documents them, and every error body in the shape of its route's API
(OpenAI's on the OpenAI routes, Cohere's on the Cohere routes, TEI's elsewhere). Bounded and derandomized: the
same cases on every run, in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from fastapi.routing import APIRoute  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from edgesbert.serve.routes import ROUTERS  # noqa: E402
from tests.serve.conftest import Server, server_in_thread, settings_for  # noqa: E402

#: Every operation the app serves, as (method, path).
OPERATIONS = sorted(
    (method, route.path)
    for router in ROUTERS
    for route in router.routes
    if isinstance(route, APIRoute)
    for method in route.methods
)
PATHS = sorted({path for _, path in OPERATIONS})
#: Paths whose errors are OpenAI's ``{"error": {"message", "type", "param", "code"}}``; TEI's elsewhere.
OPENAI_PATHS = {"/v1/embeddings", "/embeddings", "/v1/models"}
#: Paths whose errors are Cohere's ``{"message"}``.
COHERE_PATHS = {"/v2/rerank", "/v1/rerank"}
#: TEI's error types, which the ``error_type`` of a TEI-shaped error body names.
TEI_ERROR_TYPES = {
    "Unhealthy", "Backend", "Overloaded", "Validation", "Tokenizer", "Empty", "NotFound", "Unauthorized",
    "PayloadTooLarge",
}  # fmt: skip
#: Cases per operation and mode: enough to reach every route's model and its refusals, in seconds.
FUZZED = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def assert_api_error(path: str, body: Any) -> None:
    """``body`` is an error body in the shape of the API ``path`` belongs to."""
    if path in OPENAI_PATHS:
        error = body.get("error") if isinstance(body, dict) else None
        assert isinstance(error, dict), f"{path}: not an OpenAI error body: {body!r}"
        assert isinstance(error.get("message"), str) and error["message"], f"{path}: no message: {body!r}"
        assert isinstance(error.get("type"), str), f"{path}: no type: {body!r}"
        assert {"param", "code"} <= error.keys(), f"{path}: no param or code: {body!r}"
    elif path in COHERE_PATHS:
        assert isinstance(body, dict) and set(body) == {"message"}, f"{path}: not Cohere's: {body!r}"
        assert isinstance(body["message"], str) and body["message"], f"{path}: no message: {body!r}"
    else:
        assert isinstance(body, dict) and set(body) == {"error", "error_type"}, f"{path}: not TEI's: {body!r}"
        assert isinstance(body["error"], str) and body["error"], f"{path}: no message: {body!r}"
        assert body["error_type"] in TEI_ERROR_TYPES, f"{path}: unknown error_type: {body!r}"


def error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schemathesis check: an error body has the shape of its route's API."""
    if response.status_code < 400:
        return None
    assert_api_error(case.operation.path, json.loads(response.content))
    return True


def no_unforeseen_failure(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schemathesis check: no 424, which the app answers for an exception no route foresaw.

    424 is documented (a model can fail), so the other checks pass it; the tiny models never fail, so here
    it can only be a bug in a route.
    """
    assert response.status_code != 424, f"{case.operation.path}: 424 {response.content[:500]!r}"
    return True


CHECKS = [
    not_a_server_error,
    no_unforeseen_failure,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_shape,
]


@pytest.fixture(scope="module")
def served(exported) -> Iterator[Server]:
    """``create_app`` on uvicorn, serving a tiny bi-encoder and a tiny cross-encoder, its models loaded."""
    folders = {"mini": exported("bert-mean", "bi-encoder"), "reranker": exported("bert-1", "cross-encoder")}
    with server_in_thread(settings_for(folders)) as server:
        yield server


@pytest.fixture(scope="module")
def schema(served: Server) -> Any:
    """The server's own OpenAPI schema, as schemathesis reads it from GET /openapi.json."""
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


def test_the_schema_describes_every_route(schema) -> None:
    documented = sorted((op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations())
    assert documented == OPERATIONS


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_route_answers_as_its_schema_says(schema, method: str, path: str, mode: GenerationMode) -> None:
    operation = schema[path][method]
    if mode is GenerationMode.NEGATIVE and not operation.body:
        pytest.skip("no body and no parameters: nothing to send that the schema does not allow")

    @FUZZED
    @given(case=operation.as_strategy(mode))
    def answers(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    answers()


@pytest.mark.parametrize("path", PATHS)
def test_an_undeclared_method_gets_405_with_allow(served: Server, path: str) -> None:
    """Found by schemathesis' coverage phase: the 405 lost Starlette's Allow header (RFC 9110 requires it)."""
    reply = served.call("DELETE", path)
    assert reply.status == 405
    assert set(reply.headers["allow"].split(", ")) == {m for m, p in OPERATIONS if p == path}
    assert_api_error(path, reply.json())
