"""The server's life: 503 while loading, 429 when full, a failed load exits 1, SIGTERM loses nothing."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgesbert.runtime import load
from edgesbert.serve.models import ServedModel
from tests.serve.conftest import Server, server_in_thread, settings_for, start_process


def test_503_while_loading_then_ready(served_folders, monkeypatch):
    release = threading.Event()
    original = ServedModel.__init__

    def slow_init(self, *args, **kwargs):
        assert release.wait(60)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ServedModel, "__init__", slow_init)
    with server_in_thread(settings_for({"mini": served_folders["mini"]}), wait=False) as loading:
        for method, path, body in [("GET", "/health", None), ("POST", "/embed", {"inputs": "a"})]:
            reply = loading.call(method, path, body)
            assert reply.status == 503
            assert reply.json() == {
                "error": "the models are still loading; retry in a moment",
                "error_type": "Unhealthy",
            }
        assert loading.get("/metrics").status == 200  # the metrics answer while loading
        assert "/v1/embeddings" in loading.get("/openapi.json").json()["paths"]  # and the API's description
        assert loading.get("/docs").status == 200
        release.set()
        deadline = time.monotonic() + 30
        while loading.get("/health").status != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert loading.post("/embed", {"inputs": "a"}).status == 200


def test_429_beyond_max_concurrent_requests(served_folders, monkeypatch):
    gate = threading.Event()
    original = ServedModel._embed_batch

    def held(self, texts):
        assert gate.wait(60)
        return original(self, texts)

    monkeypatch.setattr(ServedModel, "_embed_batch", held)
    settings = settings_for({"mini": served_folders["mini"]}, max_concurrent_requests=3)
    with server_in_thread(settings) as full, ThreadPoolExecutor(3) as pool:
        waiting = [pool.submit(full.post, "/embed", {"inputs": f"text {i}"}) for i in range(3)]
        deadline = time.monotonic() + 30
        while "edgesbert_requests_in_flight 3.0" not in full.get("/metrics").body.decode():
            assert time.monotonic() < deadline, "the three requests never got in"
            time.sleep(0.02)
        refused = full.post("/embed", {"inputs": "one too many"})
        assert refused.status == 429
        assert refused.json()["error_type"] == "Overloaded"
        gate.set()
        assert [f.result().status for f in waiting] == [200, 200, 200]
        assert full.post("/embed", {"inputs": "now there is room"}).status == 200


def test_a_folder_that_does_not_exist_fails_at_once(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "edgesbert.cli", "serve", str(tmp_path / "missing"), "--port", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("edgesbert serve: error:")
    assert "missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_damaged_graph_makes_the_server_exit_1(served_folders, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(served_folders["mini"], damaged)
    graph = next(damaged.glob("onnx/*.onnx"))
    graph.write_bytes(graph.read_bytes()[:1000])
    server = start_process({"damaged": damaged}, log=tmp_path / "log", wait=False)
    assert server.process is not None
    assert server.process.wait(60) == 1
    log = server.log_text()
    assert "cannot load the models" in log
    assert graph.name in log
    assert "Traceback" not in log


def test_sigterm_answers_every_accepted_request(served_folders, stsb_sentences, tmp_path):
    folders = {"mini": served_folders["mini"]}
    server = start_process(folders, "--max-batch-requests", "1", log=tmp_path / "log")
    assert server.process is not None
    requests = [stsb_sentences[i % 80 : i % 80 + 32] for i in range(120)]
    expected = load(folders["mini"]).encode(stsb_sentences[:112])
    index = {text: i for i, text in enumerate(stsb_sentences[:112])}

    def send(texts: list[str]):
        return server.post("/embed", {"inputs": texts}, timeout=120)

    with ThreadPoolExecutor(len(requests)) as pool:
        replies = [pool.submit(send, texts) for texts in requests]
        in_flight = _wait_until_all_accepted(server, len(requests))
        server.process.send_signal(signal.SIGTERM)
        results = [reply.result() for reply in replies]
    # uvicorn re-raises the signal once drained: the exit status says what stopped it (143 in a shell)
    assert server.process.wait(60) == -signal.SIGTERM
    assert in_flight > 1, "no request was in flight when SIGTERM came: the test proves nothing"
    for texts, reply in zip(requests, results, strict=True):
        assert reply.status == 200, reply.body
        np.testing.assert_allclose(np.array(reply.json()), expected[[index[t] for t in texts]], atol=1e-6)
    with pytest.raises(OSError):
        server.get("/health", timeout=5)


def _wait_until_all_accepted(server: Server, count: int) -> int:
    """Wait until every request is in the server (answered or in flight); returns how many are in flight."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        metrics = server.get("/metrics").body.decode()
        answered = re.findall(
            r'^edgesbert_requests_total\{model="\w*",route="/embed",status=.+\} (\S+)$', metrics, re.M
        )
        done = sum(float(v) for v in answered)
        in_flight = float(re.search(r"^edgesbert_requests_in_flight (\S+)$", metrics, re.MULTILINE)[1])
        if done + in_flight >= count:
            return int(in_flight)
        time.sleep(0.005)
    raise TimeoutError("the requests never all reached the server")


def test_the_process_logs_no_traceback_for_bad_requests(server: Server):
    server.post("/embed", {"inputs": "a\ud800"})
    server.post("/embed", {"inputs": []})
    assert "Traceback" not in server.log_text()
