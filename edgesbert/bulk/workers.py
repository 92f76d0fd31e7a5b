"""What runs the model over chunks of rows: a callable class, and runners that call it in order.

``RowModel`` follows Ray Data's callable-class pattern: the model loads once in ``__init__`` and
``__call__`` maps one chunk of texts (or pairs) to one float32 array. The runners here call it in this
process or in N spawned processes; a Ray runner is one more class with the same ``map``/``close``, built on
the same ``RowModel`` (``edgesbert.bulk.ray_runner``), so its results cannot differ from these.
``jobs.open_runner`` picks one; nothing here imports the Ray runner, which imports this module.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from edgesbert.errors import EdgesbertError

if TYPE_CHECKING:
    from edgesbert.runtime.inputs import Text
    from edgesbert.runtime.models import BiEncoder, CrossEncoder

#: chunks handed to each worker process ahead of the one being written (memory stays bounded)
CHUNKS_AHEAD_PER_PROCESS = 2


@dataclass(frozen=True)
class ModelSpec:
    """How to load the model and run it: picklable, so that every process loads the same one."""

    folder: Path
    variant: str | None = None
    threads: int | None = None
    batch_size: int = 64
    prompt_name: str | None = None
    verify: bool = True


class RowModel:
    """The model loaded once; a call maps a chunk to float32 embeddings (n, dim) or raw scores (n, labels).

    Cross-encoder scores are the model's activation applied to its logits, as ``predict`` gives them.
    """

    def __init__(self, spec: ModelSpec) -> None:
        from edgesbert.runtime import load

        self.spec = spec
        self.model: BiEncoder | CrossEncoder = load(
            spec.folder, variant=spec.variant, threads=spec.threads, verify=spec.verify
        )

    def __call__(self, chunk: list[Text]) -> np.ndarray:
        """Embed or score ``chunk`` (texts for a bi-encoder, pairs for a cross-encoder)."""
        from edgesbert.runtime import BiEncoder

        size = self.spec.batch_size
        if isinstance(self.model, BiEncoder):
            if not chunk:
                return np.zeros((0, self.model.embedding_dimension), dtype=np.float32)
            texts = [str(text) for text in chunk]
            return self.model.encode(texts, batch_size=size, prompt_name=self.spec.prompt_name)
        if not chunk:
            return np.zeros((0, self.model.num_labels), dtype=np.float32)
        pairs = [(pair[0], pair[1]) for pair in chunk]
        return self.model.predict(pairs, batch_size=size).reshape(len(pairs), -1)

    def close(self) -> None:
        """Release the model."""
        self.model.close()


class Runner(Protocol):
    """Maps chunks to results, in the order of the chunks, and releases its models on ``close``."""

    def map(self, chunks: Iterable[list[Text]]) -> Iterator[np.ndarray]:
        """Results of ``chunks``, in order; chunks are read only as far as results are taken."""
        ...

    def close(self) -> None:
        """Release the models and any processes."""
        ...


class LocalRunner:
    """One model in this process, chunk after chunk."""

    def __init__(self, spec: ModelSpec) -> None:
        self.rows = RowModel(spec)

    def map(self, chunks: Iterable[list[Text]]) -> Iterator[np.ndarray]:
        """Results of ``chunks``, in order."""
        return map(self.rows, chunks)

    def close(self) -> None:
        """Release the model."""
        self.rows.close()


_WORKER_MODEL: RowModel | None = None


def _load_worker(spec: ModelSpec) -> None:
    global _WORKER_MODEL
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the job's process, which stops the workers
    threading.Thread(target=_exit_with_parent, name="edgesbert-parent-watch", daemon=True).start()
    _WORKER_MODEL = RowModel(spec)


def _exit_with_parent() -> None:
    """End this worker when the job's process dies (SIGKILL included), instead of waiting forever."""
    parent = multiprocessing.parent_process()
    if parent is not None and parent.sentinel is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)


def _run_worker(chunk: list[Text]) -> np.ndarray:
    if _WORKER_MODEL is None:  # the initializer always ran first; this narrows the type
        raise RuntimeError("worker process without a model")
    return _WORKER_MODEL(chunk)


class ProcessRunner:
    """``processes`` spawned processes, each with its model loaded once (one thread each).

    Chunks go to whichever process is free; results come back in the order of the chunks, with at most
    ``CHUNKS_AHEAD_PER_PROCESS`` chunks per process in flight.
    """

    def __init__(self, spec: ModelSpec, processes: int) -> None:
        self.processes = processes
        self.pool = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load_worker,
            initargs=(spec,),
        )

    def map(self, chunks: Iterable[list[Text]]) -> Iterator[np.ndarray]:
        """Results of ``chunks``, in order."""
        pending: deque[Future[np.ndarray]] = deque()
        try:
            for chunk in chunks:
                pending.append(self.pool.submit(_run_worker, chunk))
                if len(pending) >= self.processes * CHUNKS_AHEAD_PER_PROCESS:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise EdgesbertError(
                "a worker process stopped: it could not load the model, or ran out of memory; "
                "run with one process (--processes 1) to see why"
            ) from None

    def close(self) -> None:
        """Stop the processes (chunks not started are dropped)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
