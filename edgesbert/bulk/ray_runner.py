"""The Ray runner (extra: ray): a corpus job's chunks mapped by Ray Data on a local instance or a cluster.

The Dataset: a read task iterates the job's chunks (``jobs.ChunkValues`` reads the input file itself, so
it runs on the cluster, not in the driver) and gives each chunk as one row (its texts, pickled);
``map_batches`` runs ``RowModel`` as an actor class, one single-threaded actor per CPU (or ``actors``), one
chunk per call; the driver takes the results in order (``preserve_order``) and writes the shards and the
Parquet output as for the other runners. A chunk stays whole, so an actor runs the very batches a local
runner runs and the output is the same, bit for bit.

On a cluster, every node needs edgesbert (with its backend) installed, and the model folder and the input
file at the same path (a shared file system); the output is written by the driver.
"""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from edgesbert.errors import EdgesbertError, require

require("ray", "ray")

import ray  # noqa: E402
import ray.data  # noqa: E402
from ray.data.block import BlockMetadata  # noqa: E402
from ray.data.datasource import Datasource, ReadTask  # noqa: E402

from edgesbert.bulk.workers import ModelSpec, RowModel  # noqa: E402
from edgesbert.ray_cluster import check_reachable  # noqa: E402

_HINT = (
    "Start one with `ray start --head` and pass --ray auto (or its address), or --ray alone for a local one"
)

if TYPE_CHECKING:
    from edgesbert.runtime.inputs import Text


class _ChunkActor:
    """``RowModel`` as Ray Data's callable class: the model loads once per actor."""

    def __init__(self, spec: ModelSpec) -> None:
        self.rows = RowModel(spec)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[bytes]]:
        results = [self.rows(pickle.loads(chunk)) for chunk in batch["chunk"]]
        return {"result": [pickle.dumps(result, protocol=5) for result in results]}


class RayRunner:
    """Maps chunks with Ray Data.

    ``chunks`` must be picklable and readable where Ray runs it (a list, or ``jobs.ChunkValues``): a Ray
    task, not this process, iterates it.
    """

    def __init__(self, spec: ModelSpec, address: str | None, actors: int | None = None) -> None:
        """Connect to the Ray instance at ``address`` ("auto", "ray://host:10001"), else start a local one.

        ``address=None`` follows Ray's own rule: the cluster named by RAY_ADDRESS if set, else a new
        local instance (stopped again by ``close``).
        """
        self._started = not ray.is_initialized()
        if self._started:
            if address not in (None, "auto", "local"):
                check_reachable(address, _HINT)
            try:
                ray.init(
                    address=address,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    log_to_driver=False,
                    configure_logging=False,
                )
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise EdgesbertError(f"cannot reach a Ray cluster at {address!r}: {e}. {_HINT}") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.actors = actors or max(cpus, 1)
        self.spec = replace(spec, threads=1)

    def map(self, chunks: Iterable[list[Text]]) -> Iterator[np.ndarray]:
        """Results of ``chunks``, in order."""
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # no plan, no notice that bars are off
        dataset = ray.data.read_datasource(_Chunks(chunks), num_cpus=0)  # reading is light: no CPU reserved
        dataset = dataset.map_batches(
            _ChunkActor,
            fn_constructor_args=(self.spec,),
            batch_size=1,
            # all actors from the start; min_size 1: no warning when the input has fewer chunks than actors
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=self.actors, initial_size=self.actors),
            num_cpus=1,
        )
        try:
            for batch in dataset.iter_batches(batch_size=1, prefetch_batches=self.actors):
                yield pickle.loads(batch["result"][0])
        except ray.exceptions.RayError as e:
            raise EdgesbertError(
                f"a Ray worker failed: {_reason(e)}; check that every node has edgesbert, its backend and "
                f"the model folder at {self.spec.folder}, or run without --ray to compare"
            ) from None

    def close(self) -> None:
        """Stop the local Ray instance (or disconnect from the cluster) if this runner called ``ray.init``."""
        if self._started:
            ray.shutdown()


def _reason(error: Exception) -> str:
    """What failed on the worker: the remote error's type and message, without Ray's traceback."""
    if isinstance(error, ray.exceptions.RayTaskError) and error.cause is not None:
        return f"{type(error.cause).__name__}: {error.cause}"
    last = (str(error).strip().splitlines() or ["no message"])[-1]  # an actor's error ends Ray's text
    return re.sub(r"^(?:\w+\.)+(?=\w+: )", "", last)  # edgesbert.errors.ModelLoadError -> ModelLoadError


class _Chunks(Datasource):
    """One read task that yields every chunk as one row (its texts, pickled), iterating ``chunks`` there."""

    def __init__(self, chunks: Iterable[list[Text]]) -> None:
        self.chunks = chunks

    def estimate_inmemory_data_size(self) -> None:
        return None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[ReadTask]:
        chunks = self.chunks

        def read() -> Iterator[pa.Table]:
            for chunk in chunks:
                yield pa.table({"chunk": pa.array([pickle.dumps(chunk, protocol=5)], pa.large_binary())})

        metadata = BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None)
        return [ReadTask(read, metadata)]
