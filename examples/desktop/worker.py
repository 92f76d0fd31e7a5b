"""Qt workers: indexing and searching run in their own QThreads and report by signals (never the widgets)."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from examples.desktop.engine import Engine
from examples.desktop.indexer import update_index
from examples.desktop.search import search
from examples.desktop.store import Index, SearchTable


class IndexWorker(QObject):
    """Loads the saved index of a folder, brings it up to date and saves it; Cancel stops between batches."""

    loaded = Signal(object)  # SearchTable of the saved index, searchable while the update runs
    progress = Signal(int, int)  # files done, files to embed
    finished = Signal(object, object)  # IndexReport, SearchTable
    failed = Signal(str)

    def __init__(self, engine: Engine, folder: Path, index_dir: Path) -> None:
        super().__init__()
        self.engine, self.folder, self.index_dir = engine, folder, index_dir
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the run to stop after the batch in progress (safe from any thread)."""
        self._cancel.set()

    @Slot()
    def run(self) -> None:
        """Index the folder; emits finished or failed, never raises."""
        try:
            index = Index.load(self.index_dir, self.folder, self.engine.model_id, self.engine.dimension)
            self.loaded.emit(index.table())
            report = update_index(index, self.engine.embed, self.progress.emit, self._cancel.is_set)
            index.save(self.index_dir)
            self.finished.emit(report, index.table())
        except Exception as e:  # the app shows it and stays up; a worker thread has nobody to raise to
            self.failed.emit(f"indexing {self.folder} failed: {e}")


class SearchWorker(QObject):
    """Answers search requests; one superseded by a newer request before it starts is dropped."""

    answered = Signal(int, list)  # request id, list[Hit]
    failed = Signal(int, str)

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine
        self.latest = 0  # set by the window before it queues a request

    @Slot(int, object, str, bool)
    def search(self, request: int, table: SearchTable, query: str, rerank: bool) -> None:
        """Run one request and emit its hits (or why it failed)."""
        if request != self.latest:
            return
        try:
            self.answered.emit(request, search(self.engine, table, query, rerank=rerank))
        except Exception as e:  # shown in the status bar; the next keystroke tries again
            self.failed.emit(request, f"search failed: {e}")
