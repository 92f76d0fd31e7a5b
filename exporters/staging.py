"""Atomic writing of a model folder: build it beside the target, then swap it in whole."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgesbert.errors import ExportError
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

    The swap is two renames in the same parent folder, so ``output`` is either the old folder or the
    new one, never a mix, and an exception inside the block leaves ``output`` untouched.
    """
    output = Path(output).resolve()
    check_replaceable(output)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.staging-", dir=output.parent))
    except OSError as e:
        raise ExportError(f"cannot write into {output.parent}: {e.strerror or e}; pick another output") from e
    staging.chmod(0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if output.exists():
        retired = output.with_name(f".{output.name}.retired-{uuid.uuid4().hex[:8]}")
        output.rename(retired)
        staging.rename(output)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(output)
