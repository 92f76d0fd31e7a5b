"""Which steps an export runs: one plan builder per backend. Add a backend or a step here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from edgesbert.errors import ExportError
from edgesbert.exporters.calibration import CalibrationSource, Text
from edgesbert.exporters.context import Intermediate, Step
from edgesbert.exporters.onnx_graph import onnx_fp32
from edgesbert.exporters.onnx_int4 import Int4Weights
from edgesbert.exporters.onnx_optimize import LEVELS, OptimizeGraph
from edgesbert.exporters.onnx_quantize import DynamicInt8, Float16, StaticInt8, int8_preset
from edgesbert.exporters.openvino_ir import (
    NncfInt8,
    NncfWeightsInt4,
    NncfWeightsInt8,
    OpenVinoBf16,
    OpenVinoIR,
    OpenVinoPackedIR,
)
from edgesbert.exporters.packed_graph import PackedGraph
from edgesbert.exporters.text_graphs import WithTokenizer

#: ``--quantize`` choices per backend, and what they make.
QUANTIZATIONS = {
    "onnx": {
        "int8": "dynamic int8: int8 weights, activations quantized on the fly (no calibration)",
        "int8-static": "static int8: weights and activations, activation ranges calibrated on real text",
        "fp16": "fp16 weights and arithmetic, float32 inputs and outputs (for GPUs)",
        "int4-weights": "4-bit weights in groups (MatMulNBits), the token table too: for large models",
    },
    "openvino": {
        "int8": "static int8 with NNCF: weights and activations, calibrated on real text",
        "int8-weights": "int8 weights only (NNCF weight compression): smaller, activations stay float",
        "int4-weights": "4-bit weights in groups (NNCF), the token table in int8: for large models",
        "fp16": "fp16 weights (the device decides the arithmetic)",
        "bf16": "the fp32 IR run in bf16 on CPUs with AMX or AVX-512 BF16 (opt-in, never the default)",
    },
}


def _check_quantize(backend: str, quantize: Sequence[str]) -> None:
    choices = QUANTIZATIONS[backend]
    unknown = [q for q in quantize if q not in choices]
    if unknown:
        raise ExportError(
            f"unknown quantization {unknown[0]!r} for the {backend} backend; choose from {', '.join(choices)}"
        )


@dataclass(frozen=True)
class Quantization:
    """Options of the int8 steps."""

    preset: str | None = None  # arm64, avx2, avx512, avx512_vnni; None detects the CPU
    calibration: str | Path | Sequence[Text] | None = None  # a file, a list, or None for built-in text
    column: str | None = None  # csv/tsv column or jsonl field ("q,a" for pairs)
    samples: int = 256
    method: str = "minmax"  # minmax, entropy, percentile
    static_format: str = "qoperator"  # qoperator, qdq
    int4_group_size: int = 128  # int4-weights: inputs sharing one scale
    int4_symmetric: bool = False  # int4-weights: no zero points (smaller, less exact)

    def calibration_source(self) -> CalibrationSource:
        """The calibration part of these options."""
        return CalibrationSource(self.calibration, self.column, self.samples)


def onnx_steps(
    optimize: str | None = None, quantize: Sequence[str] = (), options: Quantization | None = None
) -> list[Step]:
    """fp32 ONNX, then optionally an optimized graph, then one variant per quantization."""
    options = options or Quantization()
    if optimize is not None and optimize not in LEVELS:
        raise ExportError(f"unknown optimization level {optimize!r}; choose one of {', '.join(LEVELS)}")
    _check_quantize("onnx", quantize)
    if optimize == "O4" and quantize:
        raise ExportError("O4 already makes an fp16 GPU graph; quantize with O1-O3 or without --optimize")
    steps: list[Step] = [onnx_fp32]
    if optimize:
        steps.append(OptimizeGraph(optimize))
    for name in dict.fromkeys(quantize):
        if name == "fp16":
            steps.append(Float16())
        elif name == "int8":
            steps.append(DynamicInt8(int8_preset(options.preset)))
        elif name == "int4-weights":
            steps.append(Int4Weights(options.int4_symmetric, options.int4_group_size))
        else:
            steps.append(
                StaticInt8(
                    int8_preset(options.preset),
                    options.calibration_source(),
                    options.method,
                    options.static_format,
                )
            )
    return steps


def openvino_steps(
    optimize: str | None = None, quantize: Sequence[str] = (), options: Quantization | None = None
) -> list[Step]:
    """fp32 OpenVINO IR (converted from fp32 ONNX, which is not kept), then one variant per quantization."""
    options = options or Quantization()
    if optimize is not None:
        raise ExportError(
            "--optimize is for the onnx backend; OpenVINO optimizes the graph when it compiles it"
        )
    _check_quantize("openvino", quantize)
    steps: list[Step] = [Intermediate(onnx_fp32), OpenVinoIR()]
    for name in dict.fromkeys(quantize):
        if name == "fp16":
            steps.append(OpenVinoIR(fp16=True))
        elif name == "int8":
            steps.append(NncfInt8(options.calibration_source()))
        elif name == "bf16":
            steps.append(OpenVinoBf16())
        elif name == "int4-weights":
            steps.append(NncfWeightsInt4(options.int4_symmetric, options.int4_group_size))
        else:
            steps.append(NncfWeightsInt8())
    return steps


#: backend name -> plan builder; ``edgesbert export --backend NAME`` uses ``BACKENDS[NAME]``.
BACKENDS: dict[str, Callable[..., list[Step]]] = {"onnx": onnx_steps, "openvino": openvino_steps}


#: steps with a packed twin: the int8 and int4 ones (fp16 is a GPU format, where padding costs less)
PACKED_TWINS = (DynamicInt8, StaticInt8, NncfInt8, NncfWeightsInt8, NncfWeightsInt4, Int4Weights)


def with_packed(steps: list[Step], backend: str) -> list[Step]:
    """``steps`` with a packed graph and a packed twin of each int8 step.

    The packed graph is traced beside the fp32 one (for OpenVINO, its IR follows the fp32 IR); the twins
    come last.
    """
    twins: list[Step] = [replace(step, packed=True) for step in steps if isinstance(step, PACKED_TWINS)]
    if backend == "onnx":
        return [steps[0], PackedGraph(), *steps[1:], *twins]
    return [steps[0], Intermediate(PackedGraph()), steps[1], OpenVinoPackedIR(), *steps[2:], *twins]


def with_tokenizer(steps: list[Step]) -> list[Step]:
    """``steps``, then a string-in twin (the tokenizer inside) of each variant they keep.

    A bf16 variant gets none: it shares the fp32 IR, whose twin a bf16 run would share too; nor does a
    packed graph, whose rows the runtime builds from tokens.
    """
    kept = [
        i
        for i, step in enumerate(steps)
        if not isinstance(step, Intermediate | OpenVinoBf16 | PackedGraph | OpenVinoPackedIR)
        and not getattr(step, "packed", False)
    ]
    return steps + [WithTokenizer(i) for i in kept]
