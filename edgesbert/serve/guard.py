"""What every request passes before a route: health, authentication, size and concurrency limits, metrics.

A plain ASGI middleware (no per-request task or copy beyond the body it must measure).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from edgesbert.serve.errors import ApiError, ErrorType, answer, error_body
from edgesbert.serve.state import ServerState

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]

#: Routes anyone may call, also while loading: the probes.
OPEN_PATHS = frozenset({"/health", "/ping"})
#: The API's description, answered while the models load too (behind the API key, as every route).
DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
#: Routes that do not count towards max_concurrent_requests.
UNCOUNTED_PATHS = OPEN_PATHS | DOC_PATHS | {"/metrics"}


class Guard:
    """ASGI middleware that refuses what no route should see, and counts the requests in flight.

    503 unless ready (the probes, /metrics and the API's description answer while loading), 401 without
    the API key, 413 over the payload limit, 429 when ``max_concurrent_requests`` are in flight.
    """

    def __init__(self, app: ASGIApp, state: ServerState, direct: Mapping[str, Endpoint]) -> None:
        """Wrap ``app``.

        ``direct``: the POST endpoints (``endpoint(request) -> Response``) by path. The guard calls them
        itself, skipping FastAPI's per-request stack, which on a one-sentence request costs more CPU than
        the route; FastAPI serves everything else (GET routes, the docs, unknown paths).
        """
        self.app = app
        self.state = state
        self.direct = direct
        key = state.settings.api_key
        self._expected = f"Bearer {key}".encode() if key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request, or refuse it with the reason."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        state = self.state
        counted = path not in UNCOUNTED_PATHS  # probes take no place, are never refused for want of one
        if counted:
            state.in_flight += 1
            state.metrics.in_flight.inc()
        try:
            refusal, body = await self._check(scope, receive, path)
            if refusal is not None:
                await _reply(send, path, refusal)
            else:
                downstream = _replay(body, receive) if body is not None else receive
                endpoint = self.direct.get(path) if scope["method"] == "POST" else None
                if endpoint is None:
                    await self.app(scope, downstream, send)
                else:
                    response = await answer(endpoint, Request(scope, downstream))
                    await response(scope, downstream, send)
        finally:
            if counted:
                state.in_flight -= 1
                state.metrics.in_flight.dec()

    async def _check(self, scope: Scope, receive: Receive, path: str) -> tuple[ApiError | None, bytes | None]:
        """The reason to refuse the request, if any, and its body (read here to measure it)."""
        state = self.state
        if path in OPEN_PATHS:
            return None, None
        if self._expected is not None and not self._authorized(scope):
            return ApiError(401, "missing or wrong API key: send Authorization: Bearer <key>",
                            ErrorType.UNAUTHORIZED), None  # fmt: skip
        if path == "/metrics" or path in DOC_PATHS:
            return None, None
        refusal = state.refusal()
        if refusal is not None:
            return refusal, None
        if path not in UNCOUNTED_PATHS and state.in_flight > state.settings.max_concurrent_requests:
            return ApiError(
                429, f"{state.settings.max_concurrent_requests} requests are already in flight; retry later",
                ErrorType.OVERLOADED,
            ), None  # fmt: skip
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return None, None
        return await _read_body(scope, receive, state.settings.payload_limit)

    def _authorized(self, scope: Scope) -> bool:
        assert self._expected is not None
        for name, value in scope["headers"]:
            if name == b"authorization":
                return hmac.compare_digest(value, self._expected)
        return False


async def _read_body(scope: Scope, receive: Receive, limit: int) -> tuple[ApiError | None, bytes | None]:
    too_large = ApiError(413, f"the request body is larger than this server's payload limit ({limit} bytes)",
                         ErrorType.PAYLOAD_TOO_LARGE)  # fmt: skip
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return too_large, None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return too_large, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return None, b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body already read, then passes on what the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reply(send: Send, path: str, error: ApiError) -> None:
    body = error_body(path, error.status, error.message, error.error_type)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if error.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
