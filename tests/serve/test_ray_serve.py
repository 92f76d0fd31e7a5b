"""``edgesbert serve --ray``: two Ray Serve replicas of the app answer every route as the plain server does.

One local Ray instance for the module (``edgesbert serve --ray --replicas 2`` in a subprocess, half a CPU
per replica); the last test stops it with SIGTERM and checks that no process it started is left.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute

pytest.importorskip("ray.serve", reason='Ray Serve is not installed (pip install "edgesbert[ray]")')

import psutil  # a dependency of Ray's

from edgesbert.serve import ModelSource, ServerSettings, create_app
from edgesbert.serve.ray_serve import REPLICA_HEADER, RayServeOptions, application
from tests.serve.conftest import Server, free_port, wait_until_healthy

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
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: on_ray.post("/embed", body), range(32)))
    assert {r.status for r in replies} == {200}
    assert len({r.headers[REPLICA_HEADER.lower()] for r in replies}) == 2


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
    assert isinstance(application(app.args), Application)  # its args are server settings
    with pytest.raises(ValueError, match="unknown server settings"):
        application({**app.args, "max_batch": 1})
    assert {f.name for f in dataclasses.fields(ServerSettings)} >= set(app.args)


def test_sigterm_drains_and_leaves_no_ray_process(on_ray, texts):
    """Last: stops the module's server. The requests it holds when SIGTERM comes are all answered."""
    body = {"inputs": [texts[6]] * 16, "model": "mini"}  # 2,048 tokens: 8 requests fill a batch
    answered: list[float] = []

    def post(_: int) -> Any:
        reply = on_ray.post("/embed", body, timeout=120)
        answered.append(time.monotonic())
        return reply

    with ThreadPoolExecutor(64) as pool:
        sent = [pool.submit(post, i) for i in range(64)]
        wait(sent, return_when=FIRST_COMPLETED)  # the first batch is done; the others are queued or running
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
