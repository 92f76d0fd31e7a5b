"""What ``edgesbert serve --ray`` adds to Ray Serve's HTTP proxy: a request whose replica died is not lost.

When a replica dies while it holds requests (its process killed, its node gone), Ray Serve's proxy gets an
``ActorDiedError`` for each and answers none of them: uvicorn, under the proxy, then sends a bare
``500 Internal Server Error`` in text/plain, which clients take for a failure of the request itself.
``LostRequests``, the outermost middleware of the proxy, sends such a request again (the body it read,
replayed; the proxy's router has dropped the dead replica), and if that attempt is lost too answers 503 in
the route's API shape, saying to retry, with ``Retry-After``. Every route is a pure function of its body, so
sending one twice changes nothing. A request whose client went away is neither sent again nor answered.

The proxy loads it from ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH`` (``VARIABLE`` = ``CALLBACK``), which
``serve_on_ray`` sets on Serve's controller; the proxies the controller starts inherit it. Only this module
and the error bodies are imported there, not the runtime.
"""

from __future__ import annotations

import logging

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgesbert.serve.errors import ErrorType, error_body

log = logging.getLogger("edgesbert.serve")

#: The environment variable Ray Serve's proxy reads its middlewares from, and what it names.
VARIABLE = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
CALLBACK = "edgesbert.serve.ray_proxy:middlewares"
#: How many times the proxy sends a request whose replica died, in all.
ATTEMPTS = 2
LOST = "the replica answering this request stopped before it answered; retry the request"
_REQUEST_ID = b"x-request-id"  # which Ray Serve's proxy adds to the request, and the app answers with


def middlewares() -> list[Middleware]:
    """The middlewares of Ray Serve's proxy (its ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``)."""
    return [Middleware(LostRequests)]


class _Replay:
    """The request's ``receive`` for one attempt: the messages earlier attempts read, then the client's."""

    def __init__(self, read: list[Message], receive: Receive) -> None:
        self.read, self.receive, self.next = read, receive, 0

    async def __call__(self) -> Message:
        if self.next < len(self.read):
            self.next += 1
            return self.read[self.next - 1]
        message = await self.receive()
        self.read.append(message)
        self.next += 1
        return message

    @property
    def disconnected(self) -> bool:
        """Whether the client went away."""
        return any(message["type"] == "http.disconnect" for message in self.read)


class LostRequests:
    """ASGI middleware of Ray Serve's proxy: a request that got no answer is sent again, else 503 (retry)."""

    def __init__(self, app: ASGIApp, attempts: int = ATTEMPTS) -> None:
        self.app = app
        self.attempts = attempts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the request through the proxy, sending it up to ``attempts`` times; else 503."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        for attempt in range(1, self.attempts + 1):
            replay = _Replay(read, receive)
            if await self._answered(scope, replay, send) or replay.disconnected:
                return
            again = "; sending it again" if attempt < self.attempts else "; answering 503"
            log.warning(
                "request %s to %s got no answer (its replica died)%s", _id(scope), scope["path"], again
            )
        await _unavailable(scope, send)

    async def _answered(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Run the request once; whether a response started."""
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, receive, watch)
        return started


async def _unavailable(scope: Scope, send: Send) -> None:
    """503 in the route's API shape, with Retry-After and the request's id."""
    body = error_body(scope["path"], 503, LOST, ErrorType.UNHEALTHY)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
    ]
    if request_id := _id(scope):
        headers.append((_REQUEST_ID, request_id.encode()))
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _id(scope: Scope) -> str:
    """The request's id, as the proxy set it in the request's headers ("" before it did)."""
    return next((value.decode("latin-1") for name, value in scope["headers"] if name == _REQUEST_ID), "")
