"""One system in one fresh process, for the suite: load it, time it, print one JSON line.

    PYTHON -m benchmarks.suite.worker {speed|cold|describe} JOB.json    # from the repository's root

Runs with the dev environment's python for edgesbert systems (through ``edgesbert.runtime``) and with
``.venv-peers``' python for the peers (benchmarks.suite.peers: sentence-transformers' backends,
fastembed), so the top of this file imports the standard library only (and benchmarks.common.timing, which
does too): the loader of each system imports what it needs, and a cold start times exactly that. The job
file names the system (``system``), the plan of texts the suite wrote (``plan``), ``threads``,
``batch_size`` and the ``out`` file for vectors; an edgesbert system's ``load_options`` (e.g.
``cache_dir``) go to ``load()`` as they are.

Modes:

- ``speed``: bi-encoders: throughput at ``batch_size`` and over the plan's token-budget batches (for
  edgesbert under each performance hint the job's ``figure_hints`` name for that figure), the peak RSS
  after the first batch pass (VmHWM: this process's own, whatever spawned it), one-text latency
  p50/p99 and, if asked, latency by batch size; cross-encoders: pairs per second and the latency of
  ranking the plan's documents for one query, with the order each ranking found. Vectors (or scores)
  of the first pass go to ``out``.
- ``cold``: imports, load and the embedding of one sentence, as wall-clock stamps the parent subtracts
  from its own stamp taken before it spawned this process.
- ``describe``: for a peer, the folder and graph it runs (exported first if not cached).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from benchmarks.common.timing import call_ms, peak_rss_mb, percentiles, timed

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

EDGESBERT_PACKAGES = ["edgesbert", "onnxruntime", "openvino", "tokenizers", "numpy"]


def _unsupported(*args: object) -> NoReturn:
    raise TypeError(
        "no such call for this kind of system: bi-encoders encode, cross-encoders predict and rank"
    )


@dataclass
class Loaded:
    """A loaded system under one performance hint, behind the calls the measurements make.

    A bi-encoder sets ``encode``, a cross-encoder ``predict`` and ``rank``; the others raise TypeError.
    """

    hint: str  # "latency" / "throughput" for edgesbert, "default" for peers
    encode: Callable[[list[str], int], np.ndarray] = _unsupported
    predict: Callable[[list[tuple[str, str]], int], np.ndarray] = _unsupported
    rank: Callable[[str, list[str], int], list[int]] = _unsupported


# --- loading --------------------------------------------------------------------------------------


def import_runner(system: dict[str, Any]) -> Any:
    """Import what the system needs (the timed import phase of a cold start)."""
    if system["runner"] == "edgesbert":
        from edgesbert.runtime import load

        return load
    import importlib

    from benchmarks.suite import peers

    for module in peers.PEERS[system["peer"]].modules:
        importlib.import_module(module)
    return peers


def open_model(system: dict[str, Any], hint: str, threads: int, runner: Any) -> Loaded:
    if system["runner"] == "edgesbert":
        return _open_edgesbert(system, hint, threads, runner)
    return _open_peer(system, threads, runner)


def _open_edgesbert(system: dict[str, Any], hint: str, threads: int, load: Any) -> Loaded:
    import numpy as np

    options = {"threads": threads, "performance_hint": hint, **system.get("load_options", {})}  # cache_dir
    model = load(system["folder"], variant=system["variant"], **options)
    if system["kind"] == "bi-encoder":
        return Loaded(hint, encode=lambda texts, b: np.asarray(model.encode(texts, batch_size=b)))

    def rank(query: str, docs: list[str], b: int) -> list[int]:
        return [hit.corpus_id for hit in model.rank(query, docs, batch_size=b)]

    return Loaded(hint, predict=lambda pairs, b: np.asarray(model.predict(pairs, batch_size=b)), rank=rank)


def _peer_options(system: dict[str, Any], threads: int, peers: Any) -> Any:
    return peers.Options(system["model"], threads, system.get("onnx"))


def _open_peer(system: dict[str, Any], threads: int, peers: Any) -> Loaded:
    from pathlib import Path

    import numpy as np

    options = _peer_options(system, threads, peers)
    spec = peers.PEERS[system["peer"]]
    if spec.backend == "fastembed":
        embedder = peers.fastembed_model(options, Path(system["onnx"]), system["pooled"])
        return Loaded("default", encode=lambda texts, b: np.stack(list(embedder.embed(texts, batch_size=b))))
    kwargs = peers.backend_kwargs(options, spec.backend, spec.file) if spec.file else {}
    model = peers.st_model(options, system["peer"], Path(system["folder"]), **kwargs)
    if spec.kind == "bi-encoder":
        encode = lambda texts, b: np.asarray(model.encode(texts, batch_size=b, show_progress_bar=False))  # noqa: E731
        return Loaded("default", encode=encode)

    def predict(pairs: list[tuple[str, str]], b: int) -> np.ndarray:
        return np.asarray(model.predict([list(p) for p in pairs], batch_size=b, show_progress_bar=False))

    def rank(query: str, docs: list[str], b: int) -> list[int]:
        return [
            int(hit["corpus_id"]) for hit in model.rank(query, docs, batch_size=b, show_progress_bar=False)
        ]

    return Loaded("default", predict=predict, rank=rank)


def versions(system: dict[str, Any]) -> dict[str, str]:
    from benchmarks.common.timing import versions
    from benchmarks.suite.peers import PACKAGES

    return versions(EDGESBERT_PACKAGES if system["runner"] == "edgesbert" else PACKAGES)


# --- measurements ---------------------------------------------------------------------------------


class Models:
    """The system's models by hint, loaded (and warmed up) on first use, one after another."""

    def __init__(self, system: dict[str, Any], threads: int, warm_up: Callable[[Loaded], Any]) -> None:
        self._system, self._threads, self._warm_up = system, threads, warm_up
        self._runner = import_runner(system)
        self._loaded: dict[str, Loaded] = {}

    def __getitem__(self, hint: str) -> Loaded:
        if hint not in self._loaded:
            model = open_model(self._system, hint, self._threads, self._runner)
            self._warm_up(model)  # graph compilation, allocations, thread pools
            self._loaded[hint] = model
        return self._loaded[hint]


def speed_bi(models: Models, plan: dict[str, Any], job: dict[str, Any]) -> dict:
    """Throughput at the batch size, then over the budget batches (each for its hints), then latency.

    The first hint's model is loaded alone and runs the batch pass before any other is loaded, so the
    peak RSS read right after it is that of a process that loaded the system and embedded every text.
    """
    import numpy as np

    texts, batch, wanted = plan["texts"], job["batch_size"], job["figure_hints"]
    figures: dict[str, Any] = {"hints": {}}
    for i, hint in enumerate(wanted["batch"]):
        model = models[hint]  # loaded and warmed up before the clock starts
        seconds, vectors = timed(lambda m: m.encode(texts, batch), model)
        figures["hints"].setdefault(hint, {})["batch"] = len(texts) / seconds
        if i == 0:
            figures["peak_rss_mb"], figures["rss_hint"] = peak_rss_mb(), hint
            np.save(job["out"], np.asarray(vectors, dtype=np.float32))
    for hint in wanted["budget"]:
        model = models[hint]
        seconds, _ = timed(lambda m: [m.encode(texts[a:b], b - a) for a, b in plan["budget"]], model)
        figures["hints"].setdefault(hint, {})["budget"] = len(texts) / seconds
    single = models[wanted["latency"][0]]
    times = call_ms(lambda s: single.encode([s], 1), plan["latency_texts"])
    figures["latency_p50_ms"], figures["latency_p99_ms"] = percentiles(times)
    figures["latency_hint"] = single.hint
    if job["system"].get("batch_latency"):
        by_size = {"1": figures["latency_p50_ms"]}
        for size, sample in plan["batch_texts"].items():
            calls = call_ms(lambda s: single.encode(s, len(s)), [sample] * plan["batch_calls"])
            by_size[size] = float(np.median(calls))
        figures["batch_latency_ms"] = by_size
    return figures


def speed_cross(models: Models, plan: dict[str, Any], job: dict[str, Any]) -> dict:
    """Pairs per second over all pairs, then the rankings (each for its hints), with their orders."""
    import numpy as np

    pairs, batch, wanted = [tuple(p) for p in plan["pairs"]], job["batch_size"], job["figure_hints"]
    figures: dict[str, Any] = {"hints": {}, "orders": {}}
    for i, hint in enumerate(wanted["pairs"]):
        model = models[hint]  # loaded and warmed up before the clock starts
        seconds, scores = timed(lambda m: m.predict(pairs, batch), model)
        figures["hints"].setdefault(hint, {})["pairs"] = len(pairs) / seconds
        if i == 0:
            np.save(job["out"], np.asarray(scores, dtype=np.float32).reshape(len(pairs), -1)[:, 0])
    for hint in wanted["rank"]:
        model, times, orders = models[hint], [], []
        for query, docs in plan["rank"]:
            seconds, order = timed(lambda q, d, m: m.rank(q, d, batch), query, docs, model)
            times.append(seconds * 1e3)
            orders.append(order)
        p50, p99 = percentiles(times)
        figures["hints"].setdefault(hint, {}).update(rank_p50_ms=p50, rank_p99_ms=p99)
        figures["orders"][hint] = orders
    return figures


def speed(job: dict[str, Any]) -> dict[str, Any]:
    system, batch = job["system"], job["batch_size"]
    with open(job["plan"], encoding="utf-8") as f:
        plan = json.load(f)
    if system["kind"] == "bi-encoder":
        warm = lambda m: (m.encode(plan["texts"][:batch], batch), m.encode(plan["texts"][-batch:], batch))  # noqa: E731
        figures = speed_bi(Models(system, job["threads"], warm), plan, job)
    else:
        pairs = [tuple(p) for p in plan["pairs"][:batch]]
        warm = lambda m: (m.predict(pairs, batch), m.rank(plan["rank"][0][0], plan["rank"][0][1], batch))  # noqa: E731
        figures = speed_cross(Models(system, job["threads"], warm), plan, job)
    return {**figures, "versions": versions(system)}


def cold(job: dict[str, Any]) -> dict[str, Any]:
    """Wall-clock stamps of each phase; the parent holds the start."""
    system, threads = job["system"], job["threads"]
    runner = import_runner(system)
    imported = time.time()
    model = open_model(system, job["hint"], threads, runner)
    loaded = time.time()
    model.encode([job["sentence"]], 1)
    return {"imported": imported, "loaded": loaded, "embedded": time.time()}


def describe(job: dict[str, Any]) -> dict[str, Any]:
    """The folder (and for fastembed, the graph and whether it pools) a peer runs; exports if needed."""
    from pathlib import Path

    from benchmarks.common.cache import graph_mb
    from benchmarks.suite import peers as ps

    system = job["system"]
    options = _peer_options(system, job["threads"], ps)
    spec = ps.PEERS[system["peer"]]
    if spec.backend == "fastembed":
        onnx = Path(system["onnx"]) if system.get("onnx") else ps.exported(options, "st-onnx") / ps.ST_ONNX
        return {"onnx": str(onnx.resolve()), "pooled": ps.graph_output_rank(onnx) == 2,
                "model_file": str(onnx), "model_mb": graph_mb(onnx)}  # fmt: skip
    folder = ps.exported(options, system["peer"])
    if spec.file:
        model_file = folder / spec.file
    else:
        weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
        model_file = weights[0]
    return {"folder": str(folder), "model_file": str(model_file), "model_mb": graph_mb(model_file)}


def main() -> None:
    mode, job_file = sys.argv[1], sys.argv[2]
    with open(job_file, encoding="utf-8") as f:
        job = json.load(f)
    modes = {"speed": speed, "cold": cold, "describe": describe}
    stdout = sys.stdout
    sys.stdout = sys.stderr  # the tools' chatter; stdout carries only the JSON line
    result = modes[mode](job)
    print(json.dumps(result), file=stdout, flush=True)


if __name__ == "__main__":
    main()
