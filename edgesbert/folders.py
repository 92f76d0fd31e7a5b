"""Atomic writing of a folder: build it beside the target, then swap it in whole.

The swap is two renames in the same parent folder, so the target is either the old folder or the new
one, never a mix, and an exception while building leaves the target untouched.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def new_staging_folder(target: Path) -> Path:
    """An empty folder beside ``target`` to build its replacement in; OSError if that is not possible."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
    return staging


@contextmanager
def swapped_in(staging: Path, target: Path) -> Iterator[Path]:
    """Yield ``staging``; on success it replaces ``target``, on failure it is removed."""
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        retired = target.with_name(f".{target.name}.retired-{uuid.uuid4().hex[:8]}")
        target.rename(retired)
        staging.rename(target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        staging.rename(target)


@contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder that replaces ``target`` once the block finishes without error."""
    target = Path(target).resolve()
    with swapped_in(new_staging_folder(target), target) as staging:
        yield staging
