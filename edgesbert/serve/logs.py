"""What the server logs: every request's id in each line about it, an access line per request, text or JSON.

``RequestLog``, the outermost middleware, gives each request an id (the client's ``X-Request-Id`` when it
sent a usable one, else a new one) and returns it in the ``X-Request-Id`` header of every response. What
the request used (model, inputs, tokens) is kept in a context variable: the models fill it in
(``note_usage``), the metrics and the access line read it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEADER = "X-Request-Id"
_HEADER_NAME = HEADER.lower().encode()  # as ASGI spells header names
#: on a response whose request held inputs longer than the model takes: how many were truncated
TRUNCATED_HEADER = "X-Truncated-Inputs"
_TRUNCATED_NAME = TRUNCATED_HEADER.lower().encode()
access_log = logging.getLogger("edgesbert.serve.access")

#: Ids a client may choose: up to 128 visible ASCII characters (nothing that could break a log line).
_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,128}")


class LogFormat(str, Enum):
    """How log lines are written: ``LEVEL: message`` text, or one JSON object per line."""

    TEXT = "text"
    JSON = "json"


@dataclass
class RequestRecord:
    """One request's id and what it used: the model that answered it, its inputs and their tokens.

    ``truncated``: how many inputs were longer than the model takes, and were cut.
    """

    id: str
    model: str = ""
    inputs: int = 0
    tokens: int = 0
    truncated: int = 0


_current: ContextVar[RequestRecord | None] = ContextVar("edgesbert_request", default=None)


def current_request() -> RequestRecord | None:
    """The record of the request being answered in this context, if any."""
    return _current.get()


def note_usage(model: str, inputs: int, tokens: int, cut: int = 0) -> None:
    """Record that the current request ran ``inputs`` texts or pairs (``tokens`` tokens) through ``model``.

    ``cut``: how many of them were truncated.
    """
    record = _current.get()
    if record is not None:
        record.model = model
        record.inputs += inputs
        record.tokens += tokens
        record.truncated += cut


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-Id`` if it is usable, else a new random id."""
    for name, value in headers:
        if name == _HEADER_NAME:
            text = value.decode("latin-1")
            if _CLIENT_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex


#: Told of every answered request: its route, status, seconds and record (the metrics).
Answered = Callable[[str, int, float, RequestRecord], None]


class RequestLog:
    """ASGI middleware: a request id on every response (and log line), an access line per request if asked.

    The one place a request is timed and its status seen: ``on_answered`` (the metrics) hears of each.
    """

    def __init__(
        self, app: ASGIApp, *, routes: frozenset[str], enabled: bool, on_answered: Answered | None = None
    ) -> None:
        """Wrap ``app``; ``routes`` are the paths lines and metrics name (others are "other")."""
        self.app = app
        self.routes = routes
        self.enabled = enabled
        self.on_answered = on_answered

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request with its id in the headers; log it once answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        record = RequestRecord(request_id(scope["headers"]))
        header = (_HEADER_NAME, record.id.encode("ascii"))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [header]
                if record.truncated:  # nothing cut without a word: how many inputs were
                    extra.append((_TRUNCATED_NAME, str(record.truncated).encode()))
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        reset = _current.set(record)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = scope["path"] if scope["path"] in self.routes else "other"
            if self.on_answered is not None:
                self.on_answered(route, status, seconds, record)
            if self.enabled:
                self._log(scope, route, record, status, seconds)
            _current.reset(reset)

    def _log(self, scope: Scope, route: str, record: RequestRecord, status: int, seconds: float) -> None:
        path = scope["path"]
        client = scope.get("client")
        fields = {
            "method": scope["method"],
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "model": record.model or None,
            "inputs": record.inputs,
            "tokens": record.tokens,
            "truncated": record.truncated,
            "client": client[0] if client else None,
        }
        access_log.info(
            '%s "%s %s" %d %.1f ms model=%s inputs=%d tokens=%d',
            fields["client"] or "-", fields["method"], path, status, seconds * 1000,
            record.model or "-", record.inputs, record.tokens, extra={"access": fields},
        )  # fmt: skip


class RequestIdFilter(logging.Filter):
    """Puts the id of the request being answered (if any) on each record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record; add the id unless the record has one."""
        if getattr(record, "request_id", None) is None:
            current = _current.get()
            record.request_id = current.id if current is not None else None
        return True


class TextFormatter(logging.Formatter):
    """``LEVEL: message request_id=...`` (the id only on lines about a request)."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line before any traceback, with the request id at its end."""
        line = super().formatMessage(record)
        rid = getattr(record, "request_id", None)
        return f"{line} request_id={rid}" if rid else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and an access line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        created = datetime.fromtimestamp(record.created, timezone.utc)
        entry: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        entry.update(getattr(record, "access", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(log_format: LogFormat, level: str = "info") -> None:
    """Send every log line (uvicorn's too, if it propagates) to stderr in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format is LogFormat.JSON else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
