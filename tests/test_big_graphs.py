"""ONNX graphs over protobuf's 2 GB limit: every variant keeps its weights in one ``<graph>_data`` (issue 32).

The limit is lowered here so that a tiny model's graphs take the path of a large one; the slow test at the end
exports a model with 2.5 GB of real weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgesbert.exporters import Tolerance, export_model
from edgesbert.exporters.plans import Quantization
from edgesbert.runtime import load
from edgesbert.runtime.manifest import Manifest
from edgesbert.runtime.verify import check_files, weights_file
from tests.interop.test_peers import PEERS_PYTHON, run_peers

pytest.importorskip("onnxruntime")

LOOSE = Tolerance(max_spearman_drop=1.0, min_mean_cosine=0.0)
TEXTS = ["A man is playing a guitar.", "Three dogs run across a field.", "zebra"]


@pytest.fixture(scope="module")
def apart(tmp_path_factory, tiny_bi_encoder_folder) -> Path:
    """Every ONNX variant of the tiny model, written as a model over the limit is."""
    from edgesbert.exporters import onnx_files, onnx_weights

    output = tmp_path_factory.mktemp("apart") / "folder"
    with pytest.MonkeyPatch.context() as patch:
        for module in (onnx_files, onnx_weights):  # torch writes the weights, then every graph is "too large"
            patch.setattr(module, "PROTOBUF_LIMIT", 4096)
        export_model(
            tiny_bi_encoder_folder("bert-mean"),
            output,
            optimize="O2",
            quantize=["int8", "int8-static", "int4-weights"],
            quantization=Quantization(int4_group_size=16),
            packed=True,
            tokenizer_in_graph=True,
            tolerance=LOOSE,
            validation_size=32,
        )
    return output


def test_each_graph_keeps_its_weights_in_one_file_beside_it(apart):
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    manifest = Manifest.load(apart)
    names = {v.name for v in manifest.variants}
    assert {"fp32", "O2", "O2-int8", "int8-static", "int4-weights", "packed", "fp32-with-tokenizer"} <= names
    onnx_files = {p.name for p in (apart / "onnx").iterdir()}
    graphs = {Path(v.file).name for v in manifest.variants}
    assert onnx_files == graphs | {weights_file(g) for g in graphs}  # a graph and its weights, nothing else
    for variant in manifest.variants:
        model = onnx.load(str(apart / variant.file), load_external_data=False)
        locations = {ExternalDataInfo(t).location for t in model.graph.initializer if uses_external_data(t)}
        assert locations == {weights_file(Path(variant.file).name)}, variant.name


def test_the_runtime_and_onnxruntime_run_them_and_verify_checks_the_weights(apart, tmp_path):
    import shutil

    import onnxruntime as ort

    manifest = Manifest.load(apart)
    for variant in manifest.variants:
        model = load(apart, variant=variant.name, verify=True)
        assert model.encode(TEXTS).shape == (3, 32), variant.name
    fp32 = manifest.variant("fp32")
    session = ort.InferenceSession(str(apart / fp32.file), providers=["CPUExecutionProvider"])
    features = load(apart, variant="fp32").tokenize(TEXTS)
    (token,) = session.run(["last_hidden_state"], {n: features[n] for n in fp32.inputs})[:1]
    assert token.shape[:2] == features["input_ids"].shape

    damaged = tmp_path / "damaged"
    shutil.copytree(apart, damaged)
    with (damaged / weights_file(fp32.file)).open("r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02\x03")
    failed = [c for c in check_files(damaged, Manifest.load(damaged), [fp32]) if c.failed]
    assert [c.file for c in failed] == [weights_file(fp32.file)]


def test_sentence_transformers_onnx_backend_loads_them(apart, stsb_sentences):
    if not PEERS_PYTHON.is_file():
        pytest.skip("the peers environment is missing (make peers-venv)")
    texts = stsb_sentences[:16]
    found = [v for v in Manifest.load(apart).variants if not v.packed and not v.name.endswith("tokenizer")]
    job = {"runtime": "sentence-transformers", "folder": apart, "backend": "onnx", "texts": texts}
    outputs = run_peers(PEERS_PYTHON, [job | {"file": v.file} for v in found])
    for variant, theirs in zip(found, outputs, strict=True):
        ours = load(apart, variant=variant.name).encode(texts)
        np.testing.assert_allclose(theirs, ours, atol=1e-5, err_msg=variant.name)


@pytest.mark.slow
def test_a_model_over_2_gb_exports_to_both_backends_and_runs(tmp_path):
    """2.5 GB of weights (a 300,000 x 2048 token table): each backend's fp32 and int4-weights variants."""
    import shutil

    from edgesbert.runtime.manifest import Precision
    from tests.tiny_models import build_bi_encoder

    config = {"vocab_size": 300_000, "hidden_size": 2048, "intermediate_size": 256, "num_attention_heads": 4,
              "num_key_value_heads": 1, "head_dim": 32, "num_hidden_layers": 1}  # fmt: skip
    source = build_bi_encoder(tmp_path / "big", architecture="qwen3", pooling="lasttoken", config=config)
    for backend in ("onnx", "openvino"):
        output = tmp_path / backend
        export_model(source, output, backend=backend, quantize=["int4-weights"], tolerance=LOOSE,
                     validation_size=32)  # fmt: skip
        manifest = Manifest.load(output)
        fp32, int4 = (
            next(v for v in manifest.variants if v.precision is p) for p in (Precision.FP32, Precision.INT4)
        )
        vectors = [load(output, variant=v.name).encode(TEXTS) for v in (fp32, int4)]
        assert (vectors[0] * vectors[1]).sum(axis=1).min() > 0.9
        if backend == "onnx":
            assert (output / weights_file(fp32.file)).stat().st_size > 2**31
            if PEERS_PYTHON.is_file():
                job = {
                    "runtime": "sentence-transformers",
                    "folder": output,
                    "backend": "onnx",
                    "texts": TEXTS,
                }
                theirs = run_peers(PEERS_PYTHON, [job | {"file": v.file} for v in (fp32, int4)])
                for ours, their in zip(vectors, theirs, strict=True):
                    np.testing.assert_allclose(their, ours, atol=1e-5)
        shutil.rmtree(output)
