"""The onnxruntime backend: CPU, and CUDA for ``gpu``; the throughput hint runs batches side by side."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgesbert.errors import DeviceNotAvailableError, ModelLoadError, require
from edgesbert.runtime.backends import Backend, Device, PerformanceHint, RunOptions

_PROVIDERS = {
    Device.CPU: ["CPUExecutionProvider"],
    Device.GPU: ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


class OnnxRuntimeBackend(Backend):
    """Runs an ``.onnx`` graph in an onnxruntime InferenceSession."""

    #: onnxruntime adds up a text's attention in vector lanes set by where the text starts in its row, and
    #: int8 turns that last bit into a visible change: all-MiniLM-L6-v2's packed int8-static moved 16 of 960
    #: placements of STSb texts, every one at an offset that is not a multiple of 4 (Intel Xeon, VNNI)
    text_alignment = 4

    def __init__(self, graph: Path, options: RunOptions) -> None:
        available = ort.get_available_providers()
        if options.device is Device.AUTO:
            providers = _PROVIDERS[Device.GPU if "CUDAExecutionProvider" in available else Device.CPU]
        else:
            providers = _PROVIDERS.get(options.device, [])
        if not providers or providers[0] not in available:
            raise DeviceNotAvailableError(
                f"onnxruntime cannot run on {options.device.value!r} here: its providers are {available}. "
                "Use device='cpu', install onnxruntime-gpu for 'gpu', or export with --backend openvino "
                "for 'npu'."
            )
        session_options = ort.SessionOptions()
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session_options.inter_op_num_threads = 1
        threads = options.threads or os.cpu_count() or 1
        if options.performance_hint is PerformanceHint.THROUGHPUT and providers[0] == "CPUExecutionProvider":
            # one session serves concurrent runs; each runs on its caller's thread
            session_options.intra_op_num_threads = 1
            self.concurrent_runs = threads
        elif options.threads is not None:
            session_options.intra_op_num_threads = threads
        if options.tokenizer_in_graph:
            require("onnxruntime_extensions", "text")
            from onnxruntime_extensions import get_library_path

            session_options.register_custom_ops_library(get_library_path())
        try:
            self._session = ort.InferenceSession(str(graph), session_options, providers=providers)
        except Exception as e:  # onnxruntime raises its own untyped errors for bad files
            raise ModelLoadError(f"onnxruntime cannot load {graph}: {e}") from e
        self.input_names = tuple(i.name for i in self._session.get_inputs())
        outputs = [o.name for o in self._session.get_outputs()]
        if options.output is not None and options.output not in outputs:
            raise ModelLoadError(f"{graph} has no output {options.output!r}; its outputs: {outputs}")
        self._output = options.output or outputs[0]

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run one batch; ``inputs`` must hold every name in ``input_names``."""
        feed = {name: inputs[name] for name in self.input_names}
        return np.asarray(self._session.run([self._output], feed)[0], dtype=np.float32)


BACKEND = OnnxRuntimeBackend
