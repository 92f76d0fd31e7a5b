"""Optimized, fp16 and int8 variants of tiny models: written, validated, described and run by the runtime."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

#: Tiny random models have no real quality to keep; these tests check mechanics, so lossy variants pass.
LOOSE = {"max_spearman_drop": 1.0, "min_mean_cosine": 0.0, "min_score_spearman": -1.0}


@pytest.fixture(scope="module")
def all_variants(tmp_path_factory, tiny_bi_encoder_folder) -> Path:
    """The tiny BERT bi-encoder with every kind of variant."""
    from edgesbert.exporters import Tolerance, export_model

    output = tmp_path_factory.mktemp("variants") / "bert-mean"
    export_model(
        tiny_bi_encoder_folder("bert-mean"),
        output,
        optimize="O2",
        quantize=["int8", "int8-static", "fp16"],
        tolerance=Tolerance(**LOOSE),
        validation_size=32,
    )
    return output


def test_every_variant_is_described_with_its_recipe_and_checksum(all_variants):
    from edgesbert.runtime.manifest import Manifest, Precision

    manifest = Manifest.load(all_variants)
    by_name = {v.name: v for v in manifest.variants}
    assert list(by_name) == ["fp32", "O2", "O2-int8", "int8-static", "O2-fp16"]
    assert [by_name[n].precision for n in by_name] == [
        Precision.FP32,
        Precision.FP32,
        Precision.INT8,
        Precision.INT8,
        Precision.FP16,
    ]
    assert by_name["O2"].recipe == {"optimize": "O2"}
    assert by_name["O2-int8"].recipe["quantize"] == "int8-dynamic"
    assert by_name["O2-int8"].recipe["optimize"] == "O2"  # quantized from the optimized graph
    static = by_name["int8-static"].recipe
    assert static["quantize"] == "int8-static" and static["calibration"] == "built-in"
    assert static["calibration_method"] == "minmax" and static["calibration_samples"] == 256
    assert static["kept_float"] == "feed-forward down-projections"
    for variant in manifest.variants:
        data = (all_variants / variant.file).read_bytes()
        assert (
            hashlib.sha256(data).hexdigest() == variant.sha256 == manifest.provenance.checksums[variant.file]
        )
        figures = variant.validation
        assert set(figures) >= {"spearman", "reference_spearman", "mean_cosine", "max_abs_diff", "samples"}
        assert figures["samples"] == 32
    # int8 weights are about a quarter of fp32 ones, fp16 about half (embeddings stay fp32 in dynamic int8)
    size = {n: (all_variants / v.file).stat().st_size for n, v in by_name.items()}
    assert size["O2-int8"] < 0.6 * size["fp32"] and size["O2-fp16"] < 0.6 * size["fp32"]
    assert size["int8-static"] < 0.6 * size["fp32"]  # its kept-float weights are stored as int8 too


def test_static_int8_stores_the_float_weights_it_keeps_as_int8_codes(all_variants):
    import onnx
    from onnx import numpy_helper

    from edgesbert.exporters.onnx_quantize import down_projections
    from edgesbert.runtime.manifest import Manifest

    manifest = Manifest.load(all_variants)
    graph = onnx.load(str(all_variants / manifest.variant("int8-static").file)).graph
    reference = {
        t.name: numpy_helper.to_array(t)
        for t in onnx.load(str(all_variants / "onnx/model.onnx")).graph.initializer
    }
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    float_products = [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and any(weights.get(i, np.int8(0)).dtype == np.float32 for i in n.input)
    ]
    assert float_products == []  # the products kept float read their weights from int8 codes
    kept = down_projections(all_variants / "onnx/model.onnx")
    assert kept and all(name in {n.name for n in graph.node if n.op_type == "MatMul"} for name in kept)
    vocabulary = next(n for n in graph.node if n.op_type == "Gather" and n.input[1] == "input_ids")
    codes = weights[vocabulary.input[0]]
    assert codes.dtype == np.int8 and np.abs(codes).max() == 127
    table = next(w for name, w in reference.items() if w.shape == codes.shape)
    restored = codes * weights[vocabulary.input[0].replace("_int8", "_scale")]
    step = np.abs(table).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(restored - table) <= step / 2 + 1e-7)  # at most half a step per token row


def test_every_variant_records_its_true_batch_effect(all_variants, stsb_sentences):
    from edgesbert.exporters.validation import BATCH_PROBES
    from edgesbert.runtime import load
    from edgesbert.runtime.manifest import Manifest

    manifest = Manifest.load(all_variants)
    # the validation data of the export are STSb-dev sentences; the probe is the same on any texts
    texts, longest = stsb_sentences[:BATCH_PROBES], max(stsb_sentences, key=len)
    for variant in manifest.variants:
        model = load(all_variants, variant=variant.name)
        alone = model.encode(texts, batch_size=1, normalize_embeddings=True)
        beside = np.stack([model.encode([t, longest], normalize_embeddings=True)[0] for t in texts])
        recorded = variant.validation["batch_min_cosine"]
        assert 0.9 < recorded <= 1.0 + 1e-6, variant.name
        if variant.recipe.get("quantize") != "int8-dynamic":  # fixed scales: no batch effect at all
            assert recorded >= 0.99999 and float((alone * beside).sum(axis=1).min()) >= 0.99999
    default = manifest.variant(manifest.default_variant)
    steady_int8 = [v for v in manifest.variants if v.precision.value == "int8" and not v.batch_dependent]
    assert not default.batch_dependent
    assert default.name == max(steady_int8, key=lambda v: v.validation["spearman"]).name


def test_runtime_runs_every_variant_close_to_fp32(all_variants, stsb_sentences):
    from edgesbert.runtime import load
    from edgesbert.runtime.manifest import Manifest

    fp32 = load(all_variants, variant="fp32").encode(stsb_sentences, normalize_embeddings=True)
    for variant in Manifest.load(all_variants).variants:
        model = load(all_variants, variant=variant.name)
        assert model.variant.name == variant.name
        embeddings = model.encode(stsb_sentences, normalize_embeddings=True)
        assert embeddings.shape == fp32.shape and embeddings.dtype == np.float32
        cosine = float((embeddings * fp32).sum(axis=1).mean())
        if variant.name == "O2":  # exact rewrites only
            assert float(np.abs(embeddings - fp32).max()) <= 1e-4
        else:
            assert cosine > 0.9, variant.name


def test_optimization_levels_fuse_and_stay_exact(tmp_path, tiny_bi_encoder_folder, stsb_sentences):
    import onnx

    from edgesbert.exporters import export_model
    from edgesbert.runtime import load

    source = tiny_bi_encoder_folder("bert-mean")
    export_model(source, tmp_path / "o3", optimize="O3", validation_size=16)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "o3" / "onnx" / "model_O3.onnx")).graph.node}
    assert {"Attention", "SkipLayerNormalization", "FastGelu"} <= ops
    exact = load(tmp_path / "o3", variant="fp32").encode(stsb_sentences)
    approximate = load(tmp_path / "o3", variant="O3").encode(stsb_sentences)
    assert float(np.abs(exact - approximate).max()) < 1e-2  # tanh GELU: close, not exact


@pytest.mark.parametrize("name", ["bert-1", "distilbert-3"])
def test_cross_encoder_variants_report_score_agreement(name, tmp_path, tiny_cross_encoder_folder):
    from edgesbert.exporters import Tolerance, export_model
    from edgesbert.runtime import load

    manifest = export_model(
        tiny_cross_encoder_folder(name),
        tmp_path / name,
        optimize="O2",
        quantize=["int8"],
        tolerance=Tolerance(**LOOSE),
        validation_size=48,
    )
    assert [v.name for v in manifest.variants] == ["fp32", "O2", "O2-int8"]
    agreement = "top1_agreement" if name == "bert-1" else "label_agreement"
    for variant in manifest.variants:
        assert set(variant.validation) >= {"score_spearman", agreement, "max_abs_diff", "samples"}
        assert 0 <= variant.validation[agreement] <= 1
    assert manifest.variant("O2").validation["max_abs_diff"] <= 1e-4
    assert manifest.variant("O2").validation[agreement] == 1.0
    model = load(tmp_path / name, variant="O2-int8")
    scores = model.predict([("a question?", "an answer."), ("another one?", "and its answer.")])
    assert scores.shape == ((2,) if name == "bert-1" else (2, 3))


def test_a_lossy_variant_out_of_tolerance_is_left_out_and_the_others_written(
    exported, tiny_bi_encoder_folder, tmp_path
):
    from edgesbert.errors import PartialExportError
    from edgesbert.exporters import Tolerance, export_model
    from edgesbert.runtime.manifest import Manifest

    target = tmp_path / "model"
    shutil.copytree(exported("bert-mean"), target)
    strict = Tolerance(min_mean_cosine=0.999999)
    with pytest.raises(PartialExportError, match=r"variant 'int8' disagrees.*after 4 recipes") as failure:
        export_model(tiny_bi_encoder_folder("bert-mean"), target, quantize=["int8"], tolerance=strict)
    message = str(failure.value)
    assert "mean_cosine 0.99" in message and "< 0.999999 (--min-cosine)" in message  # the measured figure
    assert "--min-cosine 0.99" in message and "(now 0.999999)" in message  # the option that loosens it
    assert "STSb Spearman" in message and "texts/s" in message
    assert failure.value.failed == ("int8",)
    manifest = Manifest.load(target)
    assert [v.name for v in manifest.variants] == ["fp32"]  # what passed was written, validated
    assert manifest.variant("fp32").validation["max_abs_diff"] <= 1e-4
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert not any("qint8" in f or ".attempts" in f for f in files)  # no debris of the attempts
    assert set(files) == {*manifest.provenance.checksums, "edgesbert.json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_nothing_is_written_when_no_variant_passes(exported, tiny_bi_encoder_folder, tmp_path):
    from edgesbert.errors import ValidationFailedError
    from edgesbert.exporters import Tolerance, export_model

    target = tmp_path / "model"
    shutil.copytree(exported("bert-mean"), target)
    before = {p: p.read_bytes() for p in target.rglob("*") if p.is_file()}
    impossible = Tolerance(max_abs_diff=0.0, min_mean_cosine=1.0)
    expected = r"variant 'fp32' disagrees.*Skipped quantizing"
    with pytest.raises(ValidationFailedError, match=expected) as failure:
        export_model(tiny_bi_encoder_folder("bert-mean"), target, quantize=["int8"], tolerance=impossible)
    assert "--max-abs-diff" in str(failure.value)
    assert {p: p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize(
    ("content", "column", "message"),
    [
        (None, None, "does not exist"),
        ("", None, "is empty; write one text per line"),
        ("text,other\nA sentence.,x\n", "missing", "missing"),
    ],
)
def test_bad_calibration_file_is_refused_before_any_work(
    content, column, message, tiny_bi_encoder_folder, tmp_path
):
    from edgesbert.errors import ExportError
    from edgesbert.exporters import Quantization, export_model

    calibration = tmp_path / ("calibration.csv" if column else "calibration.txt")
    if content is not None:
        calibration.write_text(content)
    with pytest.raises(ExportError, match=message):
        export_model(
            tiny_bi_encoder_folder("bert-mean"),
            tmp_path / "out",
            quantize=["int8-static"],
            quantization=Quantization(calibration=calibration, column=column),
        )
    assert not (tmp_path / "out").exists()


def test_static_int8_calibrates_on_a_user_file(tmp_path, tiny_cross_encoder_folder, caplog):
    from edgesbert.exporters import Quantization, Tolerance, export_model

    caplog.set_level("WARNING")
    calibration = tmp_path / "pairs.jsonl"
    calibration.write_text(
        "".join(f'{{"q": "question {i}?", "a": "answer number {i}."}}\n' for i in range(40)), encoding="utf-8"
    )
    manifest = export_model(
        tiny_cross_encoder_folder("bert-1"),
        tmp_path / "out",
        quantize=["int8", "int8-static"],
        quantization=Quantization(calibration=calibration, column="q,a", samples=24, method="percentile"),
        tolerance=Tolerance(**LOOSE),
        validation_size=16,
    )
    recipe = manifest.variant("int8-static").recipe
    assert recipe["calibration"] == str(calibration)
    assert recipe["calibration_samples"] == 24 and recipe["calibration_method"] == "percentile"
    assert "pre-processing" not in caplog.text  # onnxruntime's advice to users of its quantizer is muted


@pytest.mark.parametrize(
    ("optimize", "quantize", "message"),
    [
        ("O5", (), "unknown optimization level 'O5'"),
        (None, ("int4",), "unknown quantization 'int4'"),
        ("O4", ("int8",), "O4 already makes an fp16 GPU graph"),
    ],
)
def test_plan_errors(optimize, quantize, message):
    from edgesbert.errors import ExportError
    from edgesbert.exporters import onnx_steps

    with pytest.raises(ExportError, match=message):
        onnx_steps(optimize, quantize)


def test_int8_presets():
    from edgesbert.errors import ExportError
    from edgesbert.exporters.onnx_quantize import INT8_PRESETS, detect_int8_preset, int8_preset

    assert set(INT8_PRESETS) == {"arm64", "avx2", "avx512", "avx512_vnni"}
    flags = set(Path("/proc/cpuinfo").read_text().split()) if Path("/proc/cpuinfo").exists() else set()
    detected = detect_int8_preset()
    if "avx2" in flags and "avx512f" not in flags:
        assert detected.name == "avx2" and detected.reduce_range  # no VNNI: 7-bit weights avoid saturation
    assert int8_preset(None) == detected
    assert not int8_preset("avx512_vnni").reduce_range
    with pytest.raises(ExportError, match="unknown int8 preset 'sse'"):
        int8_preset("sse")


def test_default_variant_policy():
    from edgesbert.exporters.manifest_writer import default_variant
    from edgesbert.runtime.manifest import GraphVariant, Precision

    def variant(name, precision, spearman, recipe=None):
        return GraphVariant(
            name, f"{name}.onnx", "onnxruntime", precision, ("input_ids",), ("x",), "0", None,
            {"spearman": spearman}, recipe or {},
        )  # fmt: skip

    fp32 = variant("fp32", Precision.FP32, 0.80)
    o2 = variant("O2", Precision.FP32, 0.80, {"optimize": "O2"})
    fp16 = variant("fp16", Precision.FP16, 0.81)
    int8_a = variant("int8", Precision.INT8, 0.79)
    int8_b = variant("int8-static", Precision.INT8, 0.78)
    assert default_variant([fp32]) == "fp32"
    assert default_variant([fp32, fp16]) == "fp32"  # fp16 is for GPUs
    assert default_variant([fp32, o2, fp16]) == "O2"
    bf16 = variant("openvino-bf16", Precision.BF16, 0.82)
    assert default_variant([fp32, bf16]) == "fp32"  # bf16 is an opt-in
    assert default_variant([fp32, o2, int8_b, int8_a]) == "int8"
    batchy = replace(int8_a, validation={"spearman": 0.79, "batch_min_cosine": 0.9932})
    assert default_variant([fp32, o2, int8_b, batchy]) == "int8-static"  # never a batch-dependent one
    assert default_variant([fp32, batchy]) == "fp32"
    assert default_variant([replace(batchy, name="only")]) == "only"
    old_dynamic = replace(int8_a, recipe={"quantize": "int8-dynamic"})  # exported before it was measured
    assert old_dynamic.batch_dependent and not int8_b.batch_dependent
    packed = replace(fp32, name="packed", row_length=128, validation={"spearman": 0.81})
    assert default_variant([fp32, packed]) == "packed"  # the default's packed twin (tune may undo it)
    assert default_variant([fp32, o2, packed]) == "O2"  # an optimized graph has no packed twin
    assert default_variant([packed]) == "packed"
    int8_steady = replace(int8_a, recipe={"quantize": "int8-static"})
    packed_int8 = replace(int8_steady, name="packed-int8-static", row_length=128)
    assert default_variant([fp32, packed, int8_steady, packed_int8]) == "packed-int8-static"
    unsteady = replace(packed_int8, validation={"spearman": 0.79, "batch_min_cosine": 0.99})
    assert default_variant([fp32, packed, int8_steady, unsteady]) == "int8"  # never a batch-dependent twin
    padded_batchy = replace(int8_steady, validation={"spearman": 0.79, "batch_min_cosine": 0.9996})
    # OpenVINO int8: padded rows change length with the batch, packed ones do not; the steady twin stands in
    assert default_variant([fp32, packed, padded_batchy, packed_int8]) == "packed-int8-static"
    assert default_variant([fp32, packed, padded_batchy, unsteady]) == "packed"  # neither is steady


def test_static_int8_keeps_feed_forward_down_projections_float(all_variants):
    import onnx

    from edgesbert.exporters.onnx_quantize import down_projections

    excluded = down_projections(all_variants / "onnx" / "model.onnx")  # the fp32 graph of a 2-layer model
    assert len(excluded) == 2
    quantized = onnx.load(str(all_variants / "onnx" / "model_quantized.onnx"))
    float_matmuls = {n.name for n in quantized.graph.node if n.op_type == "MatMul"}
    assert set(excluded) <= float_matmuls
    assert any(n.op_type == "QLinearMatMul" for n in quantized.graph.node)
