"""Export folders loaded by the other runtimes themselves give the numbers edgesbert gives (issue 16).

sentence-transformers (ONNX and OpenVINO backends, bi- and cross-encoders), fastembed, OpenVINO GenAI and
transformers.js.

The Python ones run in the peers environment (``make peers-venv``: optimum needs transformers < 4.58), driven
through tests/interop/peer_run.py; transformers.js runs in Node (tests/interop/js, ``npm ci``). Where they
are missing the tests skip, unless EDGESBERT_REQUIRE_PEERS is set (as ``make test`` does): then they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.tiny_models import TINY_INT8

ROOT = Path(__file__).resolve().parents[2]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
TOLERANCE = 1e-5
PAIRS = [
    ("How many people live in Berlin?", "Berlin has a population of 3,520,031 registered inhabitants."),
    ("How many people live in Berlin?", "Berlin is well known for its museums."),
    ("Who invented the telephone?", "Alexander Graham Bell was granted the first patent for the telephone."),
]


@pytest.fixture(scope="module")
def peers() -> Path:
    if not PEERS_PYTHON.is_file():
        message = f"{PEERS_PYTHON} is missing: run `make peers-venv`"
        if os.environ.get("EDGESBERT_REQUIRE_PEERS"):
            pytest.fail(message)
        pytest.skip(message)
    return PEERS_PYTHON


def run_peers(python: Path, jobs: list[dict[str, Any]]) -> list[np.ndarray]:
    """Run jobs of peer_run.py in one process of the peers environment; the outputs of each as an array."""
    result = subprocess.run(
        [str(python), str(Path(__file__).with_name("peer_run.py"))],
        input=json.dumps([{k: str(v) if isinstance(v, Path) else v for k, v in job.items()} for job in jobs]),
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = json.loads(result.stdout.splitlines()[-1])
    assert len(outputs) == len(jobs)
    return [np.array(output, dtype=np.float32) for output in outputs]


def run_peer(python: Path, **job: Any) -> np.ndarray:
    """Run one job of peer_run.py in the peers environment; its outputs as an array."""
    return run_peers(python, [job])[0]


@pytest.fixture(scope="module")
def bi_folders(tmp_path_factory, tiny_bi_encoder_folder) -> dict[str, Path]:
    from edgesbert.exporters import export_model
    from edgesbert.exporters.plans import Quantization

    source, out = tiny_bi_encoder_folder("bert-mean"), tmp_path_factory.mktemp("interop-bi")
    shared = {"quantization": Quantization(int4_group_size=16), "validation_size": 32}  # int4 groups that fit
    onnx_variants = ["int8", "int8-static", "int4-weights"]
    export_model(source, out / "onnx", optimize="O2", quantize=onnx_variants, **shared)
    export_model(source, out / "openvino", backend="openvino", quantize=["int8", "int4-weights"], **shared)
    return {"onnx": out / "onnx", "openvino": out / "openvino"}


@pytest.fixture(scope="module")
def cross_folders(tmp_path_factory, tiny_cross_encoder_folder) -> dict[str, Path]:
    from edgesbert.exporters import Tolerance, export_model

    source, out = tiny_cross_encoder_folder("bert-1"), tmp_path_factory.mktemp("interop-cross")
    shared: dict[str, Any] = {"validation_size": 32, "tolerance": Tolerance(**TINY_INT8)}
    export_model(source, out / "onnx", quantize=["int8-static"], **shared)
    export_model(source, out / "openvino", backend="openvino", quantize=["int8"], **shared)
    return {"onnx": out / "onnx", "openvino": out / "openvino"}


def variants(folder: Path) -> list[tuple[str, str]]:
    from edgesbert.runtime.manifest import Manifest

    return [(v.name, v.file) for v in Manifest.load(folder).variants]


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_sentence_transformers_loads_every_variant(peers, bi_folders, stsb_sentences, backend):
    from edgesbert.runtime import load

    folder, texts = bi_folders[backend], stsb_sentences[:24]  # one batch: dynamic int8 scales per batch
    found = variants(folder)
    job = {"runtime": "sentence-transformers", "folder": folder, "backend": backend, "texts": texts}
    outputs = run_peers(peers, [job | {"file": file} for _, file in found])
    for (name, file), theirs in zip(found, outputs, strict=True):
        ours = load(folder, variant=name).encode(texts)
        assert theirs.shape == ours.shape
        np.testing.assert_allclose(theirs, ours, atol=TOLERANCE, err_msg=f"{backend} {name} ({file})")


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_sentence_transformers_cross_encoder_scores_as_edgesbert(peers, cross_folders, backend):
    from edgesbert.runtime import load

    folder, found = cross_folders[backend], variants(cross_folders[backend])
    pairs = [list(pair) for pair in PAIRS]
    job = {"runtime": "sentence-transformers-cross", "folder": folder, "backend": backend, "pairs": pairs}
    outputs = run_peers(peers, [job | {"file": file} for _, file in found])
    for (name, file), theirs in zip(found, outputs, strict=True):
        ours = load(folder, variant=name).predict(PAIRS)  # both apply the model's activation (sigmoid)
        np.testing.assert_allclose(theirs, ours, atol=TOLERANCE, err_msg=f"{backend} {name} ({file})")


def test_fastembed_reads_the_first_output_and_pools_as_edgesbert(peers, bi_folders, stsb_sentences):
    from edgesbert.runtime import load

    folder = bi_folders["onnx"]
    model = load(folder, variant="fp32")
    assert model.spec.pooling.value == "mean"  # fastembed's custom models pool by mean or CLS
    names = ("fp32", "O2", "int8-static")  # not dynamic int8: fastembed batches without sorting
    job = {
        "runtime": "fastembed",
        "folder": folder,
        "dim": model.embedding_dimension,
        "pooling": "mean",
        "normalize": model.spec.normalize,
        "texts": stsb_sentences[:24],
    }
    outputs = run_peers(peers, [job | {"file": model.manifest.variant(name).file} for name in names])
    for name, theirs in zip(names, outputs, strict=True):
        file = model.manifest.variant(name).file
        ours = load(folder, variant=name).encode(stsb_sentences[:24])
        np.testing.assert_allclose(theirs, ours, atol=TOLERANCE, err_msg=f"fastembed {name} ({file})")


def test_openvino_genai_embeds_and_reranks_as_edgesbert(peers, bi_folders, cross_folders, stsb_sentences):
    """OpenVINO GenAI reads openvino/openvino_model.xml (its token embeddings: it pools itself) and the
    tokenizer the export converted to openvino/openvino_tokenizer.xml."""
    from edgesbert.runtime import load

    model, texts = load(bi_folders["openvino"], variant="openvino"), stsb_sentences[:24]
    job = {
        "folder": bi_folders["openvino"],
        "pooling": model.spec.pooling.value,
        "normalize": model.spec.normalize,
    }
    theirs = run_peer(peers, runtime="openvino-genai", texts=texts, **job)
    np.testing.assert_allclose(theirs, model.encode(texts), atol=TOLERANCE)

    query, documents = PAIRS[0][0], [document for _, document in PAIRS]
    scores = run_peer(
        peers,
        runtime="openvino-genai-rerank",
        folder=cross_folders["openvino"],
        query=query,
        documents=documents,
    )
    ours = load(cross_folders["openvino"], variant="openvino").predict([(query, d) for d in documents])
    np.testing.assert_allclose(scores, ours, atol=TOLERANCE)


# --- transformers.js, run by Node ------------------------------------------------------------------------

JS = Path(__file__).with_name("js")


@pytest.fixture(scope="module")
def node() -> list[str]:
    """The command that runs js/run.mjs; needs `npm ci` in tests/interop/js (make test runs it)."""
    if not (JS / "node_modules" / "@huggingface" / "transformers").is_dir():
        message = f"transformers.js is not installed: run `npm ci` in {JS} (ONNXRUNTIME_NODE_INSTALL=skip)"
        if os.environ.get("EDGESBERT_REQUIRE_PEERS"):
            pytest.fail(message)
        pytest.skip(message)
    return ["node", str(JS / "run.mjs")]


def run_node(command: list[str], **job: Any) -> np.ndarray:
    job = {k: str(v) if isinstance(v, Path) else v for k, v in job.items()}
    result = subprocess.run(command, input=json.dumps(job), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return np.array(json.loads(result.stdout.splitlines()[-1]), dtype=np.float32)


@pytest.mark.parametrize(("dtype", "variant"), [("fp32", "fp32"), ("q8", "int8-static")])
def test_transformers_js_embeds_as_edgesbert(node, bi_folders, stsb_sentences, dtype, variant):
    """dtype fp32 reads onnx/model.onnx and q8 onnx/model_quantized.onnx, the static int8 variant."""
    from edgesbert.runtime import load

    folder, texts = bi_folders["onnx"], stsb_sentences[:24]
    model = load(folder, variant=variant)
    job = {"task": "embed", "folder": folder, "dtype": dtype, "texts": texts}
    theirs = run_node(node, **job, pooling=model.spec.pooling.value, normalize=model.spec.normalize)
    np.testing.assert_allclose(theirs, model.encode(texts), atol=TOLERANCE)


@pytest.mark.parametrize(("dtype", "variant"), [("fp32", "fp32"), ("q8", "int8-static")])
def test_transformers_js_scores_as_edgesbert(node, cross_folders, dtype, variant):
    from edgesbert.runtime import load

    folder = cross_folders["onnx"]
    theirs = run_node(node, task="score", folder=folder, dtype=dtype, pairs=[list(p) for p in PAIRS])
    np.testing.assert_allclose(theirs, load(folder, variant=variant).predict(PAIRS), atol=TOLERANCE)
