"""The index on disk: per file its mtime, size, SHA-256 and paragraphs; one embedding matrix beside it.

A folder holds ``index.json`` and ``embeddings.npy``, each replaced atomically, so a crash or a Cancel
leaves the last saved index. A missing or damaged index loads as an empty one, marked ``rebuilt``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

FORMAT = 1
INDEX_FILE = "index.json"
EMBEDDINGS_FILE = "embeddings.npy"


@dataclass
class FileRecord:
    """What was indexed of one file: its stat and hash when read, its paragraphs and their embeddings."""

    mtime_ns: int
    size: int
    sha256: str
    chunks: list[str]
    embeddings: np.ndarray


@dataclass
class SearchTable:
    """An immutable snapshot to search: one row per paragraph, with the file it came from."""

    folder: Path
    embeddings: np.ndarray
    files: list[str]
    chunks: list[str]


@dataclass
class Index:
    """The index of one folder for one model; ``files`` maps a path relative to ``folder`` to its record."""

    folder: Path
    model_id: str
    dimension: int
    files: dict[str, FileRecord] = field(default_factory=dict)
    rebuilt: bool = False

    def table(self) -> SearchTable:
        """The current rows as a snapshot that later changes to the index do not touch."""
        names = sorted(self.files)
        rows = [self.files[n].embeddings for n in names]
        matrix = np.concatenate(rows) if rows else np.zeros((0, self.dimension), np.float32)
        owners = [n for n in names for _ in self.files[n].chunks]
        chunks = [c for n in names for c in self.files[n].chunks]
        return SearchTable(self.folder, matrix, owners, chunks)

    def save(self, directory: Path) -> None:
        """Write the index into ``directory`` (created if needed), each file replaced atomically."""
        directory.mkdir(parents=True, exist_ok=True)
        names = sorted(self.files)
        records = {
            n: {"mtime_ns": r.mtime_ns, "size": r.size, "sha256": r.sha256, "chunks": r.chunks}
            for n, r in ((n, self.files[n]) for n in names)
        }
        meta = {"format": FORMAT, "folder": str(self.folder), "model": self.model_id}
        _replace(directory / EMBEDDINGS_FILE, lambda f: np.save(f, self.table().embeddings))
        text = json.dumps(meta | {"dimension": self.dimension, "files": records})
        _replace(directory / INDEX_FILE, lambda f: f.write(text.encode("utf-8")))

    @classmethod
    def load(cls, directory: Path, folder: Path, model_id: str, dimension: int) -> Index:
        """The index saved in ``directory`` for ``folder`` and this model, or an empty one marked rebuilt."""
        try:
            meta = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8"))
            matrix = np.load(directory / EMBEDDINGS_FILE, allow_pickle=False)
            same = (meta["format"], meta["folder"], meta["model"], meta["dimension"])
            if same != (FORMAT, str(folder), model_id, dimension):
                return cls(folder, model_id, dimension, rebuilt=True)
            files, row = {}, 0
            for name, r in meta["files"].items():
                count = len(r["chunks"])
                rows = np.asarray(matrix[row : row + count], dtype=np.float32)
                files[name] = FileRecord(r["mtime_ns"], r["size"], r["sha256"], list(r["chunks"]), rows)
                row += count
            if row != len(matrix) or matrix.shape[1:] != (dimension,):
                raise ValueError("embeddings do not match the records")
        except (OSError, ValueError, KeyError, TypeError):  # missing or damaged: start again
            return cls(folder, model_id, dimension, rebuilt=True)
        return cls(folder, model_id, dimension, files)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _replace(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a temporary file beside it and rename, so readers see old or new, never half."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
