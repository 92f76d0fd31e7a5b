"""What a server is started with: the model folders and the limits of ``edgesbert serve``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Where ``--api-key`` is read from when it is not given on the command line.
API_KEY_VARIABLE = "EDGESBERT_API_KEY"


@dataclass(frozen=True)
class ModelSource:
    """One model folder to serve, and the name requests choose it by (the folder's name by default)."""

    folder: Path
    name: str

    @classmethod
    def parse(cls, spec: str) -> ModelSource:
        """``FOLDER`` or ``NAME=FOLDER``."""
        name, sep, folder = spec.partition("=")
        if sep and name and not Path(spec).exists():
            return cls(Path(folder), name)
        path = Path(spec)
        return cls(path, path.resolve().name)


@dataclass(frozen=True)
class ServerSettings:
    """The models and the limits of one server; the defaults are text-embeddings-inference's."""

    models: tuple[ModelSource, ...]
    host: str = "127.0.0.1"
    port: int = 8080
    #: A batch holds at most this many tokens, counted after tokenization (a larger request runs alone).
    max_batch_tokens: int = 16384
    #: A batch merges at most this many requests; None: as many as the token budget allows.
    max_batch_requests: int | None = None
    #: The most texts (or documents) one request to a TEI or Cohere route may send (OpenAI's route: 2,048).
    max_client_batch_size: int = 32
    #: The most tokens one request may send, counted after truncation over all its inputs, before 413;
    #: the default is OpenAI's own per-request limit.
    max_client_batch_tokens: int = 300_000
    #: Requests queued or running at once before new ones get 429.
    max_concurrent_requests: int = 512
    #: The largest request body, in bytes, before 413.
    payload_limit: int = 2_000_000
    #: Truncate inputs longer than the model takes when a request does not say (TEI's --auto-truncate).
    auto_truncate: bool = True
    #: Bearer token every route but /health asks for; None: no authentication.
    api_key: str | None = None
    #: Origins allowed by CORS; empty: no CORS headers at all.
    cors_origins: tuple[str, ...] = ()
    #: Log one line per request: its id, method, route, status, duration, model, inputs and tokens.
    access_log: bool = False
    #: Runtime options, passed to edgesbert.runtime.load for every model.
    variant: str | None = None
    threads: int | None = None
    performance_hint: str | None = None
    device: str = "cpu"
    #: A text file (one text per line) whose embeddings set the int8/uint8 ranges; None: built-in sentences.
    calibration: Path | None = None

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("give at least one model folder to serve")
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"two models are named {duplicates[0]!r}; name them apart with NAME=FOLDER")
        positive = {
            "max_batch_tokens": self.max_batch_tokens,
            "max_client_batch_size": self.max_client_batch_size,
            "max_client_batch_tokens": self.max_client_batch_tokens,
            "max_concurrent_requests": self.max_concurrent_requests,
            "payload_limit": self.payload_limit,
            "max_batch_requests": self.max_batch_requests or 1,
        }
        for key, value in positive.items():
            if value < 1:
                raise ValueError(f"{key} must be at least 1, got {value}")

    @staticmethod
    def api_key_from_environment() -> str | None:
        """The API key in ``EDGESBERT_API_KEY``, if set and not empty."""
        return os.environ.get(API_KEY_VARIABLE) or None
