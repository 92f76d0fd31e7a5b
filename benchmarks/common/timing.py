"""How every benchmark times a call and weighs a process, and what it logs.

Light standard library modules only (numpy, resource and importlib.metadata are imported inside the
functions that need them), so that a timed worker imports nothing it does not measure: the suite's worker
imports this in the project's environment and in .venv-peers alike, and the child scripts the memory
benchmarks run read their memory through it. MB are 10^6 bytes throughout.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def log(message: str) -> None:
    """One line on stderr (stdout carries the results)."""
    print(message, file=sys.stderr, flush=True)


def timed(call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> tuple[float, R]:
    """Seconds and result of ``call(*args, **kwargs)`` (arguments, not closures: loops bind theirs)."""
    start = time.perf_counter()
    result = call(*args, **kwargs)
    return time.perf_counter() - start, result


def call_ms(call: Callable[[T], Any], items: Iterable[T]) -> list[float]:
    """Milliseconds of ``call(item)``, for each item in turn."""
    return [timed(call, item)[0] * 1e3 for item in items]


def percentiles(values: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 (linear interpolation, as numpy's default)."""
    import numpy as np

    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def one_pass(call: Callable[[list[T]], R], items: list[T], warm_up: int = 32) -> tuple[float, R]:
    """Items per second of one ``call(items)`` after an untimed ``call(items[:warm_up])``; and its result."""
    call(items[:warm_up])
    seconds, result = timed(call, items)
    return len(items) / seconds, result


def status_mb(key: str) -> float:
    """A memory figure of this process from /proc/self/status: ``VmRSS`` now, ``VmHWM`` its peak."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    raise KeyError(key)


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec.

    Not ``ru_maxrss`` (only where /proc is missing): Linux carries the spawning process's peak into it
    across fork and exec, so a worker started from a large benchmark process would report that one's.
    """
    try:
        return status_mb("VmHWM")
    except (OSError, KeyError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def versions(packages: Iterable[str]) -> dict[str, str]:
    """The installed versions of ``packages``, leaving out missing ones."""
    from importlib import metadata

    found = {}
    for package in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found
