"""The runtime works, with the same numbers, where torch, transformers, onnx and the exporter cannot load.

A fresh interpreter gets an import hook that refuses those packages, then loads exported tiny models and
runs them; its results must equal the same calls run here, and it must never have tried such an import.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from edgesbert.runtime import BiEncoder, CrossEncoder, load

BLOCKED = (
    "torch",
    "transformers",
    "optimum",
    "onnx",
    "sentence_transformers",
    "edgesbert.exporters",
    "edgesbert.reference",
    "edgesbert.training",
)

#: Installed first in the child: refuses BLOCKED and their submodules, and records every attempt.
BLOCKER = f"""
import importlib.abc, json, sys

BLOCKED = {BLOCKED!r}
attempts = []


def is_blocked(name):
    return any(name == b or name.startswith(b + ".") for b in BLOCKED)


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if is_blocked(name):
            attempts.append(name)
            raise ImportError(f"import of {{name}} blocked by test_runtime_isolation")
        return None


sys.meta_path.insert(0, Blocker())
preloaded = sorted(m for m in sys.modules if is_blocked(m))
"""

RUN_MODELS = """
spec = json.loads(sys.argv[1])
from edgesbert.runtime import load

results = {}
for folder in spec["bi"]:
    model = load(folder)
    embeddings = model.encode(spec["texts"])
    normalized = model.encode(spec["texts"], normalize_embeddings=True)
    results[folder] = {
        "class": type(model).__name__,
        "encode": embeddings.tolist(),
        "normalized": normalized.tolist(),
        "similarity": model.similarity(embeddings, embeddings).tolist(),
        "pairwise": model.similarity_pairwise(embeddings, embeddings[::-1]).tolist(),
    }
for folder in spec["cross"]:
    model = load(folder)
    pairs = [(spec["query"], doc) for doc in spec["documents"]]
    result = {"class": type(model).__name__, "predict": model.predict(pairs).tolist()}
    if model.num_labels == 1:
        result["rank"] = [[r.corpus_id, r.score] for r in model.rank(spec["query"], spec["documents"])]
    else:
        result["softmax"] = model.predict(pairs, apply_softmax=True).tolist()
        try:
            model.rank(spec["query"], spec["documents"])
        except ValueError as e:
            result["rank_error"] = str(e)
    results[folder] = result
print(json.dumps({
    "results": results,
    "preloaded": preloaded,
    "attempts": attempts,
    "loaded": sorted(m for m in sys.modules if is_blocked(m)),
    "runtime_loaded": "edgesbert.runtime" in sys.modules,
}))
"""

TEXTS = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.", "", "x"]
QUERY = "How many people live in Berlin?"
DOCUMENTS = [
    "Berlin has a population of 3,520,031 registered inhabitants.",
    "Berlin is well known for its museums.",
    "In 2013 around 600,000 people were registered in Berlin.",
    "The urban area of Berlin had about 4.1 million people in 2014.",
    "short",
]
BI_ENCODERS = ["bert-mean", "distilbert-cls-dense"]
CROSS_ENCODERS = ["bert-1", "distilbert-3"]


def run_blocked(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter after the blocker is installed."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + script, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_blocked_package_is_installed_here():
    # Otherwise blocking them would prove nothing.
    for name in ("torch", "transformers", "onnx", "sentence_transformers", "edgesbert.exporters"):
        assert importlib.util.find_spec(name) is not None, name


def test_the_blocker_refuses_what_it_should_and_nothing_else():
    result = run_blocked("import torch")
    assert result.returncode != 0
    assert "ImportError: import of torch blocked by test_runtime_isolation" in result.stderr

    probe = """
outcome = {}
for name in [*BLOCKED, "torch.nn", "onnx.helper", "transformers.models.bert", "onnxruntime", "tokenizers"]:
    try:
        __import__(name)
        outcome[name] = "imported"
    except ImportError:
        outcome[name] = "blocked"
print(json.dumps(outcome))
"""
    result = run_blocked(probe)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome.pop("onnxruntime") == "imported" and outcome.pop("tokenizers") == "imported"
    assert outcome == dict.fromkeys(outcome, "blocked")
    assert len(outcome) == len(BLOCKED) + 3


@pytest.fixture(scope="module")
def folders(exported) -> dict[str, list[str]]:
    return {
        "bi": [str(exported(name)) for name in BI_ENCODERS],
        "cross": [str(exported(name, "cross-encoder")) for name in CROSS_ENCODERS],
    }


def test_runtime_runs_without_the_blocked_packages_and_gives_the_same_numbers(folders):
    spec = {**folders, "texts": TEXTS, "query": QUERY, "documents": DOCUMENTS}
    result = run_blocked(RUN_MODELS, json.dumps(spec))
    assert result.returncode == 0, result.stderr
    child = json.loads(result.stdout)

    assert child["runtime_loaded"]
    assert child["preloaded"] == []
    assert child["attempts"] == []  # not even a guarded `try: import torch`
    assert child["loaded"] == []

    results = child["results"]
    assert sorted(results) == sorted(folders["bi"] + folders["cross"])
    for folder in folders["bi"]:
        model = load(folder)
        assert isinstance(model, BiEncoder) and results[folder]["class"] == "BiEncoder"
        embeddings = model.encode(TEXTS)
        got = {key: np.array(value) for key, value in results[folder].items() if key != "class"}
        assert got["encode"].shape == embeddings.shape
        np.testing.assert_allclose(got["encode"], embeddings, atol=1e-5)
        np.testing.assert_allclose(
            got["normalized"], model.encode(TEXTS, normalize_embeddings=True), atol=1e-5
        )
        np.testing.assert_allclose(got["similarity"], model.similarity(embeddings, embeddings), atol=1e-5)
        np.testing.assert_allclose(
            got["pairwise"], model.similarity_pairwise(embeddings, embeddings[::-1]), atol=1e-5
        )

    for folder in folders["cross"]:
        model = load(folder)
        assert isinstance(model, CrossEncoder) and results[folder]["class"] == "CrossEncoder"
        pairs = [(QUERY, doc) for doc in DOCUMENTS]
        scores = model.predict(pairs)
        assert np.array(results[folder]["predict"]).shape == scores.shape
        np.testing.assert_allclose(results[folder]["predict"], scores, atol=1e-5)
        if model.num_labels == 1:
            ranking = model.rank(QUERY, DOCUMENTS)
            assert [corpus_id for corpus_id, _ in results[folder]["rank"]] == [r.corpus_id for r in ranking]
            np.testing.assert_allclose(
                [score for _, score in results[folder]["rank"]], [r.score for r in ranking], atol=1e-5
            )
        else:
            assert scores.shape == (len(DOCUMENTS), 3)
            with pytest.raises(ValueError, match="one output label") as error:
                model.rank(QUERY, DOCUMENTS)
            assert results[folder]["rank_error"] == str(error.value)
            np.testing.assert_allclose(
                results[folder]["softmax"], model.predict(pairs, apply_softmax=True), atol=1e-5
            )
    assert {len(results[f]["rank"]) for f in folders["cross"] if "rank" in results[f]} == {len(DOCUMENTS)}


SERVE = """
import http.client, socket, threading, time
from pathlib import Path

spec = json.loads(sys.argv[1])
import uvicorn
from edgesbert.serve import ModelSource, ServerSettings, create_app

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
models = (ModelSource(Path(spec["bi"][0]), "bi"), ModelSource(Path(spec["cross"][0]), "ce"))
app = create_app(ServerSettings(models=models, port=port))
server = uvicorn.Server(uvicorn.Config(app, port=port, access_log=False, log_level="warning"))
threading.Thread(target=server.run, daemon=True).start()


def call(method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(method, path, json.dumps(body) if body else None, {"content-type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


deadline = time.monotonic() + 60
while True:
    try:
        if call("GET", "/health")[0] == 200:
            break
    except OSError:
        pass
    assert time.monotonic() < deadline
    time.sleep(0.05)
embed = json.loads(call("POST", "/embed", {"inputs": spec["texts"]})[1])
rerank = json.loads(call("POST", "/rerank", {"query": spec["query"], "texts": spec["documents"]})[1])
server.should_exit = True
print(json.dumps({"embed": embed, "rerank": rerank, "attempts": attempts,
                  "loaded": sorted(m for m in sys.modules if is_blocked(m))}))
"""


def test_the_server_runs_without_the_blocked_packages(folders):
    pytest.importorskip("fastapi")
    texts = [t for t in TEXTS if t]
    spec = {**folders, "texts": texts, "query": QUERY, "documents": DOCUMENTS}
    result = run_blocked(SERVE, json.dumps(spec))
    assert result.returncode == 0, result.stderr
    child = json.loads(result.stdout)
    assert child["attempts"] == [] and child["loaded"] == []
    model = load(folders["bi"][0])
    np.testing.assert_allclose(child["embed"], model.encode(texts, normalize_embeddings=True), atol=1e-6)
    ranking = load(folders["cross"][0]).rank(QUERY, DOCUMENTS)
    assert [r["index"] for r in child["rerank"]] == [r.corpus_id for r in ranking]
