"""Step: graph optimization levels O1-O4, with the meanings optimum and sentence-transformers use.

O1 basic graph rewrites; O2 adds the transformer fusions (attention, embedding layer norm, skip layer
norm, bias GELU); O3 adds the approximate (tanh) GELU; O4 is O3 in fp16, meant for GPUs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edgesbert.errors import ExportError
from edgesbert.exporters.context import ExportContext, derived_variant
from edgesbert.exporters.layout import onnx_file
from edgesbert.exporters.onnx_files import save_onnx
from edgesbert.runtime.manifest import GraphVariant, Precision

LEVELS = ("O1", "O2", "O3", "O4")
log = logging.getLogger("edgesbert.export")


def attention_shape(ctx: ExportContext) -> tuple[int, int]:
    """(heads, hidden size) of the reference's transformer, which the attention fusion needs."""
    config = ctx.reference.transformer_config
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", None) or 0
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", None) or 0
    return int(heads), int(hidden)


@dataclass(frozen=True)
class OptimizeGraph:
    """Write ``onnx/model_<level>.onnx`` from the fp32 graph."""

    level: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ExportError(f"unknown optimization level {self.level!r}; choose one of {', '.join(LEVELS)}")

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Optimize the fp32 variant of ``ctx`` and describe the result."""
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model

        source = ctx.variant("fp32")
        file = onnx_file(f"model_{self.level}")
        if self.level == "O1":
            model = optimize_model(
                str(ctx.folder / source.file), model_type="bert", opt_level=1, only_onnxruntime=True
            )
        else:
            heads, hidden = attention_shape(ctx)
            options = FusionOptions("bert")
            options.enable_gelu_approximation = self.level in ("O3", "O4")
            model = optimize_model(
                str(ctx.folder / source.file),
                model_type="bert",
                num_heads=heads,
                hidden_size=hidden,
                optimization_options=options,
                opt_level=0,
            )
            fused = {name: n for name, n in model.get_fused_operator_statistics().items() if n}
            log.info("%s fusions: %s", self.level, fused)
            if self.level == "O4":
                model.convert_float_to_float16(keep_io_types=True)
        save_onnx(model.model, ctx.path(file))
        precision = Precision.FP16 if self.level == "O4" else Precision.FP32
        return derived_variant(ctx, source, self.level, file, precision, {"optimize": self.level})
