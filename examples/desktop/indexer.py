"""Bring an index up to date with its folder: embed only the files added or changed, drop the removed.

A file counts as unchanged when its mtime and size match the record, or, when they do not, its SHA-256
still does. Files are embedded in batches of paragraphs; between batches ``cancelled()`` is asked, and a
cancelled run keeps every file finished so far, so the index stays usable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from examples.desktop.chunker import SUFFIXES, UnreadableFile, chunk_file
from examples.desktop.store import FileRecord, Index, sha256_of

#: paragraphs embedded per call (and between two looks at Cancel)
BATCH = 64


@dataclass
class IndexReport:
    """What one run did: files embedded, removed, unchanged, skipped (path -> why), and whether cancelled."""

    embedded: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    cancelled: bool = False
    paragraphs: int = 0
    rebuilt: bool = False

    @property
    def empty(self) -> bool:
        """True when the folder held no text to search (and the run was not cancelled)."""
        return not self.cancelled and self.paragraphs == 0


def text_files(folder: Path) -> list[str]:
    """Paths (relative, with /) of the txt, md and html files under ``folder``, hidden folders left out."""
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in SUFFIXES and path.is_file():
            found.append(relative.as_posix())
    return sorted(found)


def update_index(
    index: Index,
    embed: Callable[[list[str]], np.ndarray],
    progress: Callable[[int, int], None] = lambda done, total: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> IndexReport:
    """Make ``index`` match its folder, calling ``embed`` on the paragraphs of new and changed files only."""
    report = IndexReport(rebuilt=index.rebuilt)
    names = text_files(index.folder)
    report.removed = sorted(set(index.files) - set(names))
    for name in report.removed:
        del index.files[name]
    todo: list[tuple[str, int, int, str]] = []
    for name in names:
        path = index.folder / name
        try:
            stat = path.stat()
            record = index.files.get(name)
            if record and (record.mtime_ns, record.size) == (stat.st_mtime_ns, stat.st_size):
                report.unchanged += 1
                continue
            digest = sha256_of(path)
        except OSError as e:
            report.skipped[name] = e.strerror or type(e).__name__
            index.files.pop(name, None)
            continue
        if record and record.sha256 == digest:  # touched, not changed
            record.mtime_ns, record.size = stat.st_mtime_ns, stat.st_size
            report.unchanged += 1
        else:
            todo.append((name, stat.st_mtime_ns, stat.st_size, digest))
    _embed_files(index, todo, embed, progress, cancelled, report)
    report.paragraphs = sum(len(r.chunks) for r in index.files.values())
    return report


def _embed_files(
    index: Index,
    todo: list[tuple[str, int, int, str]],
    embed: Callable[[list[str]], np.ndarray],
    progress: Callable[[int, int], None],
    cancelled: Callable[[], bool],
    report: IndexReport,
) -> None:
    """Read, chunk and embed the files of ``todo`` in batches; a file is recorded once all its rows are in."""
    pending: list[tuple[str, int, int, str, list[str]]] = []
    progress(0, len(todo))
    for done, (name, mtime_ns, size, digest) in enumerate(todo, start=1):
        try:
            chunks = chunk_file(index.folder / name)
        except UnreadableFile as e:
            report.skipped[name] = str(e)
            index.files.pop(name, None)
            chunks = None
        if chunks is not None:
            pending.append((name, mtime_ns, size, digest, chunks))
        if sum(len(p[4]) for p in pending) >= BATCH or done == len(todo):
            if cancelled():
                report.cancelled = True
                return
            texts = [c for p in pending for c in p[4]]
            matrix = embed(texts) if texts else np.zeros((0, index.dimension), np.float32)
            row = 0
            for name_, mtime_, size_, digest_, chunks_ in pending:
                rows = np.asarray(matrix[row : row + len(chunks_)], dtype=np.float32)
                index.files[name_] = FileRecord(mtime_, size_, digest_, chunks_, rows)
                report.embedded.append(name_)
                row += len(chunks_)
            pending = []
            progress(done, len(todo))
