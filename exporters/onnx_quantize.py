"""Steps: fp16 conversion, and dynamic or static int8 quantization with onnxruntime's quantizer.

Int8 presets per instruction set: on x86 without VNNI the u8 x s8 multiply-add can saturate, so the
weights use 7 bits there (``reduce_range``); per-channel weight scales keep the accuracy. The avx2
preset was chosen by measurement on all-MiniLM-L6-v2 (benchmarks/results/int8-presets.md); the others
follow onnxruntime's guidance for their instruction sets.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import helper, numpy_helper
from tqdm.auto import tqdm

from edgesbert.errors import ExportError
from edgesbert.exporters.calibration import CalibrationSource, Text
from edgesbert.exporters.context import ExportContext, derived_variant
from edgesbert.exporters.int8_search import Int8Recipe
from edgesbert.exporters.layout import onnx_file
from edgesbert.exporters.memory import release_memory
from edgesbert.exporters.onnx_files import save_onnx
from edgesbert.exporters.ort_quantize import (
    calibrate,
    in_parts,
    shape_reload_in_place,
    weights_apart,
    without_preprocessing_advice,
)
from edgesbert.exporters.progress import phase
from edgesbert.runtime.cpu import this_cpu
from edgesbert.runtime.manifest import GraphVariant, Precision

if TYPE_CHECKING:
    from onnxruntime.quantization import TensorsData

log = logging.getLogger("edgesbert.export")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
STATIC_FORMATS = ("qoperator", "qdq")


@dataclass(frozen=True)
class Int8Preset:
    """Weight quantization choices for one instruction set."""

    name: str
    per_channel: bool
    reduce_range: bool


INT8_PRESETS = {
    p.name: p
    for p in (
        Int8Preset("arm64", per_channel=True, reduce_range=False),
        Int8Preset("avx2", per_channel=True, reduce_range=True),
        Int8Preset("avx512", per_channel=True, reduce_range=True),
        Int8Preset("avx512_vnni", per_channel=True, reduce_range=False),
    )
}


def detect_int8_preset() -> Int8Preset:
    """The preset for the CPU this runs on (its /proc/cpuinfo flags on Linux; avx2 when unknown)."""
    cpu = this_cpu()
    if cpu.architecture in ("arm64", "aarch64"):
        return INT8_PRESETS["arm64"]
    if "avx512_vnni" in cpu.flags:
        return INT8_PRESETS["avx512_vnni"]
    if "avx512f" in cpu.flags and "avx512bw" in cpu.flags:
        return INT8_PRESETS["avx512"]
    return INT8_PRESETS["avx2"]


def int8_preset(name: str | None) -> Int8Preset:
    """The named preset, or the detected one for None."""
    if name is None:
        preset = detect_int8_preset()
        log.info("int8 preset %s, detected from this CPU", preset.name)
        return preset
    if name not in INT8_PRESETS:
        raise ExportError(f"unknown int8 preset {name!r}; choose one of {', '.join(INT8_PRESETS)}")
    return INT8_PRESETS[name]


def down_projections(graph: Path) -> list[str]:
    """MatMul nodes whose weight narrows the width (the feed-forward output layers).

    Their inputs, GELU outputs, have long-tailed ranges that one static int8 scale cannot hold: quantizing
    them costs all-MiniLM-L6-v2 1.8 points of STSb Spearman, keeping them float 0.15.
    """
    model = onnx.load(str(graph), load_external_data=False)
    shapes = {tensor.name: tuple(tensor.dims) for tensor in model.graph.initializer}
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul"
        and len(shape := shapes.get(node.input[1], ())) == 2
        and shape[0] > shape[1]
    ]


def int8_float_weights(model: onnx.ModelProto) -> None:
    """Store the float weights static quantization leaves as int8 codes with one scale per row or column.

    Two kinds, which are most of the file once the other matrix products are int8 (all-MiniLM-L6-v2: 61
    of its 69 MB):

    - the token-embedding table (the Gather on ``input_ids``), one scale per token: each looked-up row
      turns back into float right away (Gather, Cast, Mul by its scale);
    - the weights of the matrix products kept float (``down_projections``), one scale per output column:
      Cast and Mul on constants, which onnxruntime folds into float weights when it loads the graph, so
      these products still run in float on float activations.

    The rest of the graph is unchanged; each weight moves by at most half a step of its scale.
    """
    graph = model.graph
    tables = {tensor.name: tensor for tensor in graph.initializer}
    readers = Counter(name for node in graph.node for name in node.input)
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:  # in order, each edited node replaced where it stood
        weight_input = {"Gather": 0, "MatMul": 1}.get(node.op_type)
        weight = None if weight_input is None else tables.get(node.input[weight_input])
        if (
            weight is None
            or weight.data_type != onnx.TensorProto.FLOAT
            or len(weight.dims) != 2
            or readers[weight.name] != 1  # a shared weight is left float (none in these graphs)
        ):
            nodes.append(node)
        elif node.op_type == "MatMul":
            nodes += _int8_constant(graph, weight, node)
        elif node.input[1] == "input_ids" and next((a.i for a in node.attribute if a.name == "axis"), 0) == 0:
            nodes += _int8_lookup(graph, weight, node)
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


def _int8_codes(graph: onnx.GraphProto, weight: onnx.TensorProto, axis: int) -> tuple[str, str]:
    """Replace the float initializer ``weight`` by int8 codes and scales; returns their names.

    One scale per slice along ``axis``'s other axis (per row for axis 1, per column for axis 0).
    """
    values = numpy_helper.to_array(weight)
    scales = np.abs(values).max(axis=axis, keepdims=True) / 127
    scales[scales == 0] = 1
    codes = np.clip(np.round(values / scales), -127, 127).astype(np.int8)
    graph.initializer.remove(weight)
    names = f"{weight.name}_int8", f"{weight.name}_scale"
    graph.initializer.extend(
        [numpy_helper.from_array(codes, names[0]), numpy_helper.from_array(scales, names[1])]
    )
    return names


def _int8_lookup(
    graph: onnx.GraphProto, table: onnx.TensorProto, node: onnx.NodeProto
) -> list[onnx.NodeProto]:
    codes, scales = _int8_codes(graph, table, axis=1)
    out, name, float32 = node.output[0], node.name, onnx.TensorProto.FLOAT
    return [
        helper.make_node("Gather", [codes, node.input[1]], [f"{out}_int8"], name=f"{name}_int8"),
        helper.make_node("Cast", [f"{out}_int8"], [f"{out}_codes"], name=f"{name}_cast", to=float32),
        helper.make_node("Gather", [scales, node.input[1]], [f"{out}_scale"], name=f"{name}_scale"),
        helper.make_node("Mul", [f"{out}_codes", f"{out}_scale"], [out], name=name),
    ]


def _int8_constant(
    graph: onnx.GraphProto, weight: onnx.TensorProto, node: onnx.NodeProto
) -> list[onnx.NodeProto]:
    codes, scales = _int8_codes(graph, weight, axis=0)
    name, float32 = node.input[1], onnx.TensorProto.FLOAT
    return [
        helper.make_node("Cast", [codes], [f"{name}_codes"], name=f"{node.name}_cast", to=float32),
        helper.make_node("Mul", [f"{name}_codes", scales], [f"{name}_float"], name=f"{node.name}_scale"),
        helper.make_node("MatMul", [node.input[0], f"{name}_float"], list(node.output), name=node.name),
    ]


def _variant_name(source: GraphVariant, suffix: str) -> str:
    """``suffix`` for a variant made from the fp32 graph, else prefixed by its source: ``packed-int8``."""
    return suffix if source.name == "fp32" else f"{source.name}-{suffix}"


@dataclass(frozen=True)
class Float16:
    """Convert the float graph to fp16 weights and arithmetic, keeping float32 inputs and outputs."""

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Write ``onnx/model_fp16.onnx`` (``model_O2_fp16.onnx`` from an O2 graph) and describe it."""
        from onnxruntime.transformers.float16 import convert_float_to_float16

        source = ctx.float_source()
        name = _variant_name(source, "fp16")
        file = onnx_file("model_" + name.replace("-", "_"))
        model = convert_float_to_float16(onnx.load(str(ctx.folder / source.file)), keep_io_types=True)
        save_onnx(model, ctx.path(file))
        return derived_variant(ctx, source, name, file, Precision.FP16, {"quantize": "fp16"})


@dataclass(frozen=True)
class DynamicInt8:
    """Int8 weights, with activations quantized on the fly: no calibration data needed."""

    preset: Int8Preset
    recipe: Int8Recipe = field(default_factory=Int8Recipe)
    packed: bool = False  # quantize the packed graph (``packed-int8``) instead of the padded one

    def alternatives(self) -> tuple[Int8Recipe, ...]:
        """None before keeping MatMuls float."""
        return ()

    def calibration_texts(self, ctx: ExportContext) -> list[Text]:
        """The built-in texts: it needs none, but the accuracy-aware search measures on them."""
        return CalibrationSource().texts(pairs=ctx.kind.value == "cross-encoder")

    def already_float(self, ctx: ExportContext) -> frozenset[str]:
        """None: every MatMul with a constant weight is quantized."""
        return frozenset()

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Write ``onnx/model_qint8_<preset>.onnx`` (sentence-transformers' name) and describe it."""
        from onnxruntime.quantization import QuantType, quantize_dynamic

        source = ctx.variant("packed") if self.packed else ctx.float_source()
        name = _variant_name(source, "int8")
        file = onnx_file(f"model{'_packed' if self.packed else ''}_qint8_{self.preset.name}")
        with without_preprocessing_advice(), shape_reload_in_place(), in_parts(ctx.path(file)) as parts:
            quantize_dynamic(
                ctx.folder / source.file,
                parts,
                weight_type=QuantType.QInt8,
                per_channel=self.preset.per_channel,
                reduce_range=self.preset.reduce_range,
                nodes_to_exclude=list(self.recipe.keep_float),
                extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
                use_external_data_format=True,
            )
            release_memory()  # what the quantizer held, before its output is read
            save_onnx(onnx.load(str(parts)), ctx.path(file))
        recipe: dict[str, str | int | float | bool] = {
            "quantize": "int8-dynamic",
            "preset": self.preset.name,
            "per_channel": self.preset.per_channel,
            "reduce_range": self.preset.reduce_range,
        }
        return derived_variant(ctx, source, name, file, Precision.INT8, recipe)


@dataclass(frozen=True)
class StaticInt8:
    """Int8 weights and activations, with activation ranges calibrated on real text."""

    preset: Int8Preset
    calibration: CalibrationSource = field(default_factory=CalibrationSource)
    method: str = "minmax"
    quant_format: str = "qoperator"
    recipe: Int8Recipe = field(default_factory=Int8Recipe)
    packed: bool = False  # quantize the packed graph (``packed-int8-static``) instead of the padded one

    def __post_init__(self) -> None:
        if self.method not in CALIBRATION_METHODS:
            raise ExportError(f"unknown calibration method {self.method!r}; choose {CALIBRATION_METHODS}")
        if self.quant_format not in STATIC_FORMATS:
            raise ExportError(f"unknown static format {self.quant_format!r}; choose {STATIC_FORMATS}")

    def alternatives(self) -> tuple[Int8Recipe, ...]:
        """None before keeping more MatMuls float."""
        return ()

    def calibration_texts(self, ctx: ExportContext) -> list[Text]:
        """The texts it calibrates on."""
        return self.calibration.texts(pairs=ctx.kind.value == "cross-encoder")

    def already_float(self, ctx: ExportContext) -> frozenset[str]:
        """The feed-forward down-projections, which its own recipe keeps float."""
        return frozenset(down_projections(ctx.folder / self._source(ctx).file))

    def _source(self, ctx: ExportContext) -> GraphVariant:
        # onnxruntime's static quantizer fails on fused attention, so it always starts from a plain graph
        return ctx.variant("packed" if self.packed else "fp32")

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Calibrate, write ``onnx/model_quantized.onnx`` (transformers.js' ``q8``) and describe it."""
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static, save_tensors_data

        source = self._source(ctx)
        name = _variant_name(source, "int8-static")
        file = onnx_file("model_packed_quantized" if self.packed else "model_quantized")
        texts = self.calibration_texts(ctx)
        formats = {"qoperator": QuantFormat.QOperator, "qdq": QuantFormat.QDQ}
        keep_float = [*sorted(self.already_float(ctx)), *self.recipe.keep_float]
        release_memory()  # the graph read for its down-projections
        with without_preprocessing_advice(), in_parts(ctx.path(file)) as parts:
            graph = weights_apart(ctx.folder / source.file, parts.parent)
            ranges = self._ranges(ctx, graph, texts, source)
            save_tensors_data(ranges, parts.parent / "ranges.json")
            with phase("quantizing to static int8"):
                quantize_static(
                    graph,
                    parts,
                    None,  # calibrated already: the ranges come from the file
                    quant_format=formats[self.quant_format],
                    op_types_to_quantize=["MatMul"],
                    per_channel=self.preset.per_channel,
                    reduce_range=self.preset.reduce_range,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=ranges.calibration_method,
                    nodes_to_exclude=keep_float,
                    extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
                    use_external_data_format=True,
                    calibration_cache_path=parts.parent / "ranges.json",
                )
                release_memory()  # what the quantizer held, before its output is read
                model = onnx.load(str(parts))
        int8_float_weights(model)
        save_onnx(model, ctx.path(file))
        recipe: dict[str, str | int | float | bool] = {
            "quantize": "int8-static",
            "preset": self.preset.name,
            "per_channel": self.preset.per_channel,
            "reduce_range": self.preset.reduce_range,
            "format": self.quant_format,
            "calibration": self.calibration.describe(),
            "calibration_method": self.method,
            "kept_float": "feed-forward down-projections",
            "float_weights": "stored int8, one scale per token or output column",
            "calibration_samples": len(texts),
        }
        return derived_variant(ctx, source, name, file, Precision.INT8, recipe)

    def _ranges(
        self, ctx: ExportContext, graph: Path, texts: list[Text], source: GraphVariant
    ) -> TensorsData:
        """The activation ranges on ``texts``, calibrated once per export, kept for the int8 search's retries.

        One text per run: the calibration holds one text's activations, and padding never enters the ranges.
        """
        key = (source.file, self.method, tuple(texts))
        if key not in ctx.calibrations:
            runs = (ctx.graph_feed(source, [text]) for text in tqdm(texts, desc="Calibrating", unit="text"))
            with phase(f"calibrating on {len(texts)} texts"):
                ctx.calibrations[key] = calibrate(graph, runs, self.method, graph.parent)
            release_memory()
        return ctx.calibrations[key]
