"""Many threads, one model: every backend and hint gives the single-threaded numbers, and never hangs.

A hang fails the test instead of blocking CI: the threads are joined with a deadline, and a deadlock that
holds the GIL (which no Python code can then see) ends the process through faulthandler, with every
thread's stack printed.
"""

from __future__ import annotations

import faulthandler
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

THREADS = 16
DEADLINE_S = 120.0  # far above what a run takes here (a few seconds); only a hang reaches it


def run_concurrently(work: Callable[[int], None]) -> None:
    """Run ``work(index)`` on THREADS threads at once; fail on the first error, or if any is stuck."""
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def body(index: int) -> None:
        try:
            start.wait()
            work(index)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    faulthandler.dump_traceback_later(DEADLINE_S + 60, exit=True)  # the last resort, for a GIL-held deadlock
    try:
        pool = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(THREADS)]
        for thread in pool:
            thread.start()
        end = time.monotonic() + DEADLINE_S
        for thread in pool:
            thread.join(max(0.0, end - time.monotonic()))
        stuck = sum(thread.is_alive() for thread in pool)
        if stuck:
            faulthandler.dump_traceback(all_threads=True)
            pytest.fail(f"{stuck} of {THREADS} threads still running after {DEADLINE_S:.0f} s: a hang")
    finally:
        faulthandler.cancel_dump_traceback_later()
    if errors:
        raise errors[0]


def workload(items: Sequence[Any], calls: int, seed: int = 0) -> list[tuple[Any, int]]:
    """``calls`` (input, batch_size): single items and small batches of mixed lengths, so shapes vary."""
    rng = random.Random(seed)
    plan = []
    for i in range(calls):
        if i % 3 == 0:
            chosen: Any = items[rng.randrange(len(items))]
        else:
            size = rng.randint(2, 12)
            start = rng.randrange(len(items) - size)
            chosen = list(items[start : start + size])
        plan.append((chosen, rng.choice([2, 3, 8, 32])))
    return plan


def check_concurrent_calls(call: Callable[..., np.ndarray], plan: list[tuple[Any, int]], rounds: int) -> None:
    """Each thread makes ``rounds`` calls from ``plan``; every result equals one thread's, bit for bit."""
    expected = [call(item, batch_size) for item, batch_size in plan]
    mismatches: list[str] = []

    def work(index: int) -> None:
        for step in range(rounds):
            k = (index * 7 + step) % len(plan)
            actual = call(*plan[k])
            if not np.array_equal(actual, expected[k]):
                mismatches.append(f"call {k}: max diff {np.abs(actual - expected[k]).max():.3g}")

    run_concurrently(work)
    assert not mismatches, mismatches[:5]


@pytest.fixture(scope="module")
def folder(exported, tiny_bi_encoder_folder, tiny_cross_encoder_folder, tmp_path_factory):
    """(backend, kind) -> a tiny exported fp32 model folder; the OpenVINO ones are exported on first use."""
    from edgesbert.exporters import export_model

    root = tmp_path_factory.mktemp("stress")
    sources = {
        "bi-encoder": ("bert-mean", tiny_bi_encoder_folder),
        "cross-encoder": ("bert-1", tiny_cross_encoder_folder),
    }

    def get(backend: str, kind: str = "bi-encoder") -> Path:
        name, build = sources[kind]
        if backend == "onnxruntime":
            return exported(name, kind=kind)
        pytest.importorskip("openvino")
        if not (root / kind).exists():
            export_model(build(name), root / kind, backend="openvino", kind=kind, validation_size=16)
        return root / kind

    return get


@pytest.mark.parametrize("hint", ["latency", "throughput", None])
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_sixteen_threads_share_one_bi_encoder(folder, stsb_sentences, backend, hint):
    from edgesbert.runtime import load

    model = load(folder(backend), performance_hint=hint)
    assert type(model._backend).__module__.endswith(backend)

    def call(texts: Any, batch_size: int) -> np.ndarray:
        return model.encode(texts, batch_size=batch_size)

    check_concurrent_calls(call, workload(stsb_sentences, 48), rounds=20)  # 320 calls, a third single texts


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_sixteen_threads_share_one_cross_encoder(folder, stsb_sentences, backend):
    from edgesbert.runtime import load

    model = load(folder(backend, "cross-encoder"), performance_hint="throughput")
    pairs = list(zip(stsb_sentences[::2], stsb_sentences[1::2], strict=True))

    def call(chosen: Any, batch_size: int) -> np.ndarray:
        return np.atleast_1d(model.predict(chosen, batch_size=batch_size))

    check_concurrent_calls(call, workload(pairs, 32, seed=1), rounds=16)  # 256 calls


FIRST_RUNS = """
import sys, threading
from pathlib import Path
import numpy as np
from edgesbert.runtime.backends import PerformanceHint, RunOptions, open_backend

backend = open_backend("openvino", Path(sys.argv[1]), RunOptions(performance_hint=PerformanceHint.THROUGHPUT))
feed = {name: np.ones((2, 5), dtype=np.int64) for name in backend.input_names}
sys.setswitchinterval(1e-4)  # found to widen the race most: 13 of 15 processes hung without the fix
start = threading.Barrier(4)

def first_run():
    start.wait()
    backend.run(feed)

threads = [threading.Thread(target=first_run) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("ok")
"""


def test_first_runs_of_a_fresh_process_do_not_deadlock(folder):
    # OpenVINO's bindings build a lazy table on the first Tensor.data of a process; two threads doing that
    # at once deadlocked (the hang) in most fresh processes like these before the backend primed
    # the bindings at load. Fresh processes, since the table is built once per process; one at a time,
    # since processes side by side on few cores hit the race far less often.
    from edgesbert.runtime.manifest import Manifest

    graph = folder("openvino") / Manifest.load(folder("openvino")).variant().file
    for _ in range(4):
        try:
            child = subprocess.run(
                [sys.executable, "-c", FIRST_RUNS, str(graph)],
                capture_output=True,
                text=True,
                timeout=DEADLINE_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("the first runs of a fresh process hung")
        assert child.returncode == 0 and child.stdout.strip() == "ok", child.stderr
