"""Dynamic batching: concurrent requests for one model merged into batches bounded by a token budget.

Requests wait in a queue; whenever the model is free, the oldest requests are taken while their tokens
(counted after tokenization, truncation included) fit ``max_batch_tokens`` and their number
``max_batch_requests``. A request larger than the budget runs alone. The batch runs on the model's own
thread, off the event loop, and each request gets back its own rows, in order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

Item = TypeVar("Item")


@dataclass
class _Job(Generic[Item]):
    items: list[Item]
    tokens: int
    rows: asyncio.Future[np.ndarray]


@dataclass(frozen=True)
class BatchStats:
    """What one batch held, for the metrics."""

    requests: int
    items: int
    tokens: int
    seconds: float


class DynamicBatcher(Generic[Item]):
    """Runs ``run(items)`` (one result row per item) over batches merged from concurrent submissions."""

    def __init__(
        self,
        run: Callable[[list[Item]], np.ndarray],
        *,
        max_batch_tokens: int,
        max_batch_requests: int | None,
        name: str,
        on_batch: Callable[[BatchStats], None] | None = None,
        in_flight: int = 2,
        full: int = 32,
    ) -> None:
        """Batch calls of ``run``; ``name`` names the model's inference threads.

        Up to ``in_flight`` batches run at once while those running hold fewer than ``full`` items: a small
        batch leaves cores idle, and the next one is formed and run beside it; a full one keeps them busy.
        """
        self._run = run
        self._max_tokens = max_batch_tokens
        self._max_requests = max_batch_requests
        self._on_batch = on_batch
        self._jobs: deque[_Job[Item]] = deque()
        self._ready = asyncio.Event()
        self._threads = ThreadPoolExecutor(in_flight, thread_name_prefix=f"edgesbert-{name}")
        self._in_flight = in_flight
        self._full = full
        self._items = 0
        self._batches = 0
        self._freed = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Requests waiting for a batch."""
        return len(self._jobs)

    def start(self) -> None:
        """Start taking batches; call it on the event loop."""
        self._task = asyncio.get_running_loop().create_task(self._serve())

    async def submit(self, items: list[Item], tokens: int) -> np.ndarray:
        """Queue ``items`` (``tokens`` tokens in all) and wait for their rows."""
        job = _Job(items, tokens, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._ready.set()
        return await job.rows

    async def close(self) -> None:
        """Stop once the queue is empty; queued requests are still answered."""
        while self._jobs or self._running:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._threads.shutdown(wait=True)

    async def _serve(self) -> None:
        while True:
            if not self._jobs:
                self._ready.clear()
                await self._ready.wait()
                continue
            if self._batches and (self._batches >= self._in_flight or self._items >= self._full):
                self._freed.clear()  # a full batch keeps the cores busy by itself; wait for it
                await self._freed.wait()
                continue
            batch = self._take()
            if not batch:
                continue
            self._batches += 1  # counted here and in _run_batch's finally, both on the event loop
            task = asyncio.get_running_loop().create_task(self._run_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run_batch(self, batch: list[_Job[Item]]) -> None:
        loop = asyncio.get_running_loop()
        items = [item for job in batch for item in job.items]
        self._items += len(items)
        started = loop.time()
        try:
            rows = await loop.run_in_executor(self._threads, self._run, items)
        except Exception as error:  # every request of the batch gets the error
            for job in batch:
                if not job.rows.done():
                    job.rows.set_exception(error)
            return
        finally:
            self._batches -= 1
            self._items -= len(items)
            self._freed.set()
        start = 0
        for job in batch:
            if not job.rows.done():  # a client that went away cancelled its future
                job.rows.set_result(rows[start : start + len(job.items)])
            start += len(job.items)
        if self._on_batch is not None:
            tokens = sum(job.tokens for job in batch)
            self._on_batch(BatchStats(len(batch), len(items), tokens, loop.time() - started))

    def _take(self) -> list[_Job[Item]]:
        """The oldest live jobs that fit the budgets (at least one)."""
        batch: list[_Job[Item]] = []
        tokens = 0
        while self._jobs:
            job = self._jobs[0]
            if job.rows.done():  # cancelled while queued
                self._jobs.popleft()
                continue
            if batch and (tokens + job.tokens > self._max_tokens or len(batch) == self._max_requests):
                break
            batch.append(self._jobs.popleft())
            tokens += job.tokens
        return batch


def split_by_tokens(tokens: Sequence[int], budget: int) -> list[slice]:
    """Consecutive runs of items whose ``tokens`` add up to at most ``budget`` (an item over it runs alone).

    A large request is submitted as one job per run: no batch holds more than the budget, however large
    the request (OpenAI's route takes 2,048 texts), and its parts run side by side as batches do.
    """
    runs: list[slice] = []
    start, total = 0, 0
    for i, count in enumerate(tokens):
        if i > start and total + count > budget:
            runs.append(slice(start, i))
            start, total = i, 0
        total += count
    if tokens:
        runs.append(slice(start, len(tokens)))
    return runs
