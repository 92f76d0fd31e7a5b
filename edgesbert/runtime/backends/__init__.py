"""Inference backends behind one small interface.

Each backend is one module of this package, named as the manifest's ``backend`` field, that defines a
``Backend`` subclass called ``BACKEND``. Adding a backend is adding that one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from enum import Enum
from pathlib import Path

import numpy as np

from edgesbert.errors import ModelLoadError


class Device(str, Enum):
    """Where a graph runs; each backend maps these names to its own."""

    CPU = "cpu"
    GPU = "gpu"
    NPU = "npu"


class Backend(ABC):
    """A loaded graph that maps named int64 inputs to its first output."""

    #: the graph's input names, in its own order; callers feed exactly these.
    input_names: tuple[str, ...]

    @abstractmethod
    def __init__(self, graph: Path, device: Device, threads: int | None) -> None:
        """Load ``graph`` for ``device``; ``threads`` None lets the backend choose."""

    @abstractmethod
    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run one batch and return the first output as a float32 array."""


def available_backends() -> list[str]:
    """Names of the backend modules in this package."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def open_backend(name: str, graph: Path, device: Device | str, threads: int | None = None) -> Backend:
    """Load ``graph`` with the backend called ``name``."""
    if name not in available_backends():
        raise ModelLoadError(f"unknown backend {name!r}; this edgesbert knows {available_backends()}")
    try:
        device = Device(device)
    except ValueError:
        raise ValueError(f"device must be one of {[d.value for d in Device]}, got {device!r}") from None
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    module = importlib.import_module(f"{__name__}.{name}")
    backend_class: type[Backend] = module.BACKEND
    return backend_class(graph, device, threads)
