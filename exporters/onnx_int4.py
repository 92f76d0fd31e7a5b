"""Step: 4-bit weights for onnxruntime (``--quantize int4-weights`` on ONNX), for large models on laptops.

onnxruntime's weight-only quantizer rewrites each MatMul with a constant weight as MatMulNBits (4-bit
codes, one scale and zero point per ``group_size`` inputs) and the token table as GatherBlockQuantized.
Activations stay float: nothing is calibrated and a text's vector does not depend on its batch.
all-MiniLM-L6-v2: 12.3 MB (0.14x the fp32 graph), mean cosine to it 0.950 (symmetric 0.939).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from edgesbert.errors import ExportError, require
from edgesbert.exporters.context import ExportContext, derived_variant
from edgesbert.exporters.layout import onnx_file
from edgesbert.exporters.onnx_files import save_onnx
from edgesbert.exporters.progress import quiet
from edgesbert.runtime.manifest import GraphVariant, Precision

#: group sizes MatMulNBits takes: powers of two from 16
GROUP_SIZES = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class Int4Weights:
    """The fp32 graph (or the packed one) with 4-bit MatMul weights and token table."""

    symmetric: bool = False
    group_size: int = 128
    packed: bool = False

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Write ``onnx/model_int4_weights.onnx`` (``model_packed_int4_weights.onnx``) and describe it."""
        if self.group_size not in GROUP_SIZES:
            raise ExportError(
                f"--int4-group-size {self.group_size} is not one onnxruntime's MatMulNBits takes; choose one "
                f"of {', '.join(map(str, GROUP_SIZES))}"
            )
        require("onnx_ir", "export")  # onnxruntime's quantizer needs it
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )

        source = ctx.variant("packed" if self.packed else "fp32")
        model = onnx.load(str(ctx.folder / source.file))
        opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        config = DefaultWeightOnlyQuantConfig(
            block_size=self.group_size,
            is_symmetric=self.symmetric,
            op_types_to_quantize=("MatMul", "Gather"),
            quant_axes=(("MatMul", 0), ("Gather", 1)),
        )
        # a group of zeros (a padding token's row) has no scale: the quantizer divides by zero, then uses 8
        with quiet("onnxruntime.quantization.matmul_nbits_quantizer"), np.errstate(invalid="ignore"):
            quantizer = MatMulNBitsQuantizer(model, algo_config=config)
            quantizer.process()
        quantized = quantizer.model.model
        for entry in quantized.opset_import:  # it declares opset 21; the other nodes are the source's
            if entry.domain in ("", "ai.onnx"):
                entry.version = opset
        name = "int4-weights" if source.name == "fp32" else f"{source.name}-int4-weights"
        file = onnx_file("model_" + name.replace("-", "_"))
        save_onnx(quantized, ctx.path(file))
        recipe: dict[str, str | int | float | bool] = {
            "quantize": "int4-weights",
            "tool": "onnxruntime",
            "group_size": self.group_size,
            "symmetric": self.symmetric,
        }
        return derived_variant(ctx, source, name, file, Precision.INT4, recipe)
