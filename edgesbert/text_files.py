"""Texts from the files users give: ``.txt``, ``.jsonl``, ``.csv`` and ``.tsv``, or stdin lines.

The command line (``edgesbert encode --input``, ``embed``) and bulk jobs read them alike; errors name the
file, the line and the fix. Standard library only.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

#: file suffixes ``read_texts`` reads, and how
INPUT_SUFFIXES = {
    ".txt": "one text per line",
    ".jsonl": "one JSON object per line",
    ".csv": "header row, then one row per text",
    ".tsv": "header row, then one row per text",
}


#: the ``.jsonl`` field or ``.csv``/``.tsv`` column read when ``--text-column`` is not given
DEFAULT_COLUMN = "text"


_SUPPORTED_IN = ", ".join(f"{suffix} ({how})" for suffix, how in INPUT_SUFFIXES.items())


def texts_or_stdin(values: Sequence[str]) -> list[str]:
    """The texts given, or every line of stdin for a single ``-`` (blank lines too: one row per line)."""
    if list(values) != ["-"]:
        return list(values)
    lines = []
    for number, raw in enumerate(sys.stdin.buffer, 1):
        lines.append(decoded(raw, number, "stdin").removesuffix("\n").removesuffix("\r"))
    return lines


def read_texts(source: str | Path, column: str | None = None) -> list[str]:
    """The texts of an input file, or of stdin for ``-``.

    Args:
        source: ``-`` (every line of stdin, as the ``-`` argument), or a ``.txt`` file (one text per line,
            blank lines skipped), ``.jsonl`` (one object per line) or ``.csv``/``.tsv`` (header row
            required) file; of the last three, every record is one text, blank ones included, so that
            output rows line up with the file's records.
        column: the ``.jsonl`` field or ``.csv``/``.tsv`` column of the texts (default ``text``).

    Returns:
        The texts in file order.

    Raises:
        ValueError: the file cannot be read or parsed; the message names the file, the line and the fix.
    """
    if str(source) == "-":
        if column is not None:
            raise ValueError(
                "--text-column names a column of an --input file; stdin is read one text per line"
            )
        return texts_or_stdin(["-"])
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in INPUT_SUFFIXES:
        found = f"suffix {path.suffix!r}" if path.suffix else "no suffix"
        raise ValueError(
            f"input file {path} has {found}; supported: {_SUPPORTED_IN}, or - for stdin lines; "
            "rename or convert it"
        )
    if column is not None and suffix == ".txt":
        raise ValueError(
            f"--text-column applies to .jsonl, .csv and .tsv files, but {path} is read one text per line; "
            "drop --text-column"
        )
    lines = _file_lines(path)
    if suffix == ".txt":
        texts = [line.rstrip("\r\n") for line in lines if line.strip()]
    elif suffix == ".jsonl":
        texts = _jsonl_texts(lines, path, column or DEFAULT_COLUMN)
    else:
        texts = _csv_texts(lines, path, column or DEFAULT_COLUMN, "\t" if suffix == ".tsv" else ",")
    if not texts:
        raise ValueError(f"input file {path} holds no texts; write {INPUT_SUFFIXES[suffix]}")
    return texts


def decoded(raw: bytes, number: int, where: str) -> str:
    """``raw`` as UTF-8 text, or a ValueError naming ``where`` and line ``number``."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"line {number} of {where} is not UTF-8 text (byte {raw[e.start]:#04x} at byte {e.start + 1} "
            "of the line); convert the input to UTF-8, e.g. with iconv"
        ) from None


def _file_lines(path: Path) -> list[str]:
    """The lines of ``path``, decoded, line endings kept (csv needs them); a leading BOM dropped."""
    try:
        with path.open("rb") as f:
            raw_lines = f.readlines()
    except FileNotFoundError:
        raise ValueError(f"input file {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise ValueError(
            f"input file {path} is a folder; give one {', '.join(INPUT_SUFFIXES)} file"
        ) from None
    except OSError as e:
        raise ValueError(f"cannot read input file {path}: {e.strerror or e}; check its permissions") from e
    if raw_lines:
        raw_lines[0] = raw_lines[0].removeprefix(b"\xef\xbb\xbf")
    return [decoded(raw, number, f"input file {path}") for number, raw in enumerate(raw_lines, 1)]


def json_kind(value: object) -> str:
    """What JSON calls ``value``'s type (null, number, array, ...), for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _jsonl_texts(lines: list[str], path: Path, field: str) -> list[str]:
    example = f'write one JSON object per line, like {{"{field}": "..."}}'
    texts: list[str] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"line {number} of {path}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where} is not valid JSON ({e.msg}: column {e.colno}); {example}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{where} is a JSON {json_kind(record)}, not an object; {example}")
        if field not in record:
            listed = ", ".join(repr(key) for key in record) or "none"
            raise ValueError(
                f"{where} has no field {field!r} (its fields: {listed}); "
                "pass --text-column naming the text field, present on every line"
            )
        if not isinstance(record[field], str):
            raise ValueError(
                f"field {field!r} on {where} is a JSON {json_kind(record[field])}, not a string; "
                "texts must be strings"
            )
        texts.append(record[field])
    return texts


def _csv_texts(lines: list[str], path: Path, column: str, delimiter: str) -> list[str]:
    kind, separators = ("TSV", "tabs") if delimiter == "\t" else ("CSV", "commas")
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    try:
        header = next((row for row in reader if row), [])
        available = [name.strip() for name in header]
        if column not in available:
            listed = ", ".join(repr(name) for name in available) or "none"
            raise ValueError(
                f"input file {path} has no column {column!r} in its header row (columns found: {listed}); "
                f"pass --text-column naming one of them, or add a header row if the {kind} file has none"
            )
        index = available.index(column)
        texts: list[str] = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(
                    f"line {reader.line_num} of {path} has {len(row)} fields, but the header row has "
                    f"{len(header)}; quote fields that contain {separators}"
                )
            texts.append(row[index])
    except csv.Error as e:
        raise ValueError(
            f"input file {path} is not valid {kind} near line {reader.line_num} ({e}); check its quoting"
        ) from None
    return texts
