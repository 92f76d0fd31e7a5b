"""The OpenVINO backend: CPU, GPU, NPU or AUTO, with performance hints and a compiled-model cache.

Concurrent runs use OpenVINO's own mechanism: each compiled graph gets its infer requests up front (as many
as OpenVINO finds optimal), callers borrow one from a queue, and ``start_async`` + ``wait_for`` bound every
wait, so a stalled run raises an error instead of hanging. Loading primes the Python bindings first (see
``_prime_bindings``: without it, the first runs of a process could deadlock).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgesbert.errors import DeviceNotAvailableError, EdgesbertError, ModelLoadError, require
from edgesbert.offline import no_telemetry
from edgesbert.runtime.backends import Backend, Device, PerformanceHint, RunOptions
from edgesbert.runtime.cpu import has_bf16

with no_telemetry():  # importing openvino reports the import over the network unless telemetry declines
    require("openvino", "openvino")
    import openvino as ov

_DEVICES = {Device.CPU: "CPU", Device.GPU: "GPU", Device.NPU: "NPU", Device.AUTO: "AUTO"}

#: Input shapes the CPU plugin keeps compiled kernels for. With its default (5000) a long-running process that
#: sees many batch x sequence shapes keeps growing: all-MiniLM-L6-v2 int8, 1,500 random batches of 1-64
#: sentences, 230 MB -> 1.9 GB; with 512, 630 MB at about the same speed (740 against 760-870 sentences/s;
#: 128: 570 MB but 650 sentences/s). AMD EPYC with AVX-512 VNNI, 2 cores.
SHAPE_CACHE_CAPACITY = 512

#: seconds a run may wait for a free infer request, for its inference, or for a compilation in progress
STALL_TIMEOUT_S = 600.0

_priming = threading.Lock()


def _prime_bindings() -> None:
    """Let OpenVINO's Python bindings fill their lazy tables in one thread, before runs overlap.

    The first ``Tensor.data`` in a process builds a C++ function-local static (OpenVINO's element type to
    numpy dtype table) whose initializer releases the GIL; a second thread calling ``Tensor.data`` then
    blocks on the static's guard while holding the GIL, and both wait forever (two workers stuck in
    ``InferRequest.infer`` while it copies the inputs). Waiting on the lock cannot last: it is held only
    around this one conversion, which waits on nothing of ours.
    """
    with _priming:
        _ = ov.Tensor(np.zeros(1, dtype=np.float32)).data


class _Graph:
    """One compiled graph and its infer requests, made up front by the thread that compiles it."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.requests = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(self.requests):
            self.idle.put(compiled.create_infer_request())


class OpenVinoBackend(Backend):
    """Runs an OpenVINO IR (``.xml`` + ``.bin``) compiled for one device."""

    #: OpenVINO prepares its kernels again for every new input shape: full rows of one length ran
    #: all-MiniLM-L6-v2 int8 faster than sorted padded batches (see docs/export.md, "Packed batches")
    row_tokens = 64

    def __init__(self, graph: Path, options: RunOptions) -> None:
        _prime_bindings()
        core = ov.Core()
        if options.tokenizer_in_graph:
            require("openvino_tokenizers", "openvino")
            import openvino_tokenizers

            core.add_extension(str(openvino_tokenizers._ext_path))
        device = _DEVICES[options.device]
        available = core.available_devices
        if device != "AUTO" and not any(d.split(".")[0] == device for d in available):
            raise DeviceNotAvailableError(
                f"OpenVINO finds no {device} device here; available: {', '.join(available)}. "
                "Use one of those (device='cpu', 'gpu', 'npu') or 'auto'."
            )
        if any(d.startswith("CPU") for d in available):  # for AUTO too, when it picks the CPU
            # CPUs with AMX or AVX-512 BF16 would otherwise run f32 graphs in bf16 (~1e-3 drift): only a
            # bf16 variant asks for it, and runs in f32 on other CPUs
            precision = "bf16" if options.bf16 and has_bf16() else "f32"
            cpu = {"INFERENCE_PRECISION_HINT": precision, "CPU_RUNTIME_CACHE_CAPACITY": SHAPE_CACHE_CAPACITY}
            # Weight-compressed graphs (int8-/int4-weights) would quantize their activations per run,
            # which moves a text's vector with its batch (all-MiniLM-L6-v2 int4: batch min cosine 0.99988)
            cpu["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = 0
            core.set_property("CPU", cpu)
        config: dict[str, Any] = {}
        if options.performance_hint is not None:
            config["PERFORMANCE_HINT"] = options.performance_hint.value.upper()
        if options.threads is not None and device == "CPU":
            config["INFERENCE_NUM_THREADS"] = options.threads
            # pinned, every process limited to N threads takes the first N cores: two such processes
            # (edgesbert embed --processes 2) measured 1.0x one instead of 2.0x on 2 cores
            config["ENABLE_CPU_PINNING"] = False
        if options.cache_dir is not None:
            config["CACHE_DIR"] = str(options.cache_dir)
        self._core, self._device, self._config = core, device, config
        try:
            self._model = core.read_model(str(graph))
            self.input_names = tuple(port.get_any_name() for port in self._model.inputs)
            outputs = [port.get_names() for port in self._model.outputs]
            found = [i for i, names in enumerate(outputs) if options.output in names]
            if options.output is not None and not found:
                raise ModelLoadError(f"{graph} has no output {options.output!r}; its outputs: {outputs}")
            self._output = found[0] if found else 0
            self._static = bool(options.static_shapes)
            # static graphs compile once per shape, on first use (NPUs cannot run dynamic shapes)
            self._graphs: dict[tuple[int, ...] | None, _Graph] = {}
            self._lock = threading.Lock()
            if not self._static:
                dynamic = self._graphs[None] = _Graph(core.compile_model(self._model, device, config))
                if options.performance_hint is PerformanceHint.THROUGHPUT:
                    self.concurrent_runs = dynamic.requests
        except ModelLoadError:
            raise
        except Exception as e:  # OpenVINO raises RuntimeError with its own text for bad files
            raise ModelLoadError(f"OpenVINO cannot load {graph}: {e}") from e

    @property
    def _compiled(self) -> dict[tuple[int, ...] | None, Any]:
        """The compiled graphs by static shape (None: the dynamic graph), for tests and diagnostics."""
        return {key: graph.compiled for key, graph in self._graphs.items()}

    def _graph_for(self, shape: tuple[int, ...]) -> _Graph:
        """The graph compiled for ``shape`` (static graphs compile per shape, on first use)."""
        key = shape if self._static else None
        graph = self._graphs.get(key)
        if graph is not None:
            return graph
        if not self._lock.acquire(timeout=STALL_TIMEOUT_S):  # held by a thread compiling another shape
            raise EdgesbertError(
                f"OpenVINO has been compiling a static shape for {self._device} for over "
                f"{STALL_TIMEOUT_S:g} s; the device may be stuck: reload the model, or declare fewer "
                "static shapes at export"
            )
        try:
            if key not in self._graphs:
                self._model.reshape({name: list(shape) for name in self.input_names})
                self._graphs[key] = _Graph(self._core.compile_model(self._model, self._device, self._config))
            return self._graphs[key]
        finally:
            self._lock.release()

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run one batch; ``inputs`` must hold every name in ``input_names``. Safe from several threads."""
        feed = {name: inputs[name] for name in self.input_names}
        graph = self._graph_for(feed[self.input_names[0]].shape)
        try:
            request = graph.idle.get(timeout=STALL_TIMEOUT_S)
        except queue.Empty:
            raise EdgesbertError(
                f"none of OpenVINO's {graph.requests} infer requests on {self._device} became free within "
                f"{STALL_TIMEOUT_S:g} s: earlier runs stalled or the device is overloaded; reload the "
                "model, or run fewer encode calls at once"
            ) from None
        stalled = False
        try:
            request.start_async(feed)  # copies the inputs into the request's own tensors
            stalled = not request.wait_for(int(STALL_TIMEOUT_S * 1000))  # raises what the inference raised
            if not stalled:  # copy: the request's output buffer is reused by its next run
                return np.array(request.get_output_tensor(self._output).data, dtype=np.float32)
        finally:
            if not stalled:  # a stalled request is still busy: it never goes back to the queue
                graph.idle.put(request)
        raise EdgesbertError(
            f"an OpenVINO inference on {self._device} did not finish within {STALL_TIMEOUT_S:g} s "
            f"(batch shape {feed[self.input_names[0]].shape}); reload the model, try smaller batches or "
            "another device, and report it if it recurs"
        )


BACKEND = OpenVinoBackend
