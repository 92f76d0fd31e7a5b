"""A real server on a real port: ``edgesbert serve`` in a subprocess, or uvicorn in a thread of the test.

Models: the tiny exported bi-encoders "mini" (mean pooling, normalized) and "prompted" (prompts, no
normalization, dot product) and the cross-encoders "reranker" (one label) and "nli" (three labels).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")

#: name -> (tiny model, kind) of the models every served test sees, in this order.
SERVED = {
    "mini": ("bert-mean", "bi-encoder"),
    "prompted": ("bert-sqrt-prompts", "bi-encoder"),
    "reranker": ("bert-1", "cross-encoder"),
    "nli": ("distilbert-3", "cross-encoder"),
}


@dataclass
class Reply:
    """What a request got back."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    """A running server: its base URL, and the folders it serves by name."""

    url: str
    folders: dict[str, Path]
    process: subprocess.Popen | None = None
    log: Path | None = None

    def log_text(self) -> str:
        """What the server process wrote to stdout and stderr."""
        return self.log.read_text(errors="replace") if self.log else ""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             raw: bytes | None = None, timeout: float = 60) -> Reply:  # fmt: skip
        """One HTTP request on a fresh connection; ``body`` is sent as JSON, ``raw`` as it is."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
            sent = {"content-type": "application/json", **(headers or {})}
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, response.read(), {k.lower(): v for k, v in response.getheaders()})
        finally:
            connection.close()

    def post(self, path: str, body: Any, **kwargs: Any) -> Reply:
        return self.call("POST", path, body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.call("GET", path, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(server: Server, timeout: float = 120, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {server.log_text()[-2000:]}")
        try:
            if server.get("/health", timeout=5).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{server.url} did not become healthy in {timeout} s")


@pytest.fixture(scope="session")
def served_folders(exported) -> dict[str, Path]:
    """The exported tiny models, by the name the servers give them."""
    return {name: exported(model, kind) for name, (model, kind) in SERVED.items()}


def start_process(folders: dict[str, Path], *options: str, log: Path, wait: bool = True) -> Server:
    """``edgesbert serve NAME=FOLDER ... --port P OPTIONS`` in a subprocess (by default once healthy)."""
    port = free_port()
    command = [sys.executable, "-m", "edgesbert.cli", "serve", *(f"{n}={f}" for n, f in folders.items())]
    with log.open("wb") as output:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(
            [*command, "--port", str(port), *options], stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, "CI": "true"},
        )  # fmt: skip
    server = Server(f"http://127.0.0.1:{port}", folders, process, log)
    if wait:
        wait_until_healthy(server, process=process)
    return server


def stop_process(server: Server) -> None:
    assert server.process is not None
    if server.process.poll() is None:
        server.process.terminate()
        server.process.wait(30)


@pytest.fixture(scope="session")
def server(served_folders, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``edgesbert serve`` of the four models, with the default settings, for the whole session."""
    running = start_process(served_folders, log=tmp_path_factory.mktemp("serve") / "server.log")
    yield running
    stop_process(running)


@contextmanager
def server_in_thread(settings: Any, wait: bool = True) -> Iterator[Server]:
    """uvicorn serving ``create_app(settings)`` in a thread of this process (so tests can patch it)."""
    import uvicorn

    from edgesbert.serve import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    running = Server(f"http://127.0.0.1:{settings.port}", {m.name: m.folder for m in settings.models})
    try:
        deadline = time.monotonic() + 60
        while not uvicorn_server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the server in a thread did not start")
            time.sleep(0.01)
        if wait:
            wait_until_healthy(running)
        yield running
    finally:
        uvicorn_server.should_exit = True
        thread.join(30)


def metric(text: str, name: str, labels: str) -> float:
    """The value of the series ``name{labels}`` in a /metrics exposition (0 if it is not there yet)."""
    found = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def settings_for(folders: dict[str, Path], **kwargs: Any) -> Any:
    from edgesbert.serve import ModelSource, ServerSettings

    models = tuple(ModelSource(folder, name) for name, folder in folders.items())
    return ServerSettings(models=models, port=free_port(), **kwargs)
