"""Errors a request gets: a status code and a JSON body, never a stack trace.

Routes raise ``ApiError``; the body takes the shape of the API the route belongs to: TEI's
``{"error", "error_type"}`` everywhere, OpenAI's ``{"error": {"message", "type", "param", "code"}}`` on the
OpenAI routes and Cohere's ``{"message"}`` on the Cohere rerank routes, whose clients read those shapes.
``documented`` gives a path's error responses, in its shape, to the OpenAPI schema.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import Response

log = logging.getLogger("edgesbert.serve")

#: Paths whose clients expect OpenAI's error shape.
OPENAI_PATHS = ("/v1/embeddings", "/embeddings", "/v1/models")
#: Paths whose clients expect Cohere's (Jina's clients share /v1/rerank and read the message too).
COHERE_PATHS = ("/v2/rerank", "/v1/rerank")


class ErrorType(str, Enum):
    """TEI's error types."""

    UNHEALTHY = "Unhealthy"
    BACKEND = "Backend"
    OVERLOADED = "Overloaded"
    VALIDATION = "Validation"
    TOKENIZER = "Tokenizer"
    EMPTY = "Empty"
    NOT_FOUND = "NotFound"
    UNAUTHORIZED = "Unauthorized"
    PAYLOAD_TOO_LARGE = "PayloadTooLarge"


_OPENAI_TYPES = {
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "server_error",
    424: "server_error",
    500: "server_error",
}


#: What each error status means, as the OpenAPI schema documents it.
_MEANINGS = {
    401: "Missing or wrong API key (on a server started with one).",
    404: "The model the request names is not served here, or none of the kind the route needs is.",
    413: "The body is larger than the payload limit, or its tokens more than max_client_batch_tokens.",
    422: "The body is not valid JSON, or asks for something this route or model cannot do.",
    424: "The model failed on this request.",
    429: "max_concurrent_requests are already in flight; retry later.",
    503: "The models are loading, failed to load, or the server is shutting down.",
}
#: The errors a route that runs a model can answer: the guard's and its own.
MODEL_ERRORS = (401, 404, 413, 422, 424, 429, 503)
#: The errors a GET route behind the guard can answer.
GUARD_ERRORS = (401, 429, 503)


class TeiError(BaseModel):
    """TEI's error body: every route's but OpenAI's."""

    error: str
    error_type: ErrorType


class CohereError(BaseModel):
    """Cohere's error body, on the Cohere rerank routes."""

    message: str


class OpenAIErrorDetail(BaseModel):
    """What went wrong, as OpenAI's clients read it; ``code`` is TEI's error type."""

    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    """OpenAI's error body, on the OpenAI routes."""

    error: OpenAIErrorDetail


def documented(path: str, *statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of ``path`` for FastAPI's ``responses``: each status, its meaning, its body."""
    model = OpenAIError if path in OPENAI_PATHS else CohereError if path in COHERE_PATHS else TeiError
    return {status: {"model": model, "description": _MEANINGS[status]} for status in statuses}


class ApiError(Exception):
    """A request that cannot be answered: the status code, what was wrong, and TEI's error type."""

    def __init__(self, status: int, message: str, error_type: ErrorType = ErrorType.VALIDATION) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


def invalid(message: str) -> ApiError:
    """422: the request is well-formed JSON but asks for something wrong."""
    return ApiError(422, message, ErrorType.VALIDATION)


def error_body(path: str, status: int, message: str, error_type: ErrorType) -> bytes:
    """The JSON body of an error on ``path``."""
    body: dict[str, Any]
    if path in OPENAI_PATHS:
        kind = _OPENAI_TYPES.get(status, "invalid_request_error")
        body = {"error": {"message": message, "type": kind, "param": None, "code": error_type.value}}
    elif path in COHERE_PATHS:
        body = {"message": message}
    else:
        body = {"error": message, "error_type": error_type.value}
    return orjson.dumps(body)


def error_response(path: str, error: ApiError) -> Response:
    """The response that reports ``error`` on ``path``."""
    content = error_body(path, error.status, error.message, error.error_type)
    return Response(content, error.status, media_type="application/json")


def failure_response(path: str, error: Exception) -> Response:
    """424 for an error no route foresaw (a backend failure); logged with its traceback, never sent."""
    log.exception("request to %s failed", path, exc_info=error)
    message = f"the model failed on this request ({type(error).__name__}: {error})"
    return error_response(path, ApiError(424, message, ErrorType.BACKEND))


async def answer(endpoint: Callable[[Request], Awaitable[Response]], request: Request) -> Response:
    """``endpoint(request)``, or the response the app's handlers give for what it raised."""
    try:
        return await endpoint(request)
    except ApiError as e:
        return error_response(request.url.path, e)
    except Exception as e:
        return failure_response(request.url.path, e)


def install_handlers(app: FastAPI) -> None:
    """Turn every failure into a status code and a body of the route's API."""

    async def api_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        return error_response(request.url.path, error)

    async def malformed(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return error_response(request.url.path, invalid(describe_validation(error.errors())))

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        kind = ErrorType.NOT_FOUND if error.status_code == 404 else ErrorType.VALIDATION
        response = error_response(request.url.path, ApiError(error.status_code, str(error.detail), kind))
        response.headers.update(error.headers or {})
        served = app.openapi()["paths"].get(request.url.path) if error.status_code == 405 else None
        if served:  # Allow: every method the path serves (Starlette's names only the first route's)
            response.headers["Allow"] = ", ".join(sorted(method.upper() for method in served))
        return response

    async def unexpected(request: Request, error: Exception) -> Response:
        return failure_response(request.url.path, error)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, malformed)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def describe_validation(errors: Any) -> str:
    """FastAPI's validation errors as one sentence: where in the body, and what was wrong."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        if error.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'parse error')})")
        elif error.get("type") == "missing":
            parts.append(f"{where} is missing")
        else:
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(dict.fromkeys(parts)) or "the request body is invalid"
