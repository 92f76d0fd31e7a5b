"""Running many batches: one after another, or split across threads that each run one at a time.

On a CPU with few cores, several single-threaded runs of a graph side by side keep every core busy with
little synchronisation, where one multi-threaded run waits on its threads at every small operator.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from edgesbert.runtime.inputs import Text

Item = TypeVar("Item")
T = TypeVar("T")
BatchFunction = Callable[[list[Item]], np.ndarray]


class BatchRunner:
    """Forms batches and maps a batch function over them, in order; the base runs them one by one."""

    def batch_indices(self, lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
        """The texts of each batch, by index, from the texts' lengths."""
        order = np.argsort([-n for n in lengths], kind="stable")  # similar lengths: little to pad or pack
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]

    def _lengths(self, items: Sequence[Text]) -> Sequence[int]:
        """How long each text (or pair) is, to batch by: characters here; a subclass may count tokens."""
        return [len(item) if isinstance(item, str) else sum(map(len, item)) for item in items]

    def _map_batches(self, fn: BatchFunction[Item], batches: Iterable[list[Item]]) -> Iterator[np.ndarray]:
        """``fn(batch)`` for each batch, in order; a subclass may run them concurrently."""
        return map(fn, batches)


def map_concurrently(
    fn: BatchFunction[Item],
    batches: Iterable[list[Item]],
    pool: ThreadPoolExecutor,
    workers: int,
    *,
    split: bool = True,
) -> Iterator[np.ndarray]:
    """Like ``map(fn, batches)``, with each batch cut into up to ``workers`` slices run on ``pool``.

    The next batch's slices are queued while one batch is awaited, so no worker idles between batches.
    Without ``split``, each batch is one run, and ``workers`` of them run side by side.
    """
    in_flight: deque[list[Future[np.ndarray]]] = deque()
    ahead = 1 if split else workers - 1  # batches queued beyond the one awaited
    for batch in batches:
        in_flight.append([pool.submit(fn, part) for part in (_split(batch, workers) if split else [batch])])
        if len(in_flight) > ahead:
            yield _join(in_flight.popleft())
    while in_flight:
        yield _join(in_flight.popleft())


def _join(slices: list[Future[np.ndarray]]) -> np.ndarray:
    # result() cannot block forever: the pool takes slices first in, first out (several callers' slices
    # only queue, none starves), no slice waits on another future, and each backend run bounds its own
    # waits (OpenVINO: STALL_TIMEOUT_S; onnxruntime waits on no lock of ours), so every slice ends or raises.
    return np.concatenate([future.result() for future in slices])


def _split(batch: list[Item], parts: int) -> list[list[Item]]:
    """``batch`` in up to ``parts`` contiguous slices of near-equal size."""
    parts = max(1, min(parts, len(batch)))
    size, extra = divmod(len(batch), parts)
    bounds = [i * size + min(i, extra) for i in range(parts + 1)]
    return [batch[bounds[i] : bounds[i + 1]] for i in range(parts)]


def progress(results: Iterable[T], total: int, enabled: bool) -> Iterable[T]:
    """``results`` with a progress bar over batches when enabled; tqdm is imported only then (it is slow)."""
    if not enabled:
        return results
    from tqdm.auto import tqdm

    return tqdm(results, "Batches", total)
