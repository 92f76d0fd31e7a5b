"""Dynamic batching: budgets, order, failures; 500 concurrent requests over real HTTP, all answered right."""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgesbert.runtime import load
from edgesbert.serve.batching import BatchStats, DynamicBatcher, split_by_tokens
from tests.serve.conftest import Server


def run_batcher(jobs: list[tuple[list[int], int]], **limits) -> tuple[list[np.ndarray], list[list[int]]]:
    """Submit ``jobs`` (items, tokens) at once; returns each job's rows and the batches ``run`` saw."""
    seen: list[list[int]] = []

    def run(items: list[int]) -> np.ndarray:
        seen.append(list(items))
        return np.array(items, dtype=np.float32)[:, None] * 10

    async def main() -> list[np.ndarray]:
        batcher: DynamicBatcher[int] = DynamicBatcher(run, name="test", **limits)
        batcher.start()
        rows = await asyncio.gather(*(batcher.submit(items, tokens) for items, tokens in jobs))
        await batcher.close()
        return list(rows)

    return asyncio.run(main()), seen


def test_each_request_gets_its_own_rows_in_order():
    jobs = [([i * 10 + k for k in range(1 + i % 3)], 5) for i in range(20)]
    rows, batches = run_batcher(jobs, max_batch_tokens=10_000, max_batch_requests=None)
    for (items, _), got in zip(jobs, rows, strict=True):
        np.testing.assert_array_equal(got[:, 0], np.array(items) * 10)
    # submitted together, they were merged, oldest first
    assert len(batches) < len(jobs)
    assert [item for batch in batches for item in batch] == [i for items, _ in jobs for i in items]


def test_token_budget_and_request_cap_bound_every_batch():
    tokens = [30, 30, 30, 50, 10, 10, 10, 10, 10, 200, 5]
    jobs = [([i], t) for i, t in enumerate(tokens)]
    _, batches = run_batcher(jobs, max_batch_tokens=100, max_batch_requests=4)
    for batch in batches:
        assert len(batch) <= 4
        assert sum(tokens[i] for i in batch) <= 100 or len(batch) == 1  # an over-budget request runs alone
    assert [9] in batches  # 200 tokens: alone
    assert [i for batch in batches for i in batch] == list(range(len(tokens)))  # oldest first, none lost


def test_a_large_request_splits_into_runs_within_the_budget():
    tokens = [30, 30, 30, 50, 10, 200, 5, 95]
    runs = split_by_tokens(tokens, 100)
    assert runs == [slice(0, 3), slice(3, 5), slice(5, 6), slice(6, 8)]  # 200: alone; 5 + 95 fit
    assert split_by_tokens(tokens, 1000) == [slice(0, 8)]
    assert split_by_tokens([], 100) == []


def test_a_failing_batch_fails_only_its_own_requests():
    calls = 0

    def run(items: list[str]) -> np.ndarray:
        nonlocal calls
        calls += 1
        if "bad" in items:
            raise RuntimeError("backend failed")
        return np.ones((len(items), 1), dtype=np.float32)

    async def main() -> list[object]:
        batcher: DynamicBatcher[str] = DynamicBatcher(run, name="t", max_batch_tokens=2, max_batch_requests=9)
        batcher.start()
        results = await asyncio.gather(
            batcher.submit(["a"], 1), batcher.submit(["bad"], 2), batcher.submit(["c"], 1),
            return_exceptions=True,
        )  # fmt: skip
        await batcher.close()
        return results

    first, second, third = asyncio.run(main())
    assert isinstance(first, np.ndarray)
    assert isinstance(second, RuntimeError)
    assert isinstance(third, np.ndarray)
    assert calls == 3  # the budget of 2 tokens kept the three apart


def test_a_cancelled_request_is_dropped_from_the_queue():
    seen: list[list[str]] = []

    def run(items: list[str]) -> np.ndarray:
        seen.append(items)
        return np.zeros((len(items), 1), dtype=np.float32)

    async def main() -> None:
        batcher: DynamicBatcher[str] = DynamicBatcher(run, name="", max_batch_tokens=99, max_batch_requests=2)
        gone = asyncio.ensure_future(batcher.submit(["gone"], 1))
        kept = asyncio.ensure_future(batcher.submit(["kept"], 1))
        await asyncio.sleep(0)
        gone.cancel()
        batcher.start()
        await kept
        await batcher.close()

    asyncio.run(main())
    assert seen == [["kept"]]


def test_batch_stats_reach_the_callback():
    stats: list[BatchStats] = []

    async def main() -> None:
        batcher: DynamicBatcher[int] = DynamicBatcher(
            lambda items: np.zeros((len(items), 1)), name="t", max_batch_tokens=100, max_batch_requests=None,
            on_batch=stats.append,
        )  # fmt: skip
        batcher.start()
        await asyncio.gather(batcher.submit([1, 2], 7), batcher.submit([3], 4))
        await batcher.close()

    asyncio.run(main())
    assert sum(s.requests for s in stats) == 2
    assert sum(s.items for s in stats) == 3
    assert sum(s.tokens for s in stats) == 11


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} (\S+)$"
    return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.MULTILINE))


def test_500_concurrent_requests_all_answered_right_and_merged(server: Server, stsb_sentences):
    model = load(server.folders["mini"])
    expected = {text: row for text, row in zip(stsb_sentences, model.encode(stsb_sentences), strict=True)}
    n = len(stsb_sentences)
    requests = [stsb_sentences[i % n : i % n + 1 + i % 4] for i in range(500)]
    before = server.get("/metrics").body.decode()

    def send(texts: list[str]) -> tuple[int, list[list[float]]]:
        reply = server.post("/embed", {"inputs": texts, "model": "mini"})
        return reply.status, reply.json()

    with ThreadPoolExecutor(64) as pool:
        replies = list(pool.map(send, requests))
    for texts, (status, rows) in zip(requests, replies, strict=True):
        assert status == 200
        np.testing.assert_allclose(np.array(rows), np.stack([expected[t] for t in texts]), atol=1e-6)

    after = server.get("/metrics").body.decode()
    labels = '{model="mini"}'
    batches = metric(after, "edgesbert_batch_requests_count", labels) - metric(
        before, "edgesbert_batch_requests_count", labels
    )
    merged = metric(after, "edgesbert_batch_requests_sum", labels) - metric(
        before, "edgesbert_batch_requests_sum", labels
    )
    assert merged == 500
    assert batches < 500, "concurrent requests were never merged into one batch"


@pytest.mark.parametrize("budget", [64, 100_000])
def test_results_do_not_depend_on_the_batch_they_ran_in(served_folders, stsb_sentences, budget):
    from tests.serve.conftest import server_in_thread, settings_for

    texts = stsb_sentences[:40]
    expected = load(served_folders["mini"]).encode(texts)
    settings = settings_for({"mini": served_folders["mini"]}, max_batch_tokens=budget)
    with server_in_thread(settings) as s, ThreadPoolExecutor(16) as pool:
        rows = list(pool.map(lambda t: s.post("/embed", {"inputs": t}).json()[0], texts))
    np.testing.assert_allclose(np.array(rows), expected, atol=1e-6)
