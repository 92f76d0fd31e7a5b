"""Atomic writing of a model folder: build it beside the target, then swap it in whole."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgesbert.errors import ExportError
from edgesbert.folders import new_staging_folder, swapped_in
from edgesbert.runtime.manifest import MANIFEST_FILE

#: errors of a full or unwritable file system, and what to do about them
STORAGE_ERRORS = {
    errno.ENOSPC: "free some space or choose another --output",
    errno.EDQUOT: "free some space or choose another --output",
    errno.EFBIG: "choose another --output",
    errno.EROFS: "choose another --output",
}


def check_replaceable(output: Path) -> None:
    """Refuse to overwrite anything but an edgesbert model folder or an empty folder."""
    if output.exists() and not output.is_dir():
        raise ExportError(f"{output} exists and is not a folder; choose another --output")
    if output.is_dir() and any(output.iterdir()) and not (output / MANIFEST_FILE).is_file():
        raise ExportError(
            f"{output} is a non-empty folder that is not an edgesbert model folder; "
            "refusing to overwrite it: choose another --output"
        )
    if output.is_dir() and os.path.ismount(output):
        raise ExportError(
            f"{output} is a mount point, which cannot be replaced whole; choose a folder in it as --output"
        )


def storage_error(error: BaseException) -> int | None:
    """The errno in ``STORAGE_ERRORS`` behind ``error``, however a backend library wrapped it, or None.

    Python code raises OSError; torch, onnx and tokenizers may raise their own types, or plain
    ``Exception``, with the system's message ("No space left on device (os error 28)") in the text.
    """
    seen: BaseException | None = error
    for _ in range(8):  # the error, its cause, its cause's cause...
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in STORAGE_ERRORS:
            return seen.errno
        for code in STORAGE_ERRORS:
            if os.strerror(code) in str(seen):
                return code
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def staged_folder(output: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``output``, on failure it is removed.

    Like ``edgesbert.folders.staged_folder``, and it refuses to replace anything but a model folder. A full
    or read-only file system, and a failed swap, become an ExportError that says ``output`` was kept.
    """
    output = Path(output).resolve()
    check_replaceable(output)
    try:
        staging = new_staging_folder(output)
    except OSError as e:
        raise ExportError(f"cannot write into {output.parent}: {e.strerror or e}; pick another output") from e
    built = False
    try:
        with swapped_in(staging, output):
            try:
                yield staging
            except Exception as e:
                if (code := storage_error(e)) is None:
                    raise
                raise ExportError(
                    f"{os.strerror(code).lower()} in {output.parent} while writing the export; "
                    f"{output} was left as it was: {STORAGE_ERRORS[code]}"
                ) from e
            built = True
    except OSError as e:
        if not built:
            raise
        raise ExportError(f"cannot replace {output}: {e.strerror or e}; it was left as it was") from e
