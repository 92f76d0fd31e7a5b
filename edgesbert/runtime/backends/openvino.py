"""The OpenVINO backend: CPU, GPU, NPU or AUTO, with performance hints and a compiled-model cache."""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgesbert.errors import DeviceNotAvailableError, ModelLoadError, require
from edgesbert.runtime.backends import Backend, Device, PerformanceHint, RunOptions

require("openvino", "openvino")
import openvino as ov  # noqa: E402

_DEVICES = {Device.CPU: "CPU", Device.GPU: "GPU", Device.NPU: "NPU", Device.AUTO: "AUTO"}


class OpenVinoBackend(Backend):
    """Runs an OpenVINO IR (``.xml`` + ``.bin``) compiled for one device."""

    def __init__(self, graph: Path, options: RunOptions) -> None:
        core = ov.Core()
        device = _DEVICES[options.device]
        available = core.available_devices
        if device != "AUTO" and not any(d.split(".")[0] == device for d in available):
            raise DeviceNotAvailableError(
                f"OpenVINO finds no {device} device here; available: {', '.join(available)}. "
                "Use one of those (device='cpu', 'gpu', 'npu') or 'auto'."
            )
        if any(d.startswith("CPU") for d in available):  # for AUTO too, when it picks the CPU
            # CPUs with AMX or AVX-512 BF16 would otherwise run f32 graphs in bf16 (~1e-3 drift)
            core.set_property("CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        config: dict[str, Any] = {}
        if options.performance_hint is not None:
            config["PERFORMANCE_HINT"] = options.performance_hint.value.upper()
        if options.threads is not None and device == "CPU":
            config["INFERENCE_NUM_THREADS"] = options.threads
        if options.cache_dir is not None:
            config["CACHE_DIR"] = str(options.cache_dir)
        self._core, self._device, self._config = core, device, config
        try:
            self._model = core.read_model(str(graph))
            self.input_names = tuple(port.get_any_name() for port in self._model.inputs)
            self._static = bool(options.static_shapes)
            # static graphs compile once per shape, on first use (NPUs cannot run dynamic shapes)
            self._compiled: dict[tuple[int, ...] | None, Any] = {}
            self._idle: dict[tuple[int, ...] | None, queue.SimpleQueue[Any]] = {}  # infer requests
            self._lock = threading.Lock()
            if not self._static:
                compiled = self._compiled[None] = core.compile_model(self._model, device, config)
                if options.performance_hint is PerformanceHint.THROUGHPUT:
                    self.concurrent_runs = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        except Exception as e:  # OpenVINO raises RuntimeError with its own text for bad files
            raise ModelLoadError(f"OpenVINO cannot load {graph}: {e}") from e

    def _compiled_for(self, shape: tuple[int, ...]) -> tuple[Any, queue.SimpleQueue[Any]]:
        """The graph compiled for ``shape`` (static graphs compile per shape) and its idle requests."""
        key = shape if self._static else None
        with self._lock:
            if key not in self._compiled:
                self._model.reshape({name: list(shape) for name in self.input_names})
                self._compiled[key] = self._core.compile_model(self._model, self._device, self._config)
            return self._compiled[key], self._idle.setdefault(key, queue.SimpleQueue())

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run one batch; ``inputs`` must hold every name in ``input_names``. Safe from several threads."""
        feed = {name: inputs[name] for name in self.input_names}
        compiled, idle = self._compiled_for(feed["input_ids"].shape)
        try:
            request = idle.get_nowait()
        except queue.Empty:
            request = compiled.create_infer_request()
        try:  # copy: the request's output buffer is reused by its next run
            return np.array(request.infer(feed)[compiled.outputs[0]], dtype=np.float32)
        finally:
            idle.put(request)


BACKEND = OpenVinoBackend
