"""onnxruntime's int8 quantizers, run in bounded memory and quietly.

What they would otherwise hold at once, each a copy of the weights or more (BERT-base, 0.44 GB of weights,
peaked at 4.3x and 5.2x them):

- calibration: the calibrator runs a graph with an extra output per tensor it watches, and onnxruntime
  keeps every activation of that run alive (BERT-base, 16 texts of 128 tokens: 3.7 GB). Fed one text per
  run, it holds one text's activations; the ranges then come from real tokens only, never from padding;
- the dynamic quantizer's shape-inference reload deep-copies the model it was given and keeps the
  original: ``shape_reload_in_place`` skips it where every tensor has its type already, and elsewhere
  reloads without the deep copy;
- the graph read whole, more than once: ``weights_apart`` gives them a copy whose weights lie in a file
  beside it, which shape inference skips and onnxruntime maps rather than copies;
- the quantizers' in-memory output: ``in_parts`` has them write the weights as external data.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from edgesbert.exporters.memory import release_memory

if TYPE_CHECKING:
    from onnxruntime.quantization import TensorsData

log = logging.getLogger("edgesbert.export")


class _PreprocessingAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def without_preprocessing_advice() -> Iterator[None]:
    """Mute onnxruntime's quantizer advice (logged on the root logger) to run its pre-processing tool."""
    advice = _PreprocessingAdvice()
    logging.getLogger().addFilter(advice)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(advice)


@contextmanager
def in_parts(target: Path) -> Iterator[Path]:
    """Where onnxruntime's quantizer writes ``target`` with its weights as external data, for the block.

    Also the block's scratch folder (calibration ranges); the block reads the result and writes ``target``
    whole. Removed afterwards, whatever happens.
    """
    scratch = target.parent / f".{target.stem}.parts"
    shutil.rmtree(scratch, ignore_errors=True)  # its writer refuses an existing data file
    scratch.mkdir()
    try:
        yield scratch / target.name
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def weights_apart(graph: Path, folder: Path) -> Path:
    """A copy of ``graph`` in ``folder`` with its weights in one file beside it (``<name>.data``)."""
    copy = folder / graph.name
    model = onnx.load(str(graph))
    onnx.save_model(model, str(copy), save_as_external_data=True, location=f"{graph.name}.data")
    del model
    release_memory()
    return copy


def _reload_moving_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """The quantizer's save-and-reload with shape inference, without its deep copy.

    Saving as external data moves each weight out of ``model`` into the file, so the caller's model (which
    the quantizer replaces by the reloaded one) is left without weights instead of a second copy of them.
    """
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    with tempfile.TemporaryDirectory(prefix="edgesbert.quant.") as scratch:
        path = Path(scratch) / "model.onnx"
        onnx.save_model(model, str(path), save_as_external_data=True)
        release_memory()  # the weights just moved out, before they are read back
        return load_model_with_shape_infer(path)


def _typed_or_reloaded(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` itself when each node output has a type already (nothing for the reload to add)."""
    graph = model.graph
    typed = {value.name for value in (*graph.value_info, *graph.output, *graph.input)}
    if all(name in typed for node in graph.node for name in node.output if name):
        return model
    return _reload_moving_weights(model)


@contextmanager
def shape_reload_in_place() -> Iterator[None]:
    """For the block, the dynamic quantizer keeps one copy of its model's weights, not two.

    It reloads its model with shape inference to type the tensors its Gemm-to-MatMul rewrite added; a model
    whose tensors are all typed is kept as it is, others are reloaded by moving the weights, not copying.

    Its output is byte-identical (tested); an onnxruntime without that internal function runs as it is.
    """
    from onnxruntime.quantization import onnx_quantizer

    original = getattr(onnx_quantizer, "save_and_reload_model_with_shape_infer", None)
    if original is None:
        yield
        return
    onnx_quantizer.save_and_reload_model_with_shape_infer = _typed_or_reloaded
    try:
        yield
    finally:
        onnx_quantizer.save_and_reload_model_with_shape_infer = original


def calibrate(graph: Path, runs: Iterable[dict[str, np.ndarray]], method: str, scratch: Path) -> TensorsData:
    """The activation ranges of ``graph``'s MatMul inputs and outputs, one calibration run at a time.

    ``runs`` are the graph's inputs, best one text each (their activations are what a run holds);
    ``method`` is minmax, entropy or percentile.
    """
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, create_calibrator

    class _One(CalibrationDataReader):
        def __init__(self, run: dict[str, np.ndarray]) -> None:
            self.run: dict[str, np.ndarray] | None = run

        def get_next(self) -> dict[str, np.ndarray] | None:
            run, self.run = self.run, None
            return run

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    calibrator = create_calibrator(
        graph,
        ["MatMul"],
        augmented_model_path=str(scratch / "augmented.onnx"),
        calibrate_method=methods[method],
        use_external_data_format=True,  # its graph reads the weights from a file, not a second copy
    )
    for run in runs:
        calibrator.collect_data(_One(run))  # each call folds its run into the ranges kept so far
    return calibrator.compute_data()
