"""Where the command line reads texts from and writes embeddings to; no model code here.

In: arguments, stdin lines, or a file (read by ``edgesbert.text_files``). Out: ``.npy``, ``.jsonl``
or ``.parquet`` (with pyarrow), written to a temporary file that is renamed into place when complete.
Standard library only at import; numpy and pyarrow are imported by the writers that need them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from edgesbert.errors import MissingExtraError
from edgesbert.text_files import read_texts, texts_or_stdin

if TYPE_CHECKING:
    import argparse

    import numpy as np

#: file suffixes ``write_embeddings`` writes
OUTPUT_SUFFIXES = (".npy", ".jsonl", ".parquet")
#: above this many texts, encode and rank show a progress bar (on a terminal)
PROGRESS_TEXTS = 1000


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
