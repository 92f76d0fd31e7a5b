"""OpenVINO: IR export (fp32, fp16), NNCF int8, and the runtime backend with its devices and options."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

LOOSE = {"max_spearman_drop": 1.0, "min_mean_cosine": 0.0, "min_score_spearman": -1.0}


@pytest.fixture(scope="module")
def ov_bi(tmp_path_factory, tiny_bi_encoder_folder) -> Path:
    from edgesbert.exporters import Tolerance, export_model

    output = tmp_path_factory.mktemp("ov") / "bert-mean"
    export_model(
        tiny_bi_encoder_folder("bert-mean"),
        output,
        backend="openvino",
        quantize=["int8", "int8-weights", "fp16"],
        tolerance=Tolerance(**LOOSE),
        validation_size=32,
    )
    return output


def test_openvino_folder_holds_ir_variants_only(ov_bi):
    from edgesbert.runtime.manifest import Manifest

    manifest = Manifest.load(ov_bi)
    names = [v.name for v in manifest.variants]
    assert names == ["openvino", "openvino-int8", "openvino-int8-weights", "openvino-fp16"]
    assert {v.backend for v in manifest.variants} == {"openvino"}
    assert manifest.default_variant == "openvino-int8"  # int8 activations first
    assert not (ov_bi / "onnx").exists()  # the ONNX graph only served the conversion
    for variant in manifest.variants:
        assert variant.file in manifest.provenance.checksums
        assert variant.file.replace(".xml", ".bin") in manifest.provenance.checksums
    assert manifest.variant("openvino-int8").recipe["tool"] == "nncf"
    assert manifest.variant("openvino-int8").validation["samples"] == 32


def test_openvino_fp32_reproduces_the_reference(ov_bi, tiny_bi_encoder_folder, stsb_sentences):
    import openvino as ov

    from edgesbert.reference import BiEncoder as Reference
    from edgesbert.runtime import load

    expected = Reference(tiny_bi_encoder_folder("bert-mean")).encode(stsb_sentences)
    model = load(ov_bi, variant="openvino", threads=2)
    assert type(model._backend).__name__ == "OpenVinoBackend"
    # f32 on every CPU: with AMX or AVX-512 BF16, OpenVINO's default would be bf16
    assert model._backend._compiled[None].get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    np.testing.assert_allclose(model.encode(stsb_sentences), expected, atol=1e-4)
    for name in ("openvino-int8", "openvino-int8-weights", "openvino-fp16"):
        actual = load(ov_bi, variant=name).encode(stsb_sentences, normalize_embeddings=True)
        cosine = (actual * expected / np.linalg.norm(expected, axis=1, keepdims=True)).sum(axis=1)
        assert cosine.mean() > 0.9, name


def test_openvino_cross_encoder_int8(tmp_path, tiny_cross_encoder_folder):
    from edgesbert.exporters import Tolerance, export_model
    from edgesbert.runtime import load

    manifest = export_model(
        tiny_cross_encoder_folder("distilbert-3"),
        tmp_path / "ce",
        backend="openvino",
        quantize=["int8"],
        tolerance=Tolerance(**LOOSE),
        validation_size=32,
    )
    assert [v.name for v in manifest.variants] == ["openvino", "openvino-int8"]
    assert manifest.variant("openvino").validation["max_abs_diff"] <= 1e-4
    assert set(manifest.variant("openvino-int8").validation) >= {"score_spearman", "label_agreement"}
    scores = load(tmp_path / "ce").predict([("a question?", "an answer."), ("another?", "yes.")])
    assert scores.shape == (2, 3)


@pytest.mark.parametrize("device", ["npu", "gpu"])
def test_missing_device_lists_the_available_ones(ov_bi, device):
    import openvino as ov

    from edgesbert.errors import DeviceNotAvailableError
    from edgesbert.runtime import load

    if any(d.lower().startswith(device) for d in ov.Core().available_devices):
        pytest.skip(f"this machine has a {device}")
    with pytest.raises(DeviceNotAvailableError, match=f"no {device.upper()} device here; available: CPU"):
        load(ov_bi, device=device)


def test_auto_device_hints_and_cache(ov_bi, tmp_path, stsb_sentences):
    from edgesbert.runtime import load

    expected = load(ov_bi, variant="openvino").encode(stsb_sentences[:8])
    cache = tmp_path / "cache"
    model = load(ov_bi, variant="openvino", device="auto", performance_hint="latency", cache_dir=cache)
    np.testing.assert_allclose(model.encode(stsb_sentences[:8]), expected, atol=1e-5)
    model = load(ov_bi, variant="openvino", performance_hint="throughput", cache_dir=cache)
    np.testing.assert_allclose(model.encode(stsb_sentences[:8]), expected, atol=1e-5)
    assert model._backend.concurrent_runs >= 1
    many = load(ov_bi, variant="openvino").encode(stsb_sentences, batch_size=8)
    np.testing.assert_allclose(model.encode(stsb_sentences, batch_size=8), many, atol=1e-5)
    assert any(cache.iterdir()), "OpenVINO wrote no compiled model into the cache folder"
    with pytest.raises(ValueError, match="performance_hint must be one of"):
        load(ov_bi, performance_hint="fast")


def test_bf16_variant_shares_the_fp32_ir_and_runs_it_in_bf16(
    tmp_path, tiny_bi_encoder_folder, stsb_sentences
):
    import openvino as ov

    from edgesbert.exporters import Tolerance, export_model
    from edgesbert.runtime import load
    from edgesbert.runtime.cpu import has_bf16
    from edgesbert.runtime.manifest import Precision

    if not has_bf16():
        pytest.skip("bf16 variants are exported on CPUs with AMX or AVX-512 BF16 only")
    output = tmp_path / "bf16"
    manifest = export_model(
        tiny_bi_encoder_folder("bert-mean"),
        output,
        backend="openvino",
        quantize=["bf16"],
        tolerance=Tolerance(**LOOSE),
        validation_size=32,
    )
    fp32, bf16 = manifest.variants
    assert (bf16.name, bf16.precision, bf16.recipe["inference_precision"]) == (
        "openvino-bf16",
        Precision.BF16,
        "bf16",
    )
    assert bf16.file == fp32.file and bf16.sha256 == fp32.sha256  # no second copy of the graph
    assert manifest.default_variant == "openvino"  # an opt-in
    assert bf16.validation["samples"] == 32 and bf16.validation["mean_cosine"] > 0.99
    model = load(output, variant="openvino-bf16")
    assert model._backend._compiled[None].get_property("INFERENCE_PRECISION_HINT") == ov.Type.bf16
    exact = load(output).encode(stsb_sentences, normalize_embeddings=True)
    rounded = model.encode(stsb_sentences, normalize_embeddings=True)
    cosine = (exact * rounded).sum(axis=1)
    assert cosine.min() > 0.99 and not np.array_equal(exact, rounded)  # bf16 arithmetic, close to fp32


def test_bf16_needs_a_cpu_with_bf16(tmp_path, tiny_bi_encoder_folder, monkeypatch):
    from edgesbert.errors import ExportError
    from edgesbert.exporters import Tolerance, export_model, openvino_ir

    monkeypatch.setattr(openvino_ir, "has_bf16", lambda: False)
    with pytest.raises(ExportError, match="--quantize bf16 needs a CPU with AMX or AVX-512 BF16"):
        export_model(
            tiny_bi_encoder_folder("bert-mean"),
            tmp_path / "out",
            backend="openvino",
            quantize=["bf16"],
            tolerance=Tolerance(**LOOSE),
            validation_size=32,
        )
    assert not (tmp_path / "out").exists()


def test_openvino_plan_errors():
    from edgesbert.errors import ExportError
    from edgesbert.exporters.plans import openvino_steps

    with pytest.raises(ExportError, match="--optimize is for the onnx backend"):
        openvino_steps("O2")
    with pytest.raises(ExportError, match="unknown quantization 'int8-static' for the openvino backend"):
        openvino_steps(None, ["int8-static"])


def test_openvino_folder_runs_without_onnxruntime_or_torch(ov_bi, stsb_sentences):
    from edgesbert.runtime import load

    blocked = ("torch", "transformers", "onnx", "onnxruntime", "optimum", "edgesbert.exporters")
    script = f"""
import importlib.abc, json, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in {blocked!r}):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Blocker())
from edgesbert.runtime import load
model = load(sys.argv[1], variant="openvino")
print(json.dumps(model.encode(json.loads(sys.argv[2])).tolist()))
"""
    texts = stsb_sentences[:6]
    child = subprocess.run(
        [sys.executable, "-c", script, str(ov_bi), json.dumps(texts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    expected = load(ov_bi, variant="openvino").encode(texts)
    np.testing.assert_allclose(np.array(json.loads(child.stdout)), expected, atol=1e-5)


def test_static_shapes_are_declared_validated_and_padded_to(tmp_path, tiny_bi_encoder_folder, stsb_sentences):
    from edgesbert.exporters import Tolerance, export_model
    from edgesbert.reference import BiEncoder as Reference
    from edgesbert.runtime import load
    from edgesbert.runtime.static_shapes import pick_shape

    manifest = export_model(
        tiny_bi_encoder_folder("bert-mean"),
        tmp_path / "static",
        backend="openvino",
        quantize=["int8"],
        static_shapes=[(4, 16), (4, 32)],
        tolerance=Tolerance(**LOOSE),
        validation_size=24,
    )
    assert {v.static_shapes for v in manifest.variants} == {((4, 16), (4, 32))}
    assert manifest.variant("openvino").validation["max_abs_diff"] <= 1e-4  # validated in those shapes

    model = load(tmp_path / "static", variant="openvino")
    assert model.max_seq_length == 32  # the longest static shape bounds the input (the model: 64)
    texts = [*stsb_sentences[:11], "word " * 500]  # 11 + 1 rows: three padded batches of 4
    expected = Reference(tiny_bi_encoder_folder("bert-mean"), max_seq_length=32).encode(texts)
    np.testing.assert_allclose(model.encode(texts, batch_size=12), expected, atol=1e-4)
    compiled = model._backend._compiled
    assert set(compiled) <= {(4, 16), (4, 32)} and (4, 32) in compiled  # compiled per shape, on demand

    assert pick_shape([(1, 16), (1, 64)], 10) == (1, 16)
    assert pick_shape([(1, 16), (1, 64)], 17) == (1, 64)
    assert pick_shape([(1, 16), (1, 64)], 100) == (1, 64)


def test_cli_static_shapes_option(capsys, tmp_path, tiny_bi_encoder_folder):
    from edgesbert.cli import main
    from edgesbert.runtime.manifest import Manifest

    output = tmp_path / "cli"
    argv = ["export", str(tiny_bi_encoder_folder("bert-mean")), "-o", str(output), "--backend", "openvino"]
    assert main([*argv, "--static-shapes", "1x32,2X64", "--validation-size", "8"]) == 0
    assert Manifest.load(output).variant().static_shapes == ((1, 32), (2, 64))
    with pytest.raises(SystemExit):
        main([*argv, "--static-shapes", "1by32"])
    assert "expected BATCHxSEQUENCE" in capsys.readouterr().err


def test_a_stalled_inference_raises_instead_of_hanging(ov_bi, monkeypatch):
    from edgesbert.errors import EdgesbertError
    from edgesbert.runtime import load
    from edgesbert.runtime.backends import openvino as openvino_backend

    class StuckRequest:  # an infer request whose inference never ends
        def start_async(self, inputs: object) -> None:
            pass

        def wait_for(self, timeout_ms: int) -> bool:
            return False

    model = load(ov_bi, variant="openvino", performance_hint="throughput")
    idle = model._backend._graphs[None].idle
    assert idle.qsize() == model._backend.concurrent_runs  # the infer requests are made at load
    while not idle.empty():
        idle.get()
    idle.put(StuckRequest())
    monkeypatch.setattr(openvino_backend, "STALL_TIMEOUT_S", 0.05)
    with pytest.raises(EdgesbertError, match=r"inference on CPU did not finish within 0.05 s \(batch shape"):
        model.encode("a sentence")
    started = time.monotonic()
    with pytest.raises(EdgesbertError, match="infer requests on CPU became free within"):
        model.encode("a sentence")  # the stuck request was never given back
    assert time.monotonic() - started < 5


def test_int4_weights_are_smaller_steady_and_never_the_default(tmp_path, tiny_bi_encoder_folder, capsys):
    from edgesbert.cli import main
    from edgesbert.runtime import load
    from edgesbert.runtime.manifest import Manifest, Precision
    from edgesbert.runtime.verify import export_command

    source, output = tiny_bi_encoder_folder("bert-mean"), tmp_path / "int4"
    common = ["--backend", "openvino", "--validation-size", "32", "--max-spearman-drop", "1"]
    common += ["--min-cosine", "0"]
    args = ["export", str(source), "--output", str(output), "--quantize", "int4-weights", *common]
    assert main([*args, "--int4-group-size", "16"]) == 0
    manifest = Manifest.load(output)
    int4 = manifest.variant("openvino-int4-weights")
    assert int4.precision is Precision.INT4 and manifest.default_variant == "openvino"
    assert (int4.recipe["group_size"], int4.recipe["symmetric"]) == (16, False)
    assert int4.validation["batch_min_cosine"] >= 0.99999 and not int4.batch_dependent
    sizes = {p.name: p.stat().st_size for p in (output / "openvino").glob("openvino_model*.bin")}
    assert sizes["openvino_model_int4_weights.bin"] < 0.3 * sizes["openvino_model.bin"]
    texts = ["A man is playing a guitar.", "Three dogs run across a field."]
    fp32 = load(output, variant="openvino").encode(texts, normalize_embeddings=True)
    quantized = load(output, variant="openvino-int4-weights").encode(texts, normalize_embeddings=True)
    assert (fp32 * quantized).sum(axis=1).min() > 0.99
    assert "--quantize int4-weights --int4-group-size 16" in export_command(manifest, output)
    capsys.readouterr()

    assert main([*args, "--int4-group-size", "128"]) == 1  # wider than the tiny model's layers
    err = capsys.readouterr().err
    assert "--int4-group-size 128 does not divide the input width of some of the model's layers (32" in err
    assert Manifest.load(output).variant("openvino-int4-weights")  # the folder as it was
