"""The main window: pick a folder, index it (progress, Cancel), search as you type, open a result."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QThread, QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from examples.desktop.engine import Engine
from examples.desktop.indexer import IndexReport
from examples.desktop.search import Hit
from examples.desktop.store import SearchTable
from examples.desktop.worker import IndexWorker, SearchWorker

DEBOUNCE_MS = 250
PATH_ROLE = Qt.ItemDataRole.UserRole


class MainWindow(QMainWindow):
    """Search window over one folder at a time; the models run only in the worker threads."""

    indexed = Signal(object)  # IndexReport, after each indexing run
    answered = Signal(list)  # list[Hit] shown for the current query
    search_requested = Signal(int, object, str, bool)

    def __init__(self, engine: Engine, index_root: Path, folder: Path | None = None) -> None:
        super().__init__()
        self.engine, self.index_root = engine, index_root
        self.settings = settings(index_root)
        self.folder: Path | None = None
        self.table: SearchTable | None = None
        self.last_report: IndexReport | None = None
        self.hits: list[Hit] = []
        self._request = 0
        self._index_thread: QThread | None = None
        self._index_worker: IndexWorker | None = None
        self.setWindowTitle("edgesbert desktop search")
        self.resize(900, 600)
        self._build_widgets()
        self._search_thread = QThread(self)
        self._search_worker = SearchWorker(engine)
        self._search_worker.moveToThread(self._search_thread)
        self.search_requested.connect(self._search_worker.search)
        self._search_worker.answered.connect(self._show_hits)
        self._search_worker.failed.connect(lambda _, message: self.show_status(message))
        self._search_thread.start()
        if folder is not None:
            self.index_folder(folder)

    def _build_widgets(self) -> None:
        self.folder_edit = QLineEdit(readOnly=True, placeholderText="No folder chosen")
        choose = QPushButton("Choose folder…")
        choose.clicked.connect(self._choose_folder)
        self.update_button = QPushButton("Update index")
        self.update_button.clicked.connect(self._update_index)
        self.progress = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_indexing)
        self.query_edit = QLineEdit(placeholderText="Type to search your files…", clearButtonEnabled=True)
        self.rerank_box = QCheckBox("Rerank top 50 (cross-encoder)")
        self.rerank_box.setEnabled(self.engine.can_rerank)
        self.results = QTreeWidget()
        self.results.setRootIsDecorated(False)
        self.results.setAlternatingRowColors(True)
        self.results.setHeaderLabels(["Score", "File", "Snippet"])
        self.results.setColumnWidth(0, 70)
        self.results.setColumnWidth(1, 220)
        self.results.setWordWrap(True)
        self.results.itemDoubleClicked.connect(self.open_result)
        self.skipped_label = QLabel("Skipped files:")
        self.skipped_list = QListWidget()
        self.skipped_list.setMaximumHeight(90)
        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._debounce.timeout.connect(self.request_search)
        self.query_edit.textChanged.connect(self._query_edited)
        self.rerank_box.toggled.connect(lambda _: self.request_search())
        layout = QVBoxLayout()
        for row in ([self.folder_edit, choose, self.update_button], [self.progress, self.cancel_button]):
            line = QHBoxLayout()
            for widget in row:
                line.addWidget(widget)
            layout.addLayout(line)
        line = QHBoxLayout()
        line.addWidget(self.query_edit, 1)
        line.addWidget(self.rerank_box)
        layout.addLayout(line)
        for widget in (self.results, self.skipped_label, self.skipped_list):
            layout.addWidget(widget)
        self._show_skipped({})
        self.status = QLabel()  # a permanent label: Qt clears temporary status messages on hover
        self.statusBar().addWidget(self.status, 1)
        central = QWidget()
        central.setLayout(layout)
        self.setCentralWidget(central)

    def show_status(self, text: str) -> None:
        """Show ``text`` in the status bar until the next status."""
        self.status.setText(text)

    def index_dir(self, folder: Path) -> Path:
        """Where the index of ``folder`` lives: one directory per folder under the app's data."""
        return self.index_root / hashlib.sha256(str(folder).encode()).hexdigest()[:16]

    def _choose_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Folder to search", str(self.folder or Path.home()))
        if chosen:
            self.index_folder(Path(chosen))

    def _update_index(self) -> None:
        if self.folder is not None:
            self.index_folder(self.folder)

    def index_folder(self, folder: Path) -> None:
        """Start indexing ``folder`` in a worker thread (the saved index is searchable meanwhile)."""
        folder = folder.resolve()
        if self._index_thread is not None:
            self.show_status("Indexing is already running; cancel it first")
            return
        if not folder.is_dir():
            self.show_status(f"Not a folder: {folder}")
            return
        self.folder = folder
        self.folder_edit.setText(str(folder))
        self.settings.setValue("folder", str(folder))
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        self.update_button.setEnabled(False)
        self.show_status(f"Indexing {folder}…")
        thread, worker = QThread(self), IndexWorker(self.engine, folder, self.index_dir(folder))
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.loaded.connect(self._set_table)
        worker.progress.connect(self._show_progress)
        worker.finished.connect(self._indexing_done)
        worker.failed.connect(self._indexing_failed)
        self._index_thread, self._index_worker = thread, worker
        thread.start()

    def cancel_indexing(self) -> None:
        """Stop indexing after the batch in progress; what was embedded so far is kept."""
        if self._index_worker is not None:
            self._index_worker.cancel()
            self.cancel_button.setEnabled(False)
            self.show_status("Cancelling…")

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done if total else 1)

    def _set_table(self, table: SearchTable) -> None:
        self.table = table
        if self.query_edit.text().strip():
            self.request_search()

    def _indexing_done(self, report: IndexReport, table: SearchTable) -> None:
        self._stop_index_thread()
        self.last_report = report
        self._set_table(table)
        self._show_skipped(report.skipped)
        self.show_status(describe(report, self.folder))
        self.indexed.emit(report)

    def _indexing_failed(self, message: str) -> None:
        self._stop_index_thread()
        self.show_status(message)
        self.indexed.emit(None)

    def _stop_index_thread(self) -> None:
        if self._index_thread is not None:
            self._index_thread.quit()
            self._index_thread.wait()
        self._index_thread = self._index_worker = None
        self.cancel_button.setEnabled(False)
        self.update_button.setEnabled(True)

    def _show_skipped(self, skipped: dict[str, str]) -> None:
        self.skipped_list.clear()
        self.skipped_list.addItems([f"{name}: {why}" for name, why in sorted(skipped.items())])
        self.skipped_label.setVisible(bool(skipped))
        self.skipped_list.setVisible(bool(skipped))

    def _query_edited(self) -> None:
        self._request += 1  # answers to the text as it was are stale now
        self._debounce.start()

    def request_search(self) -> None:
        """Queue a search for the query as it stands; answers to older queries are then ignored."""
        self._debounce.stop()
        query = self.query_edit.text()
        if self.table is None or not query.strip():
            self._request += 1  # drops answers still on their way
            self.hits = []
            self.results.clear()
            return
        self._request += 1
        self._search_worker.latest = self._request
        self.search_requested.emit(self._request, self.table, query, self.rerank_box.isChecked())

    def _show_hits(self, request: int, hits: list[Hit]) -> None:
        if request != self._request:
            return
        self.hits = hits
        self.results.clear()
        for hit in hits:
            item = QTreeWidgetItem([f"{hit.score:.3f}", hit.file, hit.snippet])
            item.setToolTip(2, hit.text)
            item.setData(0, PATH_ROLE, hit.file)
            self.results.addTopLevelItem(item)
        self.answered.emit(hits)

    def open_result(self, item: QTreeWidgetItem, column: int = 0) -> None:
        """Open a result's file with the desktop's default application."""
        if self.folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder / item.data(0, PATH_ROLE))))

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the workers before the window goes."""
        self.cancel_indexing()
        self._stop_index_thread()
        self._search_thread.quit()
        self._search_thread.wait()
        super().closeEvent(event)


def settings(index_root: Path) -> QSettings:
    """The app's settings (the last folder), kept beside the indexes."""
    return QSettings(str(index_root / "settings.ini"), QSettings.Format.IniFormat)


def describe(report: IndexReport, folder: Path | None) -> str:
    """One status line for an indexing run."""
    if report.empty:
        return f"No text to search in {folder}: it holds no readable .txt, .md or .html file"
    parts = [
        f"{report.paragraphs} paragraphs",
        f"{len(report.embedded)} files embedded",
        f"{report.unchanged} unchanged",
        f"{len(report.removed)} removed",
    ]
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    status = "Cancelled; index kept with " if report.cancelled else "Indexed: "
    rebuilt = " (no saved index found: built anew)" if report.rebuilt and report.embedded else ""
    return status + ", ".join(parts) + rebuilt
