"""ONNX int4-weights (``--quantize int4-weights``): MatMulNBits and GatherBlockQuantized (issue 32).

The OpenVINO twin (NNCF) is tested in tests/test_openvino.py.
"""

from __future__ import annotations

import pytest

from edgesbert.errors import ExportError
from edgesbert.exporters import Tolerance, export_model
from edgesbert.exporters.plans import Quantization
from edgesbert.runtime import load
from edgesbert.runtime.manifest import Manifest, Precision

LOOSE = Tolerance(max_spearman_drop=1.0, min_mean_cosine=0.0)
TEXTS = ["A man is playing a guitar.", "Three dogs run across a field.", "zebra"]


def test_onnx_int4_weights_are_smaller_steady_close_and_never_the_default(tmp_path, tiny_bi_encoder_folder):
    import onnx

    output = tmp_path / "int4"
    options = Quantization(int4_group_size=16)
    export_model(tiny_bi_encoder_folder("bert-mean"), output, quantize=["int4-weights"], quantization=options,
                 tolerance=LOOSE, validation_size=32)  # fmt: skip
    manifest = Manifest.load(output)
    int4 = manifest.variant("int4-weights")
    assert int4.precision is Precision.INT4 and manifest.default_variant == "fp32"
    recipe = int4.recipe
    assert (recipe["tool"], recipe["group_size"], recipe["symmetric"]) == ("onnxruntime", 16, False)
    graph = onnx.load(str(output / int4.file))
    ops = {node.op_type for node in graph.graph.node}
    assert {"MatMulNBits", "GatherBlockQuantized"} <= ops
    fp32_size = (output / manifest.variant("fp32").file).stat().st_size
    assert (output / int4.file).stat().st_size < 0.35 * fp32_size  # 0.14x for all-MiniLM-L6-v2
    assert int4.validation["batch_min_cosine"] >= 0.99999 and not int4.batch_dependent
    fp32 = load(output, variant="fp32").encode(TEXTS, normalize_embeddings=True)
    quantized = load(output, variant="int4-weights").encode(TEXTS, normalize_embeddings=True)
    assert (fp32 * quantized).sum(axis=1).min() > 0.99


def test_a_group_size_matmulnbits_cannot_take_is_a_clear_error(tmp_path, tiny_bi_encoder_folder):
    options = Quantization(int4_group_size=24)
    with pytest.raises(ExportError, match="--int4-group-size 24 is not one onnxruntime's MatMulNBits takes"):
        export_model(tiny_bi_encoder_folder("bert-mean"), tmp_path / "out", quantize=["int4-weights"],
                     quantization=options, tolerance=LOOSE, validation_size=32)  # fmt: skip
    assert not (tmp_path / "out").exists()  # nothing left behind
