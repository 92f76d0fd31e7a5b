"""Corpus jobs: embed every text of a file, or score every pair, into one Parquet file; resumable.

The input is streamed in chunks of ``chunk_rows`` records; each chunk becomes one shard of the work
folder (see ``edgesbert.bulk.shards``), and the shards are combined into the output at the end.

int8 and uint8 need a range per dimension. Ranges taken per chunk would make a row's codes depend on the
chunk it fell in, so they are fixed once per job: the minimum and maximum, per dimension, of the float
embeddings of the first ``CALIBRATION_ROWS`` valid records of the input (all of them, for a smaller input),
computed before the first chunk, whatever ``chunk_rows`` and ``processes`` are. Values outside the range
are clipped to the end buckets. The ranges are kept in the progress record (a resumed job uses them) and
written to the output's metadata (``edgesbert`` key, JSON, ``ranges``: [minima, maxima]), so that queries
can be quantized the same way with ``edgesbert.runtime.quantize_embeddings(q, precision, ranges)``.
"""

from __future__ import annotations

import hashlib
import itertools
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesbert.bulk.readers import Columns, Record, check_input, count_rows, id_type, read_records
from edgesbert.bulk.shards import METADATA_KEY, WorkFolder, skipped_file_of
from edgesbert.bulk.windows import Windows
from edgesbert.bulk.workers import LocalRunner, ModelSpec, ProcessRunner, Runner
from edgesbert.errors import ManifestError
from edgesbert.runtime.chunking import Chunk
from edgesbert.runtime.manifest import MANIFEST_FILE, Manifest, ModelKind
from edgesbert.runtime.precision import OutputPrecision, empty_embeddings, quantize_embeddings

if TYPE_CHECKING:
    import pyarrow as pa

    from edgesbert.runtime.inputs import Text

#: valid records whose float embeddings set the int8/uint8 ranges (see the module docstring)
CALIBRATION_ROWS = 1000


class OnError(str, Enum):
    """What a job does with a record it cannot use: stop with an error, or leave it out and record it."""

    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Job:
    """One embed or score job, validated; ``options`` of its fingerprint are those that change the output."""

    kind: ModelKind
    model: ModelSpec
    input: Path
    output: Path
    columns: Columns
    precision: OutputPrecision = OutputPrecision.FLOAT32
    processes: int | None = None
    chunk_rows: int = 10_000
    on_error: OnError = OnError.FAIL
    progress: bool | None = None
    ray: bool | str = False
    windows: Windows | None = None  # one row per window of each document (``--chunk-tokens``)

    def __post_init__(self) -> None:
        for name in ("processes", "chunk_rows"):
            value = getattr(self, name)
            if (value is not None or name == "chunk_rows") and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
        if self.model.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.model.batch_size}")
        if self.output.suffix.lower() != ".parquet":
            raise ValueError(f"output {self.output} must be a .parquet file")
        if self.output.is_dir() or not self.output.parent.is_dir():
            raise ValueError(f"output {self.output} must be a file in an existing folder")
        check_input(self.input, self.columns)
        if self.windows is not None:
            self.windows.check()

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed run must share with the first one: the input as it was, and the options."""
        stat = self.input.stat()
        manifest = (self.model.folder / MANIFEST_FILE).read_bytes()
        return {
            "input": {"path": str(self.input.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
            "model": {"folder": str(self.model.folder.resolve()), "manifest_sha256": _sha256(manifest)},
            "options": {
                "kind": self.kind.value,
                "variant": self.model.variant,
                "prompt_name": self.model.prompt_name,
                "batch_size": self.model.batch_size,
                "columns": {"text": list(self.columns.text), "id": self.columns.id},
                "precision": self.precision.value,
                "chunk_rows": self.chunk_rows,
                "on_error": self.on_error.value,
                "chunk_tokens": self.windows.tokens if self.windows else None,
                "chunk_overlap": self.windows.overlap if self.windows else None,
            },
        }


@dataclass(frozen=True)
class BulkResult:
    """What a finished job did: rows written and left out, how long it took, and where it wrote."""

    output: Path
    rows: int
    skipped: int
    seconds: float
    resumed_rows: int = 0

    def summary(self) -> str:
        """One line: rows, seconds, rows per second, output (and the skipped rows, if any)."""
        rate = (self.rows + self.skipped - self.resumed_rows) / self.seconds if self.seconds else 0.0
        line = f"{_rows(self.rows)} in {self.seconds:.1f} s ({rate:.0f} rows/s) -> {self.output}"
        if self.skipped:
            line += f"; {_rows(self.skipped)} skipped, listed in {skipped_file_of(self.output)}"
        return line


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def run_job(job: Job) -> BulkResult:
    """Run ``job`` to its end (resuming an interrupted run of the same job); see the module docstring."""
    start = time.perf_counter()
    manifest = _manifest_for(job)
    next(read_records(job.input, job.columns), None)  # a column missing from the header fails before any work
    work = WorkFolder(job.output, job.fingerprint(), _say)
    resumed = work.rows_done
    try:
        _run_chunks(job, work)
    except BaseException:
        if work.done == 0:  # nothing to resume
            work.remove()
        work.release()
        raise
    try:
        if work.done == 0:  # an empty input: the output still has its columns
            empty = _Chunk(0, [], [], [] if job.windows else None)
            work.add_shard(
                0, _table(empty, _no_rows(job, manifest), job, id_type(job.input, job.columns)), 0, []
            )
        written = sum(shard["written"] for shard in work.shards)
        skipped = sum(shard["skipped"] for shard in work.shards)
        work.combine(_metadata(job, manifest, work.ranges, written, skipped))
        work.remove()
    finally:
        work.release()
    return BulkResult(job.output, written, skipped, time.perf_counter() - start, resumed)


def _run_chunks(job: Job, work: WorkFolder) -> None:
    runner = open_runner(job.model, job.processes, job.ray)
    try:
        if work.ranges is None and job.precision in (OutputPrecision.INT8, OutputPrecision.UINT8):
            ranges = _calibration_ranges(job, runner)
            if ranges is not None:
                work.save_ranges(ranges)
        _write_shards(job, work, runner, None if work.ranges is None else np.asarray(work.ranges, np.float32))
    finally:
        runner.close()


def _say(message: str) -> None:
    sys.stderr.write(f"edgesbert: {message}\n")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_for(job: Job) -> Manifest:
    manifest = Manifest.load(job.model.folder)
    if manifest.kind is not job.kind:
        command = "embed" if manifest.kind is ModelKind.BI_ENCODER else "score"
        raise ManifestError(
            f"{job.model.folder} holds a {manifest.kind.value}; use edgesbert {command} (or "
            f"{'embed_corpus' if command == 'embed' else 'score_pairs'}) with it"
        )
    manifest.variant(job.model.variant)  # an unknown variant fails here, not in every worker process
    return manifest


def _no_rows(job: Job, manifest: Manifest) -> np.ndarray:
    """What a job's model gives for no rows: (0, width) in the output's dtype."""
    if job.kind is ModelKind.CROSS_ENCODER:
        return np.zeros((0, manifest.classifier.num_labels if manifest.classifier else 1), np.float32)
    return empty_embeddings(manifest.embedding.dimension if manifest.embedding else 0, job.precision)


def _calibration_ranges(job: Job, runner: Runner) -> list[list[float]] | None:
    """Per-dimension minima and maxima of the first CALIBRATION_ROWS valid records; None if there are none."""
    records = list(itertools.islice(_valid(read_records(job.input, job.columns)), CALIBRATION_ROWS))
    windows = job.windows.split([str(text) for text in _texts(records)]) if job.windows else None
    texts = _Chunk(0, records, [], windows).values
    if not texts:
        return None
    embeddings = next(iter(runner.map([texts])))
    return [embeddings.min(axis=0).tolist(), embeddings.max(axis=0).tolist()]


def _valid(records: Iterator[Record]) -> Iterator[Record]:
    return (r for r in records if r.problem is None)


@dataclass
class _Chunk:
    index: int
    records: list[Record]
    skipped: list[dict[str, Any]]
    windows: list[Chunk] | None = None  # each record's windows (``Job.windows``), one output row each

    @property
    def values(self) -> list[Text]:
        """What the model runs: the records' texts (or pairs), or their windows."""
        if self.windows is None:
            return _texts(self.records)
        return [str(self.records[w.source].value)[w.start : w.stop] for w in self.windows]


def _texts(records: list[Record]) -> list[Text]:
    return [r.value for r in records if r.value is not None]


def _chunks(job: Job, start: int, on_error: OnError) -> Iterator[_Chunk]:
    """The chunks of the input from chunk ``start`` on; a bad record raises or is set aside (``on_error``)."""
    records = read_records(job.input, job.columns)
    for index in itertools.count():
        batch = list(itertools.islice(records, job.chunk_rows))
        if not batch:
            return
        if index < start:
            continue
        bad = [r for r in batch if r.problem is not None]
        if bad and on_error is OnError.FAIL:
            raise ValueError(
                f"{bad[0].problem}; fix it, or pass --on-error skip (on_error='skip') to leave such rows out"
            )
        skipped = [{"row": r.row, "line": r.line, "error": r.problem} for r in bad]
        valid = [r for r in batch if r.problem is None]
        windows = job.windows.split([str(text) for text in _texts(valid)]) if job.windows else None
        yield _Chunk(index, valid, skipped, windows)


@dataclass(frozen=True)
class ChunkValues:
    """The valid texts (or pairs) of each chunk from chunk ``start`` on: what the runners map.

    A re-readable, picklable iterable, so that a Ray task can read the input where it runs; this process
    reads the same chunks alongside for their ids and skipped rows. It never raises for a bad record (the
    job's own reading does, under ``on_error="fail"``).
    """

    job: Job
    start: int

    def __iter__(self) -> Iterator[list[Text]]:
        return (chunk.values for chunk in _chunks(self.job, self.start, OnError.SKIP))


def _write_shards(job: Job, work: WorkFolder, runner: Runner, ranges: np.ndarray | None) -> None:
    chunks = _chunks(job, work.done, job.on_error)
    results = runner.map(ChunkValues(job, work.done))
    ids = id_type(job.input, job.columns)
    with _progress_bar(job, work.rows_done) as bar:
        for chunk, result in zip(chunks, results, strict=True):
            if len(result) != len(chunk.values):
                raise RuntimeError(f"chunk {chunk.index}: {len(result)} results for {len(chunk.values)} rows")
            if job.kind is ModelKind.BI_ENCODER:
                result = quantize_embeddings(result, job.precision, ranges)
            table = _table(chunk, result, job, ids)
            rows = len(chunk.records) + len(chunk.skipped)
            work.add_shard(chunk.index, table, rows, chunk.skipped)
            bar.update(rows)


def _table(chunk: _Chunk, result: np.ndarray, job: Job, ids: pa.DataType | None) -> pa.Table:
    """The shard of ``chunk``: ``id`` (with windows: their ``chunk``, ``start``, ``stop``) and the result."""
    import pyarrow as pa

    records, windows = chunk.records, chunk.windows
    identities = [r.id for r in records] if windows is None else [records[w.source].id for w in windows]
    columns = {"id": pa.array(identities, type=ids if ids is not None or identities else pa.string())}
    if windows is not None:
        numbers: list[int] = []
        previous = -1
        for w in windows:
            numbers.append(numbers[-1] + 1 if w.source == previous else 0)
            previous = w.source
        columns["chunk"] = pa.array(numbers, pa.int32())
        columns["start"] = pa.array([w.start for w in windows], pa.int64())
        columns["stop"] = pa.array([w.stop for w in windows], pa.int64())
    if job.kind is ModelKind.CROSS_ENCODER and result.ndim == 2 and result.shape[1] == 1:
        return pa.table({**columns, "score": pa.array(result[:, 0].astype(np.float32))})
    flat = pa.array(np.ascontiguousarray(result).reshape(-1))
    column = "embedding" if job.kind is ModelKind.BI_ENCODER else "score"
    return pa.table({**columns, column: pa.FixedSizeListArray.from_arrays(flat, result.shape[1])})


def _metadata(job: Job, manifest: Manifest, ranges: Any, rows: int, skipped: int) -> dict[str, Any]:
    return {
        "model": str(job.model.folder),
        "variant": manifest.variant(job.model.variant).name,
        "kind": job.kind.value,
        "precision": job.precision.value if job.kind is ModelKind.BI_ENCODER else "float32",
        "ranges": ranges,
        "calibration_rows": CALIBRATION_ROWS if ranges is not None else None,
        "input": str(job.input),
        "chunk_tokens": job.windows.tokens if job.windows else None,
        "chunk_overlap": job.windows.overlap if job.windows else None,
        "rows": rows,
        "skipped": skipped,
        "skipped_file": skipped_file_of(job.output).name if skipped else None,
    }


def _progress_bar(job: Job, initial: int) -> Any:
    """A tqdm bar in rows (rows/s, ETA) on stderr when it is a terminal (or ``job.progress``)."""
    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if job.progress is None else job.progress
    total = count_rows(job.input) if show else None
    return tqdm(total=total, initial=initial, unit="rows", file=sys.stderr, disable=not show)


def metadata_of(path: str | Path) -> dict[str, Any]:
    """The description a job wrote into the metadata of its output (model, precision, ranges, counts)."""
    import json

    import pyarrow.parquet as pq

    raw = pq.read_schema(path).metadata or {}
    return dict(json.loads(raw[METADATA_KEY])) if METADATA_KEY in raw else {}


def open_runner(spec: ModelSpec, processes: int | None, ray: bool | str = False) -> Runner:
    """The runner for a job's layout.

    With ``ray`` (True: Ray's own choice of instance; a string: the address), a RayRunner with
    ``processes`` actors (default: one per CPU of the cluster); else a LocalRunner for one process (with
    ``spec.threads``) or a ProcessRunner with one thread each.
    """
    if ray is not False:
        from edgesbert.bulk.ray_runner import RayRunner

        return RayRunner(spec, None if ray is True else ray, processes)
    if processes is None or processes == 1:
        return LocalRunner(spec)
    return ProcessRunner(replace(spec, threads=1), processes)
