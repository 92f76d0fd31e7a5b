"""The work folder of a job: one Parquet shard per chunk and a progress record, combined at the end.

The work folder, ``.OUTPUT.work`` beside the output, holds ``shard-NNNNNN.parquet`` (the rows of chunk N),
``shard-NNNNNN.skipped.jsonl`` (the rows of chunk N left out, if any) and ``progress.json``: the job's
fingerprint (input path, size and mtime, the options that change the output), the int8/uint8 ranges and
the shards done. Every file is written to a temporary name and renamed, so a killed job leaves only whole
files, and the rerun of the same command continues after the last recorded shard. A fingerprint that
differs (other options, a changed input) means starting over.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgesbert.folders import replace_atomically

if TYPE_CHECKING:
    import pyarrow as pa

#: the schema-metadata key of the output's description (JSON)
METADATA_KEY = b"edgesbert"
PROGRESS_FILE = "progress.json"
PROGRESS_FORMAT = 1


def work_folder_of(output: Path) -> Path:
    """The hidden folder beside ``output`` where its shards are built."""
    return output.with_name(f".{output.name}.work")


def skipped_file_of(output: Path) -> Path:
    """The sidecar listing the rows left out of ``output`` (one JSON object per row)."""
    return output.with_name(f"{output.name}.skipped.jsonl")


class WorkFolder:
    """The shards and the progress record of one job (see the module docstring)."""

    def __init__(self, output: Path, fingerprint: dict[str, Any], say: Callable[[str], None]) -> None:
        """Open the work folder of ``output``: resume it if its fingerprint matches, else start over."""
        self.output = output
        self.folder = work_folder_of(output)
        self.fingerprint = fingerprint
        self.ranges: list[list[float]] | None = None
        self.shards: list[dict[str, int]] = []
        self._lock: int | None = None
        if self.folder.exists():
            self._take_lock()
        record = self._read_progress()
        if record is not None and record.get("fingerprint") == fingerprint:
            self.ranges = record.get("ranges")
            self.shards = list(record.get("shards", []))
            if self.shards:
                rows = sum(shard["rows"] for shard in self.shards)
                say(f"resuming: {len(self.shards)} chunks ({rows} rows) were done by an earlier run")
        elif self.folder.exists():
            why = (
                "its options or input differ" if record is not None else "it has no readable progress record"
            )
            say(f"starting over: the unfinished work in {self.folder} is not this job's ({why})")
            shutil.rmtree(self.folder)
            self._release_lock()
        self.folder.mkdir(exist_ok=True)
        if self._lock is None:
            self._take_lock()
        for debris in self.folder.glob(".*.part"):  # temporary files of a killed run
            debris.unlink(missing_ok=True)
        self._save()

    @property
    def done(self) -> int:
        """How many chunks are written (always the first ones)."""
        return len(self.shards)

    @property
    def rows_done(self) -> int:
        """Rows of the input behind the written chunks (written and skipped ones)."""
        return sum(shard["rows"] for shard in self.shards)

    def shard_path(self, index: int) -> Path:
        """The Parquet file of chunk ``index``."""
        return self.folder / f"shard-{index:06d}.parquet"

    def skipped_path(self, index: int) -> Path:
        """The rows chunk ``index`` left out, one JSON object per line."""
        return self.folder / f"shard-{index:06d}.skipped.jsonl"

    def save_ranges(self, ranges: list[list[float]]) -> None:
        """Record the int8/uint8 ranges, so that a resumed job quantizes as the first run did."""
        self.ranges = ranges
        self._save()

    def add_shard(self, index: int, table: pa.Table, rows: int, skipped: list[dict[str, Any]]) -> None:
        """Write chunk ``index`` (its table, ``rows`` input rows, the ``skipped`` ones) and record it."""
        import pyarrow.parquet as pq

        if index != self.done:
            raise RuntimeError(f"chunk {index} written out of order after {self.done} chunks")
        lines = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in skipped)
        if skipped:
            replace_atomically(self.skipped_path(index), lambda p: p.write_text(lines, "utf-8"))
        replace_atomically(self.shard_path(index), lambda p: pq.write_table(table, p))
        self.shards.append({"rows": rows, "written": table.num_rows, "skipped": len(skipped)})
        self._save()

    def combine(self, metadata: dict[str, Any]) -> None:
        """Write the shards, in order, as the output file (and the skipped rows as its sidecar).

        One shard is in memory at a time. The output gets ``metadata`` as JSON under ``METADATA_KEY``.
        """
        import pyarrow.parquet as pq

        tables = (pq.read_table(self.shard_path(i)) for i in range(self.done))
        first = next((t for t in tables if t.num_rows), None)  # an empty shard's id type may be a guess
        schema = (first if first is not None else pq.read_table(self.shard_path(0))).schema
        schema = schema.with_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})

        def write(path: Path) -> None:
            with pq.ParquetWriter(path, schema) as writer:
                for i in range(self.done):
                    table = pq.read_table(self.shard_path(i))
                    if table.num_rows:
                        writer.write_table(table.cast(schema))

        sidecar = skipped_file_of(self.output)
        if any(shard["skipped"] for shard in self.shards):
            replace_atomically(sidecar, self._write_skipped, self.folder)
        else:
            sidecar.unlink(missing_ok=True)  # an earlier run's list is not this output's
        replace_atomically(self.output, write, self.folder)

    def remove(self) -> None:
        """Remove the work folder (after ``combine``) and release it."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self._release_lock()

    def release(self) -> None:
        """Let another run take the work folder (this one stopped early; the folder stays to resume)."""
        self._release_lock()

    def _take_lock(self) -> None:
        """Hold an advisory lock on the folder while this job lives; a second job on it is refused."""
        if sys.platform == "win32":
            return
        import fcntl

        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ValueError(
                f"another edgesbert job is writing {self.output} (its work folder {self.folder} is in use); "
                "wait for it to finish, or choose another output"
            ) from None
        self._lock = fd

    def _release_lock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _write_skipped(self, path: Path) -> None:
        with path.open("wb") as out:
            for i in range(self.done):
                if self.skipped_path(i).exists():
                    with self.skipped_path(i).open("rb") as part:
                        shutil.copyfileobj(part, out)

    def _read_progress(self) -> dict[str, Any] | None:
        try:
            record = json.loads((self.folder / PROGRESS_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("format") != PROGRESS_FORMAT:
            return None
        shards = record.get("shards", [])
        if not all(self.shard_path(i).is_file() for i in range(len(shards))):
            return None
        return record

    def _save(self) -> None:
        record = {
            "format": PROGRESS_FORMAT,
            "fingerprint": self.fingerprint,
            "ranges": self.ranges,
            "shards": self.shards,
        }
        replace_atomically(self.folder / PROGRESS_FILE, lambda p: p.write_text(json.dumps(record), "utf-8"))
