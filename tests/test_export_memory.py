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


@pytest.mark.parametrize("packed", [False, True])
def test_a_model_the_export_loads_is_freed_once_traced(
    packed, tiny_bi_encoder_folder, tiny_cross_encoder_folder, tmp_path, monkeypatch
):
    """Freed after its last trace: the fp32 graph's, or the packed graph's after it."""
    from edgesbert.exporters import context, export_model

    freed = []
    release = context.release_network

    def spy(reference):
        release(reference)
        freed.append(reference)

    monkeypatch.setattr(context, "release_network", spy)
    if packed:
        folder, kind = tiny_bi_encoder_folder("bert-mean"), "bi-encoder"
    else:
        folder, kind = tiny_cross_encoder_folder("bert-1"), "cross-encoder"
    manifest = export_model(folder, tmp_path / "out", kind=kind, validation_size=16, packed=packed)
    assert len(freed) == 1 and manifest.variant("fp32").validation["max_abs_diff"] < 1e-4
    if packed:
        assert manifest.variant("packed").validation["max_abs_diff"] < 1e-4
    network = freed[0].network
    weights = network.transformer if packed else network
    assert all(p.device.type == "meta" for p in weights.parameters())


def _quantize_dynamic(graph: Path, output: Path) -> bytes:
    """onnxruntime's dynamic int8 as the exporter runs it."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        graph,
        output,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return output.read_bytes()


@pytest.mark.parametrize(
    ("name", "kind", "reloads"), [("bert-mean", "bi-encoder", 0), ("bert-1", "cross-encoder", 1)]
)
def test_the_dynamic_quantizer_keeps_one_copy_and_writes_the_same_bytes(
    name, kind, reloads, exported, tmp_path, monkeypatch
):
    """A graph typed throughout is kept; one whose Gemm the quantizer rewrote is reloaded, weights moved."""
    from onnxruntime.quantization import onnx_quantizer

    from edgesbert.exporters import ort_quantize

    graph = exported(name, kind) / "onnx" / "model.onnx"
    original = onnx_quantizer.save_and_reload_model_with_shape_infer
    moved = []

    def spy(model):
        moved.append(model)
        return reload(model)

    reload = ort_quantize._reload_moving_weights
    monkeypatch.setattr(ort_quantize, "_reload_moving_weights", spy)
    with ort_quantize.shape_reload_in_place():
        lean = _quantize_dynamic(graph, tmp_path / "lean.onnx")
    assert onnx_quantizer.save_and_reload_model_with_shape_infer is original  # restored
    assert lean == _quantize_dynamic(graph, tmp_path / "copied.onnx")
    assert len(moved) == reloads
    for model in moved:  # onnx moves out every tensor of 1 kB or more
        assert all(not t.raw_data for t in model.graph.initializer if np.prod(t.dims) * 4 >= 1024)


def test_calibration_one_text_per_run_gives_onnxruntimes_own_result(exported, tmp_path):
    """Ranges calibrated run by run and read back from the file quantize as onnxruntime's own calibration."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantType,
        quantize_static,
        save_tensors_data,
    )

    from edgesbert.exporters.ort_quantize import calibrate
    from edgesbert.runtime import load

    folder = exported("bert-mean")
    graph = folder / "onnx" / "model.onnx"
    tokenizer = load(folder).tokenizer
    texts = ["A short one.", "A somewhat longer sentence, with more words in it.", "Three."]
    runs = [tokenizer([text]) for text in texts]
    options = {"op_types_to_quantize": ["MatMul"], "weight_type": QuantType.QInt8}

    class Reader(CalibrationDataReader):  # onnxruntime's calibration, all the runs in one go
        def __init__(self) -> None:
            self.runs = list(runs)

        def get_next(self):
            return self.runs.pop(0) if self.runs else None

    own = tmp_path / "own.onnx"
    quantize_static(graph, own, Reader(), calibrate_method=CalibrationMethod.MinMax, **options)
    (tmp_path / "scratch").mkdir()
    ranges = calibrate(graph, iter(runs), "minmax", tmp_path / "scratch")
    save_tensors_data(ranges, tmp_path / "ranges.json")
    quantize_static(
        graph,
        tmp_path / "cached.onnx",
        None,
        calibrate_method=CalibrationMethod.MinMax,
        calibration_cache_path=tmp_path / "ranges.json",
        **options,
    )
    assert (tmp_path / "cached.onnx").read_bytes() == own.read_bytes()
    lengths = {run["input_ids"].shape[1] for run in runs}
    assert len(lengths) == 3  # each run its own text, unpadded


def test_the_int8_search_calibrates_once(tiny_bi_encoder_folder, tmp_path, monkeypatch):
    from edgesbert.errors import ExportError
    from edgesbert.exporters import Tolerance, export_model, onnx_quantize

    calibrations = []
    calibrate = onnx_quantize.calibrate

    def spy(graph, runs, method, scratch):
        calibrations.append(method)
        return calibrate(graph, runs, method, scratch)

    monkeypatch.setattr(onnx_quantize, "calibrate", spy)
    strict = Tolerance(min_mean_cosine=0.9999999, max_spearman_drop=1.0, min_score_spearman=-1.0)
    with pytest.raises(ExportError, match=r"after [2-9]\d* recipes"):  # several recipes tried, none passed
        export_model(
            tiny_bi_encoder_folder("bert-mean"),
            tmp_path / "out",
            quantize=["int8-static"],
            tolerance=strict,
            validation_size=16,
        )
    assert calibrations == ["minmax"]
