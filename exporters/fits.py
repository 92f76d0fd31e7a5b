"""Whether an export fits in this machine's memory, said before any work starts.

An export holds the reference's float32 weights and, phase by phase, a graph and its quantized copy: its
peak RSS measured about 3.2x the fp32 weights (BERT-base to ONNX static or dynamic int8) to 3.8x (to
OpenVINO int8) (benchmarks/results/export-memory.md). A model whose estimate exceeds the memory
available now is refused with the figures, instead of being killed by the system hours later.
"""

from __future__ import annotations

import math
from pathlib import Path

from edgesbert.errors import ExportError
from edgesbert.runtime.safetensors_numpy import read_header

#: peak RSS of an export per byte of the model's float32 weights (the larger of the measured ratios)
PEAK_PER_WEIGHT_BYTE = 4.0
#: bytes per element of safetensors' dtypes; the model is held in float32 whatever it is stored in
_FP32 = 4


def fp32_weight_bytes(folder: Path) -> int:
    """The model's weights in float32, from its safetensors headers (else its PyTorch files' sizes)."""
    headers = (read_header(path)[0] for path in folder.rglob("*.safetensors"))
    total = sum(math.prod(tensor["shape"]) * _FP32 for header in headers for tensor in header.values())
    if total == 0:  # pickled PyTorch weights: as stored (usually float32)
        total = sum(p.stat().st_size for p in folder.rglob("pytorch_model*.bin"))
    return total


def available_bytes() -> int | None:
    """Memory available to a new process now (Linux's MemAvailable), None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_fits(folder: Path, available: int | None = None) -> None:
    """Raise ExportError if exporting the model in ``folder`` would need more memory than is available."""
    available = available_bytes() if available is None else available
    weights = fp32_weight_bytes(folder)
    needed = weights * PEAK_PER_WEIGHT_BYTE
    if available is None or needed <= available:
        return
    gb = 1024**3
    raise ExportError(
        f"exporting {folder.name} needs about {needed / gb:.1f} GB of memory ({PEAK_PER_WEIGHT_BYTE:g}x its "
        f"{weights / gb:.1f} GB of float32 weights) and {available / gb:.1f} GB is available here: free "
        "memory or export on a larger machine (--no-memory-check tries anyway)"
    )
