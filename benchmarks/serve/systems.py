"""The servers benchmarks.serve measures, as command lines (``Server``), their names for ``--only``, and
infinity-emb's environment and model folder.

- ``edgesbert``: `edgesbert serve` of the fastest packed int8 variant, every setting at its default (its
  inference threads: every core);
- ``edgesbert-padded``: the same of the fastest padded int8 variant, when that is another one;
- ``edgesbert-ray``: the ``edgesbert`` folder and variant on Ray Serve (issue 30): ``--ray`` on a new local
  instance, two replicas of one CPU and one inference thread each, behind Ray Serve's proxy;
- ``infinity-emb``: infinity-emb's optimum engine on the ONNX int8 graph, in its own environment;
- ``fastapi-st``: what users write by hand, sentence-transformers behind FastAPI, run with uvicorn.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common.paths import ROOT
from benchmarks.common.timing import log
from benchmarks.serve.load import NAME, WORK, Server, sh
from edgesbert.runtime import Manifest

NAMES = ("edgesbert", "edgesbert-padded", "edgesbert-ray", "infinity-emb", "fastapi-st")
INFINITY_VENV = ROOT / ".venv-infinity"
INFINITY_PACKAGES = ["infinity-emb[server,optimum,torch]==0.0.78", "torch==2.13.0"]  # torch: the CPU wheel
INFINITY_ARGS = (
    "v2 --model-id . --engine optimum --device cpu --host 127.0.0.1 --pooling-method mean "
    "--onnx-disable-optimize --no-vector-disk-cache --log-level warning --served-model-name " + NAME
).split()
#: edgesbert's options: many concurrent clients, so single-threaded runs side by side (the README's advice;
#: at 64 clients 1.1x the latency hint's one run on both cores, at 1 client 0.6x).
SERVE_OPTIONS = ["--performance-hint", "throughput"]
#: edgesbert-ray's options: two single-threaded replicas of one CPU each (both cores of a 2-core machine).
RAY_OPTIONS = ["--ray", "--replicas", "2", "--replica-cpus", "1", "--threads", "1"]

ST_APP = """import os

from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer

model = SentenceTransformer(os.environ["ST_MODEL"], device="cpu")
app = FastAPI()


class Embed(BaseModel):
    inputs: str | list[str]


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/embed")
def embed(request: Embed) -> list[list[float]]:
    texts = [request.inputs] if isinstance(request.inputs, str) else request.inputs
    return model.encode(texts).tolist()
"""


def systems(
    serve: list[str], served: dict[str, Any], padded: dict[str, Any], infinity: Path | None, source: Path
) -> list[Server]:
    """Every system, in the order they run (``infinity``: its model folder, None where it is not run)."""
    edgesbert = [*serve, served["folder"], "--variant", served["variant"]]  # every other setting: default
    found = [Server("edgesbert", [*edgesbert, *SERVE_OPTIONS], "/embed")]
    if padded is not served:
        argv = [*serve, padded["folder"], "--variant", padded["variant"], *SERVE_OPTIONS]
        found.append(Server("edgesbert-padded", argv, "/embed"))
    local = {"RAY_ADDRESS": "", "RAY_USAGE_STATS_ENABLED": "0"}  # a new local instance, never a cluster
    found.append(Server("edgesbert-ray", [*edgesbert, *RAY_OPTIONS], "/embed", env=local))
    if infinity is not None:
        argv = [str(INFINITY_VENV / "bin" / "infinity_emb"), *INFINITY_ARGS]
        quiet = {"DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0", "HF_HUB_OFFLINE": "1"}
        found.append(Server("infinity-emb", argv, "/embeddings", openai=True, cwd=infinity, env=quiet))
    (WORK / "st_app.py").write_text(ST_APP)
    uvicorn = (
        f"{ROOT}/.venv/bin/python -m uvicorn st_app:app --app-dir {WORK} --host 127.0.0.1 --no-access-log"
    )
    env = {"ST_MODEL": str(source), "HF_HUB_OFFLINE": "1"}
    return [*found, Server("fastapi-st", uvicorn.split(), "/embed", env=env)]


# --- infinity-emb: its environment and its model folder ------------------------------------------------


def infinity(figures: dict[str, Any], source: Path) -> Path | None:
    """infinity-emb's model folder: the fastest padded ONNX int8 graph, cut; None if pip install failed."""
    onnx = max(
        (r for r in figures["offline"] if "openvino" not in r["variant"] and "packed" not in r["variant"]),
        key=lambda r: r["sent_s"],
    )
    figures["infinity_error"] = infinity_environment()
    graph = ROOT / onnx["folder"] / Manifest.load(ROOT / onnx["folder"]).variant(onnx["variant"]).file
    figures["infinity_graph"] = str(graph.relative_to(ROOT))
    return None if figures["infinity_error"] else infinity_folder(graph, source)


def infinity_environment() -> str | None:
    """Build .venv-infinity if missing; the pip error if it cannot be built."""
    if (INFINITY_VENV / "bin" / "infinity_emb").is_file():
        return None
    log(f"serve: building {INFINITY_VENV.name}: pip install {' '.join(INFINITY_PACKAGES)}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(INFINITY_VENV)], check=True)
    pip = sh([str(INFINITY_VENV / "bin" / "pip"), "install", "-q", *INFINITY_PACKAGES])
    return None if pip.returncode == 0 else pip.stderr[-3000:]


def infinity_folder(graph: Path, source: Path) -> Path:
    """A copy of the model folder (config, tokenizer; no weights) with ``graph`` cut to its token embeddings.

    The exported graph outputs ``last_hidden_state``, then the pooled ``sentence_embedding``; infinity's
    optimum engine pools ``last_hidden_state`` in numpy, so the cut graph is the same network and weights.
    """
    import onnx

    folder = WORK / f"infinity-{graph.stem}"
    if (folder / "model.onnx").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(
        source, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "onnx", "openvino")
    )
    model = onnx.load(str(graph))
    nodes, outputs = model.graph.node, model.graph.output
    tokens = [o for o in outputs if o.name == "last_hidden_state"]
    if not tokens:
        raise SystemExit(f"{graph} has no last_hidden_state output (an older export): delete {WORK}, rerun")
    del outputs[:]
    outputs.extend(tokens)
    needed, kept = {"last_hidden_state"}, []
    for node in reversed(nodes):  # drop the pooling nodes and their constants
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(x for x in node.input if x)
    del nodes[:]
    nodes.extend(reversed(kept))
    weights = [t for t in model.graph.initializer if t.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(weights)
    onnx.save(model, str(folder / "model.onnx"))
    return folder
