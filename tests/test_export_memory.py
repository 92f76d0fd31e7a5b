"""Export memory: weights written apart from torch's encoder (same file); the reference freed once traced."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")


def _traced(folder: Path, pairs: bool) -> tuple[object, dict, tuple[str, ...]]:
    from edgesbert.exporters.layout import LOGITS_OUTPUT, TOKEN_OUTPUT
    from edgesbert.exporters.onnx_graph import TokenEmbeddings
    from edgesbert.exporters.pipeline import load_reference
    from edgesbert.runtime.manifest import SENTENCE_OUTPUT

    reference = load_reference(folder)
    if pairs:
        features = reference.tokenize([("A query.", "A short answer."), ("A longer query?", "More words.")])
        return reference.network, features, (LOGITS_OUTPUT,)
    features = reference.tokenize(["A short one.", "A somewhat longer sentence, with padding."])
    return TokenEmbeddings(reference.network, pooled=True), features, (TOKEN_OUTPUT, SENTENCE_OUTPUT)


def _torch_export(network, features: dict, outputs: tuple[str, ...], path: Path) -> None:
    """torch.onnx.export as ``export_onnx`` calls it, weights and all."""
    import torch

    from edgesbert.exporters.onnx_graph import OPSET, OUTPUT_AXES

    axes = {name: {0: "batch", 1: "sequence"} for name in features} | {n: OUTPUT_AXES[n] for n in outputs}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network.eval(),
            tuple(features.values()),
            str(path),
            input_names=list(features),
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


@pytest.mark.parametrize("name", ["bert-mean", "distilbert-cls-dense", "bert-1"])
def test_same_bytes_as_torch(name, tiny_bi_encoder_folder, tiny_cross_encoder_folder, tmp_path):
    import torch

    from edgesbert.exporters.onnx_graph import export_onnx

    pairs = name == "bert-1"
    folder = tiny_cross_encoder_folder(name) if pairs else tiny_bi_encoder_folder(name)
    network, features, outputs = _traced(folder, pairs)
    encode = torch._C.Graph._export_onnx
    export_onnx(network, features, outputs, tmp_path / "apart.onnx")
    _torch_export(network, features, outputs, tmp_path / "torch.onnx")
    assert (tmp_path / "apart.onnx").read_bytes() == (tmp_path / "torch.onnx").read_bytes()
    assert torch._C.Graph._export_onnx is encode  # the hook is gone


def test_models_over_the_protobuf_limit_are_left_to_torch(tiny_bi_encoder_folder, tmp_path, monkeypatch):
    from edgesbert.exporters import onnx_weights
    from edgesbert.exporters.onnx_graph import export_onnx

    network, features, outputs = _traced(tiny_bi_encoder_folder("bert-mean"), pairs=False)
    monkeypatch.setattr(onnx_weights, "PROTOBUF_LIMIT", 0)  # every model is "too large": torch writes it all
    with onnx_weights.weights_apart() as weights:
        _torch_export(network, features, outputs, tmp_path / "hooked.onnx")
    assert weights == {}
    export_onnx(network, features, outputs, tmp_path / "apart.onnx")
    _torch_export(network, features, outputs, tmp_path / "torch.onnx")
    assert (tmp_path / "apart.onnx").read_bytes() == (tmp_path / "torch.onnx").read_bytes()


def test_a_model_passed_in_still_runs_after_its_export(tiny_bi_encoder_folder, tmp_path):
    from edgesbert.exporters import export_model
    from edgesbert.reference import BiEncoder

    reference = BiEncoder(tiny_bi_encoder_folder("bert-mean"))
    before = reference.encode(["One sentence.", "And another, longer one."])
    export_model(reference, tmp_path / "out", validation_size=16)
    after = reference.encode(["One sentence.", "And another, longer one."])
    np.testing.assert_array_equal(after, before)  # the user's model: never freed


def test_a_model_the_export_loads_is_freed_once_traced(tiny_cross_encoder_folder, tmp_path, monkeypatch):
    from edgesbert.exporters import export_model, onnx_graph

    freed = []
    release = onnx_graph.release_network

    def spy(reference):
        release(reference)
        freed.append(reference)

    monkeypatch.setattr(onnx_graph, "release_network", spy)
    manifest = export_model(tiny_cross_encoder_folder("bert-1"), tmp_path / "out", validation_size=16)
    assert len(freed) == 1 and manifest.variant("fp32").validation["max_abs_diff"] < 1e-4
    assert all(p.device.type == "meta" for p in freed[0].network.parameters())
