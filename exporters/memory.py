"""Give back the memory an export step is done with, so that the next step's peak starts low.

Each step of an export needs a few copies of the model's weights for a while (a graph being written, a
session, a quantizer's model). What it frees goes back to glibc's heap, which keeps most of it, and the
reference's own weights stay loaded to the end: without these, resident memory only grows from step to step
(all-mpnet-base-v2, 438 MB of weights: 1.8 GB held after validating the fp32 graph, 0.4 GB of it the
reference, 0.4 GB free heap).
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable
from functools import cache

from edgesbert.reference import BiEncoder, CrossEncoder


def release_memory() -> None:
    """Collect garbage and return the C heap's free pages to the system (glibc's ``malloc_trim``)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def release_network(reference: BiEncoder | CrossEncoder) -> None:
    """Free the reference's transformer weights: for after its graph is traced and its outputs computed.

    What later steps read stays: the tokenizer, the configuration and attributes, and a bi-encoder's pooling
    and Dense layers (OpenVINO's string-in twins trace them again). The reference cannot run afterwards.
    The memory goes back to the system at the end of the step (``release_memory`` in the pipeline).
    """
    network = reference.network
    (network.transformer if isinstance(reference, BiEncoder) else network).to("meta")


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
