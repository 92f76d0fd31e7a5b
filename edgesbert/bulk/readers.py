"""Corpus files read as a stream of records: one line (or Parquet row) at a time, never the whole file.

Formats: ``.txt`` (every line one text, so a blank line is an empty text), ``.jsonl`` (one object per
line; blank lines are not records), ``.csv``/``.tsv`` (a header row, then one record per row) and
``.parquet`` (read in record batches). A record that cannot be used (bad JSON, non-UTF-8 bytes, a missing
field, an empty text) comes back with a ``problem`` instead of a value, so the job decides whether to fail
or skip it; a problem of the whole file (a column missing from the header or schema) raises ValueError.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from edgesbert.runtime.inputs import invalid_text_error
from edgesbert.text_files import DEFAULT_COLUMN, decoded, json_kind

if TYPE_CHECKING:
    import pyarrow as pa

    from edgesbert.runtime.inputs import Text

#: file suffixes read, and what each holds
FORMATS = {
    ".txt": "one text per line",
    ".jsonl": "one JSON object per line",
    ".csv": "a header row, then one row per record",
    ".tsv": "a header row, then one row per record",
    ".parquet": "a Parquet table",
}
#: Parquet rows converted to Python at a time (whatever the chunk size of the job)
PARQUET_BATCH_ROWS = 4096


class Record(NamedTuple):
    """One record of the input: its 0-based row, its 1-based line (None for Parquet), value, id, problem."""

    row: int
    line: int | None
    value: Text | None
    id: object
    problem: str | None


@dataclass(frozen=True)
class Columns:
    """Which fields hold the text (one name) or the pair (two names), and which one the ids."""

    text: tuple[str, ...] = (DEFAULT_COLUMN,)
    id: str | None = None
    #: whether the names were given (a .txt file has no fields to choose from)
    chosen: bool = False


def check_input(path: Path, columns: Columns) -> None:
    """Raise ValueError if ``path`` is not a readable corpus file for ``columns`` (before any work)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        found = f"suffix {path.suffix!r}" if path.suffix else "no suffix"
        supported = ", ".join(f"{s} ({how})" for s, how in FORMATS.items())
        raise ValueError(f"input file {path} has {found}; supported: {supported}; rename or convert it")
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ValueError(f"input file {path} {what}; give one {', '.join(FORMATS)} file")
    if suffix == ".txt" and (columns.chosen or columns.id is not None or len(columns.text) > 1):
        raise ValueError(
            f"{path} is read one text per line and has no columns; write .jsonl, .csv, .tsv or .parquet "
            "to name text, pair or id columns"
        )


def read_records(path: Path, columns: Columns) -> Iterator[Record]:
    """The records of ``path`` in file order (see the module docstring)."""
    check_input(path, columns)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _txt_records(path)
    if suffix == ".jsonl":
        return _jsonl_records(path, columns)
    if suffix == ".parquet":
        return _parquet_records(path, columns)
    return _csv_records(path, columns, "\t" if suffix == ".tsv" else ",")


def id_type(path: Path, columns: Columns) -> pa.DataType | None:
    """The Arrow type of the ids: the row number's, the Parquet column's, text for csv; None: inferred."""
    import pyarrow as pa

    if columns.id is None:
        return pa.int64()
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).schema_arrow.field(columns.id).type
    return pa.string() if suffix in (".csv", ".tsv") else None


def count_rows(path: Path) -> int:
    """About how many records ``path`` holds (for a progress bar): Parquet's row count, else its lines."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            lines += block.count(b"\n")
    return lines - (path.suffix.lower() in (".csv", ".tsv"))


def _value_problem(value: object, name: str, where: str) -> str | None:
    """Why ``value`` of field ``name`` cannot be embedded or scored, or None if it can."""
    if value is None:
        return f"{where}: {name!r} is null; give every record a text"
    if not isinstance(value, str):
        return f"{where}: {name!r} is a JSON {json_kind(value)}, not a string; texts must be strings"
    if not value.strip():
        return f"{where}: {name!r} is empty; give every record a text"
    invalid = invalid_text_error([value], name, single=True)
    return None if invalid is None else f"{where}: {invalid}"


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The raw lines of ``path``, numbered from 1, one at a time; a leading BOM dropped."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            yield number, raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw


def _txt_records(path: Path) -> Iterator[Record]:
    for row, (number, raw) in enumerate(_lines(path)):
        try:
            text = decoded(raw, number, f"input file {path}").rstrip("\r\n")
        except ValueError as e:
            yield Record(row, number, None, row, str(e))
            continue
        if text.strip():
            yield Record(row, number, text, row, None)
        else:
            problem = (
                f"line {number} of {path} is blank: each line of a .txt file is one text; remove blank lines"
            )
            yield Record(row, number, None, row, problem)


class _IdKinds:
    """The kind of id (number or string) of a .jsonl file: that of the first record, for every record."""

    def __init__(self) -> None:
        self.first: type | None = None

    def problem(self, value: object, name: str, where: str) -> str | None:
        if value is None:
            return f"{where}: id field {name!r} is missing or null; give every record an id"
        kind = int if isinstance(value, int) and not isinstance(value, bool) else type(value)
        if kind not in (int, str):
            return f"{where}: id {name!r} is a JSON {json_kind(value)}; ids must be whole numbers or strings"
        self.first = self.first or kind
        if kind is not self.first:
            earlier = "whole numbers" if self.first is int else "strings"
            return f"{where}: id {value!r} is not like the earlier ids ({earlier}); use one kind of id"
        return None


def _jsonl_records(path: Path, columns: Columns) -> Iterator[Record]:
    ids = _IdKinds()
    row = 0
    for number, raw in _lines(path):
        where = f"line {number} of {path}"
        try:
            line = decoded(raw, number, f"input file {path}")
        except ValueError as e:
            yield Record(row, number, None, row, str(e))
            row += 1
            continue
        if not line.strip():
            continue
        yield _json_record(line, row, number, where, columns, ids)
        row += 1


def _json_record(line: str, row: int, number: int, where: str, columns: Columns, ids: _IdKinds) -> Record:
    example = f"write one JSON object per line, like {{{json.dumps(columns.text[0])}: ...}}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        return Record(
            row, number, None, row, f"{where} is not valid JSON ({e.msg}: column {e.colno}); {example}"
        )
    if not isinstance(record, dict):
        return Record(
            row, number, None, row, f"{where} is a JSON {json_kind(record)}, not an object; {example}"
        )
    for name in columns.text:
        if name not in record:
            listed = ", ".join(repr(key) for key in record) or "none"
            option = "--text-column" if len(columns.text) == 1 else "--query-column and --document-column"
            missing = f"{where} has no field {name!r} (its fields: {listed}); name the fields with {option}"
            return Record(row, number, None, row, missing)
    identity = record.get(columns.id) if columns.id is not None else row
    problem = ids.problem(identity, columns.id, where) if columns.id is not None else None
    problem = problem or next(
        (p for name in columns.text if (p := _value_problem(record[name], name, where))), None
    )
    return Record(row, number, None if problem else _value(record, columns), identity, problem)


def _value(record: dict, columns: Columns) -> Text:
    texts = [record[name] for name in columns.text]
    return texts[0] if len(texts) == 1 else (texts[0], texts[1])


def _csv_records(path: Path, columns: Columns, delimiter: str) -> Iterator[Record]:
    bad_lines: dict[int, str] = {}

    def lines() -> Iterator[str]:
        for number, raw in _lines(path):
            try:
                yield decoded(raw, number, f"input file {path}")
            except ValueError as e:
                bad_lines[number] = str(e)
                yield raw.decode("utf-8", "replace")

    reader = csv.reader(lines(), delimiter=delimiter, strict=True)
    header = _csv_header(reader, path, columns, bad_lines)
    indices = [header.index(name) for name in (*columns.text, *([columns.id] if columns.id else []))]
    row = 0
    while True:
        first = reader.line_num + 1
        try:
            fields = next(reader)
            problem = None
        except StopIteration:
            return
        except csv.Error as e:
            fields, problem = (
                [],
                f"line {reader.line_num} of {path} is not valid CSV ({e}); check its quoting",
            )
        if not fields and problem is None:
            continue
        where = f"line {first} of {path}"
        unreadable = [bad_lines.pop(n) for n in range(first, reader.line_num + 1) if n in bad_lines]
        problem = problem or next(iter(unreadable), None)
        if problem is None and len(fields) != len(header):
            problem = f"{where} has {len(fields)} fields, but the header row has {len(header)}; quote fields"
        values = [fields[i] for i in indices] if problem is None else []
        problem = problem or next(
            (
                p
                for name, v in zip(columns.text, values, strict=False)
                if (p := _value_problem(v, name, where))
            ),
            None,
        )
        identity = values[-1] if columns.id and problem is None else row
        value: Text | None = None
        if problem is None:
            value = values[0] if len(columns.text) == 1 else (values[0], values[1])
        yield Record(row, first, value, identity, problem)
        row += 1


def _csv_header(reader: Iterator[list[str]], path: Path, columns: Columns, bad: dict[int, str]) -> list[str]:
    try:
        header = [name.strip() for name in next((row for row in reader if row), [])]
    except csv.Error as e:
        raise ValueError(f"the header row of {path} is not valid CSV ({e}); check its quoting") from None
    if 1 in bad:
        raise ValueError(bad[1])
    _require_columns(path, columns, header, "in its header row")
    return header


def _require_columns(path: Path, columns: Columns, available: list[str], where: str) -> None:
    wanted = [*columns.text, *([columns.id] if columns.id else [])]
    missing = [name for name in wanted if name not in available]
    if missing:
        listed = ", ".join(repr(name) for name in available) or "none"
        raise ValueError(
            f"input file {path} has no column {missing[0]!r} {where} (columns found: {listed}); "
            "pass --text-column, --query-column, --document-column or --id-column naming one of them"
        )


def _parquet_records(path: Path, columns: Columns) -> Iterator[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    schema = file.schema_arrow
    _require_columns(path, columns, schema.names, "in its schema")
    for name in columns.text:
        kind = schema.field(name).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise ValueError(f"column {name!r} of {path} holds {kind}, not strings; texts must be strings")
    names = [*columns.text, *([columns.id] if columns.id else [])]
    row = 0
    for batch in file.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=names):
        lists = [batch.column(name).to_pylist() for name in names]
        for values in zip(*lists, strict=True):
            where = f"row {row} of {path}"
            identity = values[-1] if columns.id else row
            problem = None
            if columns.id and identity is None:
                problem = f"{where}: id column {columns.id!r} is null; give every record an id"
            problem = problem or next(
                (
                    p
                    for name, v in zip(columns.text, values, strict=False)
                    if (p := _value_problem(v, name, where))
                ),
                None,
            )
            value = None if problem else (values[0] if len(columns.text) == 1 else (values[0], values[1]))
            yield Record(row, None, value, identity, problem)
            row += 1
