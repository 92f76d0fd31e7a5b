"""Progress of an export's long phases: when each starts, that it still runs, and how long it took.

On a terminal a phase shows as a line with its running time (a tqdm bar without a total); piped to a
file, as log lines of the ``edgesbert.export`` logger, one every ``TICK`` seconds, so that no phase is
silent for longer. Nothing shows unless that logger is enabled for INFO (the command line enables it).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

log = logging.getLogger("edgesbert.export")
#: seconds between two "still running" lines when the output is not a terminal
TICK = 10.0


@contextmanager
def phase(title: str) -> Iterator[None]:
    """Report the phase ``title`` (e.g. "tracing the model into ONNX") while the block runs."""
    if not log.isEnabledFor(logging.INFO):
        yield
        return
    start = time.perf_counter()
    done = threading.Event()
    bar = tqdm(desc=title, bar_format="{desc}: {elapsed}", file=sys.stderr) if sys.stderr.isatty() else None
    if bar is None:
        log.info("%s ...", title)

    def tick() -> None:
        while not done.wait(1.0 if bar is not None else TICK):
            if bar is not None:
                bar.refresh()
            else:
                log.info("%s ... %.0f s", title, time.perf_counter() - start)

    ticker = threading.Thread(target=tick, name="export-progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        if bar is not None:
            bar.close()
        else:
            log.info("%s: done in %.1f s", title, time.perf_counter() - start)


@contextmanager
def quiet(logger: str) -> Iterator[None]:
    """Only warnings from ``logger`` while the block runs.

    NNCF and onnxruntime's quantizers log a line for every node they leave alone.
    """
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)
