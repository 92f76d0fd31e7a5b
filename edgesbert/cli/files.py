"""Where the command line reads texts from and writes embeddings to; no model code here.

In: arguments, stdin lines, or a ``.txt``, ``.jsonl``, ``.csv`` or ``.tsv`` file. Out: ``.npy``, ``.jsonl``
or ``.parquet`` (with pyarrow), written to a temporary file that is renamed into place when complete.
Standard library only at import; numpy and pyarrow are imported by the writers that need them.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from edgesbert.errors import MissingExtraError

if TYPE_CHECKING:
    import argparse

    import numpy as np

#: file suffixes ``read_texts`` reads, and how
INPUT_SUFFIXES = {
    ".txt": "one text per line",
    ".jsonl": "one JSON object per line",
    ".csv": "header row, then one row per text",
    ".tsv": "header row, then one row per text",
}
#: file suffixes ``write_embeddings`` writes
OUTPUT_SUFFIXES = (".npy", ".jsonl", ".parquet")
#: the ``.jsonl`` field or ``.csv``/``.tsv`` column read when ``--text-column`` is not given
DEFAULT_COLUMN = "text"
#: above this many texts, encode and rank show a progress bar (on a terminal)
PROGRESS_TEXTS = 1000

_SUPPORTED_IN = ", ".join(f"{suffix} ({how})" for suffix, how in INPUT_SUFFIXES.items())


def at_least_one(text: str) -> int:
    """Argparse type: a whole number of at least 1."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with how encode or rank were given their texts, which argparse cannot see."""
    given, what = (args.texts, "texts") if args.command == "encode" else (args.documents, "documents")
    if args.input is not None and given:
        return f"give the {what} as arguments or with --input FILE, not both"
    if args.input is None and not given:
        return f"no {what}: give them as arguments, - to read lines from stdin, or --input FILE"
    if args.text_column is not None and args.input is None:
        return "--text-column names a column of an --input file; give --input FILE"
    if getattr(args, "output", None) is not None and args.json:
        return "--json prints the embeddings and --output writes them to a file; give one of them"
    return None


def input_texts(args: argparse.Namespace, given: Sequence[str]) -> list[str]:
    """The texts of the --input file, or those given as arguments (a single ``-`` reads stdin lines)."""
    return texts_or_stdin(given) if args.input is None else read_texts(args.input, args.text_column)


def show_progress(count: int) -> bool:
    """Whether to show a progress bar: for many texts, and only to a person watching a terminal."""
    return count > PROGRESS_TEXTS and sys.stderr.isatty()


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


def check_output(path: Path) -> None:
    """Fail before any work when embeddings cannot be written to ``path``.

    Raises:
        ValueError: an unknown suffix, a folder that does not exist, or a path that is a folder.
        MissingExtraError: ``.parquet`` without pyarrow installed.
    """
    supported = ", ".join(OUTPUT_SUFFIXES)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        found = f"suffix {path.suffix!r}" if path.suffix else "no suffix"
        raise ValueError(f"--output {path} has {found}; supported: {supported}")
    if path.is_dir():
        raise ValueError(f"--output {path} is a folder; give a file name ending in {supported}")
    if not path.parent.is_dir():
        raise ValueError(f"the folder of --output {path} does not exist; create {path.parent} first")
    if path.suffix.lower() == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise MissingExtraError(
            f"writing {path} needs pyarrow, which is not installed: pip install pyarrow "
            "(or write .npy or .jsonl, which need nothing more)"
        )


def write_embeddings(path: Path, texts: Sequence[str], embeddings: np.ndarray) -> None:
    """Write ``embeddings`` (one row per text) to ``path``; a failure leaves no file and any old one intact.

    ``.npy``: the matrix in its own dtype. ``.jsonl``: ``{"text": ..., "embedding": [...]}`` per text.
    ``.parquet``: columns ``text`` and ``embedding`` (a fixed-size list in the matrix's dtype).
    """
    check_output(path)
    writers: dict[str, Callable[[IO[bytes]], None]] = {
        ".npy": lambda f: _write_npy(f, embeddings),
        ".jsonl": lambda f: _write_jsonl(f, texts, embeddings),
        ".parquet": lambda f: _write_parquet(f, texts, embeddings),
    }
    _write_atomically(path, writers[path.suffix.lower()])


def _write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through ``write`` into a temporary file beside ``path``, then rename it to ``path``."""
    mode = path.stat().st_mode & 0o777 if path.is_file() else 0o666 & ~_umask()
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, mode)  # mkstemp makes it private; give it what a plain open would
        os.replace(temporary, path)
    except BaseException:  # Ctrl-C too: never leave the partial file behind
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _write_npy(f: IO[bytes], embeddings: np.ndarray) -> None:
    import numpy as np

    np.save(f, embeddings, allow_pickle=False)


def _write_jsonl(f: IO[bytes], texts: Sequence[str], embeddings: np.ndarray) -> None:
    for text, row in zip(texts, embeddings, strict=True):
        record = {"text": text, "embedding": row.tolist()}
        f.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))


def _write_parquet(f: IO[bytes], texts: Sequence[str], embeddings: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    values = pa.array(embeddings.reshape(-1))
    rows = pa.FixedSizeListArray.from_arrays(values, embeddings.shape[1])
    pq.write_table(pa.table({"text": pa.array(list(texts), pa.string()), "embedding": rows}), f)


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
