"""``edgesbert serve --ray``: two Ray Serve replicas of the app answer every route as the plain server does.

One local Ray instance for the module (``edgesbert serve --ray --replicas 2`` in a subprocess, half a CPU
per replica); one test kills a replica under load (no request lost, a new replica comes), the last stops
the server with SIGTERM and checks that no process it started is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

pytest.importorskip("ray.serve", reason='Ray Serve is not installed (pip install "edgesbert[ray]")')

import psutil  # a dependency of Ray's

from edgesbert.serve import ModelSource, ServerSettings, create_app, ray_proxy
from edgesbert.serve.ray_proxy import LostRequests
from edgesbert.serve.ray_serve import NAME, REPLICA_HEADER, RayServeOptions, application
from tests.serve.conftest import Reply, Server, free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "examples" / "kuberay" / "rayservice.yaml"
TOL = 1e-6


def process_tree(pid: int) -> set[psutil.Process]:
    """``pid`` and every process under it: a local Ray instance's processes are its driver's children."""
    root = psutil.Process(pid)
    return {root, *root.children(recursive=True)}


def running(process: psutil.Process) -> bool:
    """Whether ``process`` (the very one: psutil checks its start time too) still runs."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def left_running(processes: set[psutil.Process], timeout: float = 30) -> list[str]:
    """The command lines of those of ``processes`` still running after up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in processes if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [f"{p.pid} {' '.join(p.cmdline())[:80]}" for p in alive if running(p)]


@pytest.fixture(scope="module")
def on_ray(served_folders, tmp_path_factory) -> Iterator[Server]:
    """``edgesbert serve`` of the four models as two Ray Serve replicas on a new local instance."""
    port = free_port()
    log = tmp_path_factory.mktemp("ray-serve") / "server.log"
    models = [f"{name}={folder}" for name, folder in served_folders.items()]
    command = [sys.executable, "-m", "edgesbert.cli", "serve", *models]
    options = ["--port", str(port), "--ray", "--replicas", "2", "--replica-cpus", "0.5"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {"CI": "true", "RAY_USAGE_STATS_ENABLED": "0"}
    with log.open("wb") as output:
        process = subprocess.Popen([*command, *options], stdout=output, stderr=subprocess.STDOUT, env=env)
    server = Server(f"http://127.0.0.1:{port}", served_folders, process, log)
    started = {psutil.Process(process.pid)}
    try:
        wait_until_healthy(server, timeout=180, process=process)
        started = process_tree(process.pid)
        server.started = started  # type: ignore[attr-defined]
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(90)
        for left in started:  # only what this server started
            if running(left):
                left.kill()


@pytest.fixture(scope="module")
def texts(stsb_sentences) -> list[str]:
    """Real sentences, the last longer than the models take (it gets truncated)."""
    return [*stsb_sentences[:6], " ".join(stsb_sentences[:12])]


def requests(t: list[str]) -> list[tuple[str, str, Any]]:
    """A request to every route of the app, in each API's own shape."""
    pairs = [[t[0], t[1]], [t[2], t[6]]]
    return [
        ("GET", "/health", None),
        ("GET", "/ping", None),
        ("GET", "/", None),
        ("GET", "/info", None),
        ("GET", "/v1/models", None),
        ("POST", "/embed", {"inputs": t, "model": "mini"}),
        ("POST", "/embed", {"inputs": t[:3], "model": "prompted", "normalize": False, "precision": "int8"}),
        ("POST", "/rerank", {"query": t[0], "texts": t[1:], "model": "reranker", "return_text": True}),
        ("POST", "/predict", {"inputs": pairs, "model": "nli"}),
        ("POST", "/similarity", {"inputs": {"source_sentence": t[0], "sentences": t[1:]}, "model": "mini"}),
        ("POST", "/tokenize", {"inputs": t[:2], "model": "prompted", "prompt_name": "passage"}),
        ("POST", "/", {"query": t[0], "texts": t[1:], "model": "reranker"}),
        ("POST", "/v1/embeddings", {"input": t, "model": "mini", "encoding_format": "base64"}),
        ("POST", "/embeddings", {"input": t[1], "model": "prompted", "dimensions": 16}),
        ("POST", "/v2/rerank", {"model": "reranker", "query": t[0], "documents": t[1:], "top_n": 3}),
        ("POST", "/v1/rerank", {"model": "reranker", "query": t[0], "documents": t[1:], "top_n": 2}),
        ("POST", "/embed", {"inputs": t, "model": "nowhere"}),  # errors too: 404 in TEI's shape
        ("POST", "/v1/embeddings", {"input": [], "model": "mini"}),  # 422 in OpenAI's
    ]


def assert_same(got: Any, expected: Any, where: str) -> None:
    """Equal JSON, floats within TOL; Cohere's per-response ``id`` aside."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected), where
        for key in expected:
            if key != "id":
                assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert isinstance(got, float) and abs(got - expected) <= TOL * max(1, abs(expected)), where
    else:
        assert got == expected, where


def test_every_route_answers_as_the_plain_server(on_ray, server, texts):
    app = create_app(ServerSettings(models=(ModelSource(Path("unused"), "unused"),)))
    api = [r for r in app.routes if isinstance(r, APIRoute)]
    assert {(method, path) for method, path, _ in requests(texts)} >= {
        (m, r.path) for r in api for m in r.methods
    }
    for method, path, body in requests(texts):
        plain, replica = server.call(method, path, body), on_ray.call(method, path, body)
        where = f"{method} {path} {body}"
        assert replica.status == plain.status, where
        assert replica.headers.get("content-type") == plain.headers.get("content-type"), where
        if plain.body:  # /health answers with an empty body
            assert_same(replica.json(), plain.json(), where)
        else:
            assert replica.body == b"", where
        assert REPLICA_HEADER.lower() in replica.headers, where
    metrics = on_ray.get("/metrics")
    assert metrics.status == 200 and b"edgesbert_" in metrics.body
    assert on_ray.get("/openapi.json").json() == server.get("/openapi.json").json()


def test_requests_are_spread_over_both_replicas(on_ray, texts):
    body = {"inputs": texts[:2], "model": "mini"}
    replicas: set[str] = set()
    deadline = time.monotonic() + 120  # on a loaded machine the second replica may still be starting
    while len(replicas) < 2 and time.monotonic() < deadline:
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda _: on_ray.post("/embed", body), range(32)))
        assert {r.status for r in replies} == {200}
        replicas |= {r.headers[REPLICA_HEADER.lower()] for r in replies}
    assert len(replicas) == 2


def test_one_request_id_per_response(on_ray):
    reply = on_ray.get("/health", headers={"x-request-id": "my-request-7"})
    assert reply.headers["x-request-id"] == "my-request-7"  # one header, not Ray's and the app's


def test_an_unreachable_cluster_is_one_line(served_folders):
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    command = [sys.executable, "-m", "edgesbert.cli", "serve", str(served_folders["mini"]), "--ray", address]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("edgesbert serve: error: cannot reach a Ray cluster at '127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_ray_options_need_ray(served_folders, capsys):
    from edgesbert.cli import main

    assert main(["serve", str(served_folders["mini"]), "--replicas", "2", "--drain-timeout", "5"]) == 1
    error = capsys.readouterr().err
    assert error == "edgesbert serve: error: --replicas, --drain-timeout only apply with --ray\n"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"replicas": 2, "max_replicas": 3}, "not both"),
        ({"replicas": 0}, "at least 1"),
        ({"min_replicas": 3, "max_replicas": 2}, "min <= max"),
        ({"target_ongoing_requests": 4}, "with --min-replicas"),
        ({"replica_cpus": -1}, "--replica-cpus"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        RayServeOptions(**options)


def test_deployment_options():
    assert RayServeOptions(replicas=3, replica_cpus=0.5).deployment_options() == {
        "ray_actor_options": {"num_cpus": 0.5},
        "graceful_shutdown_timeout_s": 60.0,
        "graceful_shutdown_wait_loop_s": 0.5,
        "num_replicas": 3,
    }
    scaling = RayServeOptions(max_replicas=4, target_ongoing_requests=8).deployment_options()
    bounds = {"min_replicas": 0, "max_replicas": 4}
    assert scaling["autoscaling_config"] == {**bounds, "target_ongoing_requests": 8}
    assert "num_replicas" not in scaling


def test_the_kuberay_manifest_builds_the_application():
    import yaml
    from ray.serve import Application
    from ray.serve.schema import ServeDeploySchema

    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["kind"] == "RayService"
    config = ServeDeploySchema.model_validate(yaml.safe_load(manifest["spec"]["serveConfigV2"]))
    (app,) = config.applications
    assert app.import_path == "edgesbert.serve.ray_serve:application"
    assert [d.name for d in app.deployments] == ["edgesbert"]
    assert config.controller_options.runtime_env["env_vars"] == {ray_proxy.VARIABLE: ray_proxy.CALLBACK}
    assert isinstance(application(app.args), Application)  # its args are server settings
    with pytest.raises(ValueError, match="unknown server settings"):
        application({**app.args, "max_batch": 1})
    assert {f.name for f in dataclasses.fields(ServerSettings)} >= set(app.args)


def replica_processes(server: Server) -> list[psutil.Process]:
    """The server's replicas: the processes Ray titles ``ray::ServeReplica:edgesbert:edgesbert``."""
    assert server.process is not None
    title = [f"ray::ServeReplica:{NAME}:{NAME}"]
    found = []
    for process in process_tree(server.process.pid):
        with contextlib.suppress(psutil.Error):
            if process.cmdline()[:1] == title:
                found.append(process)
    return found


@dataclass
class Outcome:
    """One request of a stream: when it was sent, where, with what, and its reply (or the error instead)."""

    sent: float
    path: str
    text: str
    reply: Reply | None = None
    error: str = ""

    @property
    def replica(self) -> str | None:
        return self.reply.headers.get(REPLICA_HEADER.lower()) if self.reply else None


def stream(server: Server, texts: list[str], clients: int, stop: Callable[[Outcome], bool]) -> list[Outcome]:
    """``clients`` threads each send one sentence per request, the next once the last came back, to /embed
    (even clients) or /v1/embeddings (odd ones), until ``stop`` (called with each outcome) says so."""
    outcomes: list[Outcome] = []
    stopped = threading.Event()

    def client(number: int) -> None:
        path = ("/embed", "/v1/embeddings")[number % 2]
        for i in itertools.count(number):
            text = texts[i % len(texts)]
            body = {"inputs": text, "model": "mini"} if path == "/embed" else {"input": text, "model": "mini"}
            outcome = Outcome(time.monotonic(), path, text)
            try:
                outcome.reply = server.post(path, body, timeout=30)
            except OSError as e:  # a reset connection, or no answer in 30 s
                outcome.error = repr(e)
            outcomes.append(outcome)
            if stopped.is_set() or stop(outcome):
                stopped.set()
                return

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return outcomes


def test_a_replica_killed_under_load_loses_no_request(on_ray, texts):
    """One replica's process is killed (SIGKILL) while 16 clients send one sentence per request: every request
    gets the right numbers (the proxy sends those the dead replica held again: ``ray_proxy``) or a 503 in its
    route's API shape that says to retry; no 500, reset connection or hang. Ray Serve starts a new replica,
    and two answer again. About 20 s: Serve notices the death at its next health check (every 10 s)."""
    expected = {t: on_ray.post("/embed", {"inputs": t, "model": "mini"}).json()[0] for t in texts[:6]}
    victim = replica_processes(on_ray)[0]
    lock, killed, deadline = threading.Lock(), math.inf, time.monotonic() + 60
    before: set[str] = set()  # the replicas that answered requests sent before the kill, and after it
    after: set[str] = set()

    def stop(outcome: Outcome) -> bool:
        nonlocal killed
        with lock:
            if outcome.replica:
                (before if outcome.sent < killed else after).add(outcome.replica)
            if killed == math.inf and len(before) == 2:
                victim.kill()
                killed = time.monotonic()
            now = time.monotonic()
            return (bool(after - before) and len(after) == 2) or now > min(killed + 40, deadline)

    outcomes = stream(on_ray, texts[:6], 16, stop)
    assert killed < deadline, f"the replicas that answered before the kill: {before}"
    assert [o.error for o in outcomes if o.error] == [], "connections reset or requests unanswered"
    assert sum(o.sent > killed for o in outcomes) > 16  # the stream went on while a replica was down
    for o in outcomes:
        assert o.reply is not None and o.reply.status in (200, 503), (o.path, o.reply)
        if o.reply.status == 200:
            answer = o.reply.json()
            vector = answer[0] if o.path == "/embed" else answer["data"][0]["embedding"]
            assert_same(vector, expected[o.text], o.path)
        else:
            assert o.reply.headers["content-type"] == "application/json" and "retry-after" in o.reply.headers
            error = o.reply.json()["error"]
            assert "retry the request" in (error["message"] if o.path == "/v1/embeddings" else error), error
    assert not running(victim)
    assert len(before) == 2 and after - before, f"no new replica answered in 40 s: {before}, {after}"
    assert len(after) == 2
    assert len(replica_processes(on_ray)) == 2


def test_the_proxy_sends_a_lost_request_again_then_answers_503():
    """``LostRequests`` (Ray Serve's proxy): a request that got no answer is sent again with the body already
    read; lost twice, it gets a 503 in its route's API shape; one whose client went away, nothing."""
    module, name = ray_proxy.CALLBACK.split(":")  # what Ray Serve's proxy imports
    assert [m.cls for m in getattr(importlib.import_module(module), name)()] == [LostRequests]
    calls: list[bytes] = []

    async def proxy(scope: Any, receive: Any, send: Any) -> None:  # answers nothing, as on a dead replica
        body = b""
        while (message := await receive())["type"] == "http.request":
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        calls.append(body)

    def run(path: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        scope = {"type": "http", "path": path, "headers": [(b"x-request-id", b"r-1")]}
        sent: list[dict[str, Any]] = []
        pending = iter(messages)

        async def receive() -> dict[str, Any]:
            return next(pending, {"type": "http.disconnect"})

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(LostRequests(proxy)(scope, receive, send))
        return sent

    chunks = [
        {"type": "http.request", "body": b'{"inputs": ', "more_body": True},
        {"type": "http.request", "body": b'"a"}'},
    ]
    start, body = run("/embed", chunks)
    assert calls == [b'{"inputs": "a"}'] * 2  # sent twice, the second time from what was read
    headers = dict(start["headers"])
    assert start["status"] == 503 and headers[b"retry-after"] == b"1" and headers[b"x-request-id"] == b"r-1"
    assert json.loads(body["body"]) == {"error": ray_proxy.LOST, "error_type": "Unhealthy"}
    _, body = run("/v1/embeddings", chunks)
    assert json.loads(body["body"])["error"] == {
        "message": ray_proxy.LOST,
        "type": "server_error",
        "param": None,
        "code": "Unhealthy",
    }
    calls.clear()
    assert run("/embed", [{"type": "http.disconnect"}]) == [] and len(calls) == 1


def test_sigterm_drains_and_leaves_no_ray_process(on_ray, texts):
    """Last: stops the module's server. The requests it holds when SIGTERM comes are all answered."""
    body = {"inputs": [texts[6]] * 32, "model": "mini"}  # 4,096 tokens: 4 requests fill a batch
    answered: list[float] = []

    def post(_: int) -> Any:
        reply = on_ray.post("/embed", body, timeout=120)
        answered.append(time.monotonic())
        return reply

    with ThreadPoolExecutor(64) as pool:
        sent = [pool.submit(post, i) for i in range(64)]
        # Two batches answered: by then every request has reached the proxy (one a busy machine sent late
        # would find the application gone: Ray's proxy answers it 404), and most still wait for a replica.
        while len(answered) < 8 and not all(f.done() for f in sent):
            time.sleep(0.01)
        on_ray.started |= process_tree(on_ray.process.pid)
        on_ray.process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        replies = [f.result() for f in sent]
    assert [r.status for r in replies] == [200] * len(sent)
    assert sum(at > stopped for at in answered) > 0  # some were in flight when SIGTERM came
    assert on_ray.process.wait(90) == 0, on_ray.log_text()[-3000:]
    assert "draining" in on_ray.log_text()
    assert len(on_ray.started) > 3  # the server, Ray's GCS, raylet, the replicas...
    assert left_running(on_ray.started) == [], "Ray processes outlived the server"
