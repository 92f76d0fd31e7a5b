"""The OpenVINO backend: CPU, GPU, NPU or AUTO, with performance hints and a compiled-model cache."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgesbert.errors import DeviceNotAvailableError, ModelLoadError, require
from edgesbert.runtime.backends import Backend, Device, RunOptions

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
            if not self._static:
                self._compiled[None] = core.compile_model(self._model, device, config)
        except Exception as e:  # OpenVINO raises RuntimeError with its own text for bad files
            raise ModelLoadError(f"OpenVINO cannot load {graph}: {e}") from e

    def _request(self, shape: tuple[int, ...]) -> Any:
        key = shape if self._static else None
        if key not in self._compiled:
            self._model.reshape({name: list(shape) for name in self.input_names})
            self._compiled[key] = self._core.compile_model(self._model, self._device, self._config)
        return self._compiled[key]

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run one batch; ``inputs`` must hold every name in ``input_names``."""
        feed = {name: inputs[name] for name in self.input_names}
        compiled = self._request(feed["input_ids"].shape)
        return np.asarray(compiled(feed)[compiled.outputs[0]], dtype=np.float32)


BACKEND = OpenVinoBackend
