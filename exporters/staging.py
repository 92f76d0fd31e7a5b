"""Atomic writing of a model folder: build it beside the target, then swap it in whole."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgesbert.errors import ExportError
from edgesbert.folders import new_staging_folder, swapped_in
from edgesbert.runtime.manifest import MANIFEST_FILE


def check_replaceable(output: Path) -> None:
    """Refuse to overwrite anything but an edgesbert model folder or an empty folder."""
    if output.exists() and not output.is_dir():
        raise ExportError(f"{output} exists and is not a folder; choose another --output")
    if output.is_dir() and any(output.iterdir()) and not (output / MANIFEST_FILE).is_file():
        raise ExportError(
            f"{output} is a non-empty folder that is not an edgesbert model folder; "
            "refusing to overwrite it: choose another --output"
        )


@contextmanager
def staged_folder(output: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``output``, on failure it is removed.

    Like ``edgesbert.folders.staged_folder``, and it refuses to replace anything but a model folder.
    """
    output = Path(output).resolve()
    check_replaceable(output)
    try:
        staging = new_staging_folder(output)
    except OSError as e:
        raise ExportError(f"cannot write into {output.parent}: {e.strerror or e}; pick another output") from e
    with swapped_in(staging, output):
        yield staging
