"""Inference backends behind one small interface.

Each backend is one module of this package, named as the manifest's ``backend`` field, that defines a
``Backend`` subclass called ``BACKEND``. Adding a backend is adding that one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np

from edgesbert.errors import ModelLoadError


class Device(str, Enum):
    """Where a graph runs; each backend maps these names to its own."""

    CPU = "cpu"
    GPU = "gpu"
    NPU = "npu"
    AUTO = "auto"  # let the backend pick the best device it finds


class PerformanceHint(str, Enum):
    """What to optimize a compiled graph for, where the backend supports it."""

    LATENCY = "latency"  # one run at a time, on all threads
    THROUGHPUT = "throughput"  # several single-threaded runs side by side


@dataclass(frozen=True)
class RunOptions:
    """How to run a graph: device, threads and the backend hints that apply."""

    device: Device = Device.CPU
    threads: int | None = None  # None lets the backend choose
    performance_hint: PerformanceHint | None = None
    cache_dir: Path | None = None  # compiled-model cache, for fast second starts
    static_shapes: tuple[tuple[int, int], ...] = ()  # from the manifest: compile for these shapes only
    output: str | None = None  # the graph output ``run`` returns; None: the first
    tokenizer_in_graph: bool = False  # string inputs: load the backend's tokenizer ops
    bf16: bool = False  # a bf16 variant: bf16 arithmetic on CPUs with AMX or AVX-512 BF16 (OpenVINO)

    @classmethod
    def parse(
        cls,
        device: Device | str = Device.CPU,
        threads: int | None = None,
        performance_hint: PerformanceHint | str | None = None,
        cache_dir: str | Path | None = None,
    ) -> RunOptions:
        """Check user values and build the options, with errors that list the valid choices."""
        try:
            device = Device(device)
        except ValueError:
            raise ValueError(f"device must be one of {[d.value for d in Device]}, got {device!r}") from None
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        try:
            hint = PerformanceHint(performance_hint) if performance_hint is not None else None
        except ValueError:
            choices = [h.value for h in PerformanceHint]
            raise ValueError(f"performance_hint must be one of {choices}, got {performance_hint!r}") from None
        return cls(device, threads, hint, Path(cache_dir) if cache_dir is not None else None)


class Backend(ABC):
    """A loaded graph that maps named inputs (int64 token ids, or strings) to one of its outputs.

    Which output: ``RunOptions.output``; string inputs (``RunOptions.tokenizer_in_graph``) need the backend's
    tokenizer ops, which it loads.
    """

    #: the graph's input names, in its own order; callers feed exactly these.
    input_names: tuple[str, ...]
    #: how many ``run`` calls from different threads pay off at once; 1 means run one at a time.
    concurrent_runs: int = 1
    #: whether padded positions cost compute (a graph's); if not (a table lookup), texts are batched by
    #: characters, without counting their tokens first
    padding_costs: bool = True
    #: a packed graph's row length: texts fill rows of this many tokens (few shapes, full rows); 0: rows as
    #: long as the longest text of a pass of similar ones, where each token's attention over a longer row
    #: costs more than the shapes save
    row_tokens: int = 0
    #: where a packed text may start in its row: a multiple of this many tokens (1: anywhere)
    text_alignment: int = 1

    @abstractmethod
    def __init__(self, graph: Path, options: RunOptions) -> None:
        """Load ``graph`` to run as ``options`` say."""

    @abstractmethod
    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run one batch and return the chosen output as a float32 array."""


def available_backends() -> list[str]:
    """Names of the backend modules in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def open_backend(name: str, graph: Path, options: RunOptions) -> Backend:
    """Load ``graph`` with the backend called ``name``."""
    if name not in available_backends():
        raise ModelLoadError(f"unknown backend {name!r}; this edgesbert knows {available_backends()}")
    module = importlib.import_module(f"{__name__}.{name}")
    backend_class: type[Backend] = module.BACKEND
    return backend_class(graph, options)
