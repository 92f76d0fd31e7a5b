"""Steps for OpenVINO: IR conversion (fp32 or fp16 weights), bf16, NNCF static int8, int8 weight compression.

The IR is converted from the fp32 ONNX graph and keeps only its token embeddings (OpenVINO GenAI pools itself
and loads single-output graphs; edgesbert pools them), except for models with Dense layers, whose pooled
output stays inside. The fp32 step also writes the tokenizer as an OpenVINO model.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesbert.errors import ExportError, require
from edgesbert.exporters.calibration import CalibrationSource, Text
from edgesbert.exporters.context import ExportContext, derived_variant
from edgesbert.exporters.int8_search import Int8Recipe
from edgesbert.exporters.layout import TOKEN_OUTPUT, openvino_file
from edgesbert.exporters.progress import phase, quiet
from edgesbert.reference import BiEncoder
from edgesbert.runtime.cpu import has_bf16, this_cpu
from edgesbert.runtime.manifest import SENTENCE_OUTPUT, GraphVariant, Precision

if TYPE_CHECKING:
    import openvino as ov

IR_NAME = "openvino"


def _ir_variant(
    ctx: ExportContext, source: GraphVariant, name: str, xml: str, precision: Precision, recipe: dict
) -> GraphVariant:
    return replace(derived_variant(ctx, source, name, xml, precision, recipe), backend="openvino")


def write_tokenizer_ir(ctx: ExportContext) -> None:
    """``openvino/openvino_tokenizer.xml``: the tokenizer as an OpenVINO model, for OpenVINO GenAI."""
    require("openvino_tokenizers", "export")
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer

    tokenizer = convert_tokenizer(ctx.reference.tokenizer, with_detokenizer=False)
    ov.save_model(tokenizer, str(ctx.path(openvino_file("openvino_tokenizer"))))


@dataclass(frozen=True)
class OpenVinoIR:
    """Convert the fp32 ONNX graph into ``openvino/openvino_model.xml`` (fp32) or ``..._fp16.xml``."""

    fp16: bool = False

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Convert, save and describe the IR."""
        require("openvino", "openvino")
        import openvino as ov

        source = ctx.variant("fp32")
        model = ov.convert_model(str(ctx.folder / source.file))
        reference = ctx.reference
        if (
            isinstance(reference, BiEncoder)
            and SENTENCE_OUTPUT in source.outputs
            and not reference.layout.dense
        ):
            # OpenVINO GenAI pools itself and loads only single-output graphs; edgesbert pools such a graph
            model = ov.Model(
                [model.output(TOKEN_OUTPUT).get_node()], model.get_parameters(), model.friendly_name
            )
            source = replace(source, outputs=(TOKEN_OUTPUT,))
        if not self.fp16:
            write_tokenizer_ir(ctx)
        name, xml = (
            (f"{IR_NAME}-fp16", openvino_file("openvino_model_fp16"))
            if self.fp16
            else (IR_NAME, openvino_file("openvino_model"))
        )
        ov.save_model(model, str(ctx.path(xml)), compress_to_fp16=self.fp16)
        precision = Precision.FP16 if self.fp16 else Precision.FP32
        recipe = {"convert": "openvino", **({"quantize": "fp16"} if self.fp16 else {})}
        return _ir_variant(ctx, source, name, xml, precision, recipe)


@dataclass(frozen=True)
class OpenVinoPackedIR:
    """Convert the packed ONNX graph (``packed_graph``) into ``openvino/openvino_model_packed.xml``."""

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Convert, save and describe the packed IR."""
        require("openvino", "openvino")
        import openvino as ov

        source = ctx.variant("packed")
        model = ov.convert_model(str(ctx.folder / source.file))
        xml = openvino_file("openvino_model_packed")
        ov.save_model(model, str(ctx.path(xml)), compress_to_fp16=False)
        return _ir_variant(ctx, source, f"{IR_NAME}-packed", xml, Precision.FP32, {"convert": "openvino"})


@dataclass(frozen=True)
class OpenVinoBf16:
    """The fp32 IR again, as a variant the runtime runs with OpenVINO's bf16 precision hint.

    No new file: bf16 is OpenVINO's arithmetic on CPUs with AMX or AVX-512 BF16, where fp32 graphs run
    faster for a drift of ~1e-3 (all-MiniLM-L6-v2 on an AVX-512 BF16 EPYC: 1.44x the fp32 IR's
    sentences/s). Exported only on such a CPU, so that its validation figures
    are bf16's; on a CPU without bf16 it runs in fp32.
    """

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Describe ``openvino/openvino_model.xml`` once more, as ``openvino-bf16``."""
        if not has_bf16():
            raise ExportError(
                "--quantize bf16 needs a CPU with AMX or AVX-512 BF16, where its validation measures "
                f"bf16; this one has neither ({this_cpu().describe()}). Export it on such a machine, or "
                "leave it out"
            )
        source = ctx.variant(IR_NAME)
        recipe = {"inference_precision": "bf16"}
        return replace(source, name=f"{IR_NAME}-bf16", precision=Precision.BF16, validation={},
                       recipe={**source.recipe, **recipe})  # fmt: skip


@dataclass(frozen=True)
class NncfInt8:
    """Post-training int8 quantization of weights and activations with NNCF, calibrated on real text.

    Its own recipe leaves SmoothQuant off (measured better on all-MiniLM-L6-v2); the accuracy-aware search
    (``int8_search``) also tries NNCF's transformer default, SmoothQuant on the MatMuls with alpha 0.95.
    """

    calibration: CalibrationSource = field(default_factory=CalibrationSource)
    recipe: Int8Recipe = field(default_factory=Int8Recipe)
    packed: bool = False  # quantize the packed IR (``openvino-packed-int8``) instead of the padded one

    def alternatives(self) -> tuple[Int8Recipe, ...]:
        """SmoothQuant, NNCF's default for transformers."""
        return (replace(self.recipe, smooth_quant=0.95),)

    def calibration_texts(self, ctx: ExportContext) -> list[Text]:
        """The texts it calibrates on."""
        return self.calibration.texts(pairs=ctx.kind.value == "cross-encoder")

    def already_float(self, ctx: ExportContext) -> frozenset[str]:
        """None: NNCF quantizes every MatMul."""
        return frozenset()

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Calibrate, quantize, save and describe ``openvino/openvino_model_qint8_quantized.xml``."""
        require("nncf", "openvino")
        import nncf
        import openvino as ov

        source = ctx.variant(_ir_source(self.packed))
        texts = self.calibration_texts(ctx)

        def features(text: Text) -> dict[str, np.ndarray]:  # one text per run: no padding in the ranges
            return ctx.graph_feed(source, [text])

        alpha = self.recipe.smooth_quant
        advanced = nncf.AdvancedQuantizationParameters(
            smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=alpha if alpha else -1)
        )
        model = ov.Core().read_model(str(ctx.folder / source.file))
        with phase(f"calibrating on {len(texts)} texts and quantizing with NNCF"), quiet("nncf"):
            model = nncf.quantize(
                model,
                nncf.Dataset(texts, features),
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(texts),
                ignored_scope=nncf.IgnoredScope(
                    names=[*self.recipe.keep_float, *activation_products(model)], validate=False
                ),
                advanced_parameters=advanced,
            )
        xml = openvino_file(f"{_stem(source)}_qint8_quantized")
        ov.save_model(model, str(ctx.path(xml)), compress_to_fp16=False)
        recipe = {
            "quantize": "int8-static",
            "tool": "nncf",
            "calibration": self.calibration.describe(),
            "calibration_samples": len(texts),
            "smooth_quant": alpha or False,
        }
        return _ir_variant(ctx, source, f"{source.name}-int8", xml, Precision.INT8, recipe)


def activation_products(model: ov.Model) -> list[str]:
    """MatMuls of two activations (no weight), which int8 would not hold: they stay float.

    In a packed graph, the per-text pooling (0/1 weights times token vectors): in int8 on AVX2, its sums of
    products saturate 16-bit pairs, moving a text's vector with its neighbours (batch cosine 0.998 on a
    tiny BERT). Attention is fused before NNCF sees it, so padded graphs have none.
    """

    def constant(node: ov.Node) -> bool:
        kind = node.get_type_name()
        if kind in ("Convert", "Reshape", "Transpose", "Unsqueeze", "Squeeze"):
            return constant(node.input_value(0).get_node())
        return kind == "Constant"

    return [
        op.get_friendly_name()
        for op in model.get_ordered_ops()
        if op.get_type_name() == "MatMul" and not any(constant(v.get_node()) for v in op.input_values())
    ]


@dataclass(frozen=True)
class NncfWeightsInt8:
    """Int8 weight compression with NNCF: activations stay float, no calibration needed."""

    packed: bool = False  # compress the packed IR (``openvino-packed-int8-weights``) instead

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Compress, save and describe ``openvino/openvino_model_int8_weights.xml``."""
        import nncf

        recipe = {"quantize": "int8-weights", "tool": "nncf"}
        mode = nncf.CompressWeightsMode.INT8_ASYM
        return _compressed(ctx, self.packed, "int8", Precision.INT8, recipe, mode=mode)


@dataclass(frozen=True)
class NncfWeightsInt4:
    """4-bit weight compression with NNCF, for large models on laptops: activations stay float.

    Every MatMul's weights in int4 with one scale (and, asymmetric, one zero point) per ``group_size``
    inputs; the embedding table in int8 (NNCF's backup precision). all-MiniLM-L6-v2: 0.2x the fp32 IR.
    """

    symmetric: bool = False
    group_size: int = 128
    packed: bool = False

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Compress, save and describe ``openvino/openvino_model_int4_weights.xml``."""
        import nncf

        mode = nncf.CompressWeightsMode.INT4_SYM if self.symmetric else nncf.CompressWeightsMode.INT4_ASYM
        recipe = {
            "quantize": "int4-weights",
            "tool": "nncf",
            "group_size": self.group_size,
            "symmetric": self.symmetric,
        }
        if self.group_size < 1:
            raise ExportError(f"--int4-group-size must be at least 1, got {self.group_size}")
        options = {"mode": mode, "group_size": self.group_size, "ratio": 1.0}
        try:
            return _compressed(ctx, self.packed, "int4", Precision.INT4, recipe, **options)
        except Exception as e:
            if type(e).__name__ != "InvalidGroupSizeError":
                raise
            widths = sorted({int(w) for w in re.findall(r"channel size: (\d+)", str(e))})
            raise ExportError(
                f"--int4-group-size {self.group_size} does not divide the input width of some of the model's"
                f" layers ({', '.join(map(str, widths))}); choose a size that divides them (such as "
                f"{math.gcd(*widths) if widths else 32})"
            ) from None


def _compressed(
    ctx: ExportContext, packed: bool, bits: str, precision: Precision, recipe: dict, **options: Any
) -> GraphVariant:
    """The fp32 IR (or the packed one) with NNCF's weight compression, saved as ``..._{bits}_weights.xml``."""
    require("nncf", "openvino")
    import nncf
    import openvino as ov

    source = ctx.variant(_ir_source(packed))
    with quiet("nncf"):
        model = nncf.compress_weights(ov.Core().read_model(str(ctx.folder / source.file)), **options)
    xml = openvino_file(f"{_stem(source)}_{bits}_weights")
    ov.save_model(model, str(ctx.path(xml)), compress_to_fp16=False)
    return _ir_variant(ctx, source, f"{source.name}-{bits}-weights", xml, precision, recipe)


def _ir_source(packed: bool) -> str:
    """The fp32 IR a quantization step starts from."""
    return f"{IR_NAME}-packed" if packed else IR_NAME


def _stem(source: GraphVariant) -> str:
    """``openvino_model`` or ``openvino_model_packed``: what the files made from ``source`` start with."""
    return source.file.rsplit("/", 1)[-1].removesuffix(".xml")
