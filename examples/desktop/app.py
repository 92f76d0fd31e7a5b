"""Command line of the desktop app: model folders, a folder to index, and a headless ``--self-test``.

python -m examples.desktop [--folder DIR] [--model DIR] [--reranker DIR]
python -m examples.desktop --self-test "a question" --folder DIR     # index, answer, print, exit 0
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from examples.desktop.window import MainWindow

BI_ENCODER = "all-MiniLM-L6-v2"
RERANKER = "trecqa-reranker-minilm"
SELF_TEST_TIMEOUT_MS = 600_000


def models_dir() -> Path:
    """Where the default models are: inside the bundle when frozen, else the repository's exported/."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "models"
    return Path(__file__).resolve().parents[2] / "exported"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The app's options; a missing default reranker only turns reranking off."""
    parser = argparse.ArgumentParser(
        prog="edgesbert-desktop", description="Offline semantic search over files."
    )
    parser.add_argument("--folder", type=Path, help="folder to index and search at start")
    parser.add_argument("--model", type=Path, default=models_dir() / BI_ENCODER, help="bi-encoder folder")
    parser.add_argument(
        "--reranker", type=Path, help=f"cross-encoder folder (default: {RERANKER} if present)"
    )
    parser.add_argument(
        "--variant", help="the bi-encoder's variant, e.g. static (default: its int8 one, else its default)"
    )
    parser.add_argument(
        "--index-dir", type=Path, help="where indexes are kept (default: the app's data folder)"
    )
    parser.add_argument("--self-test", metavar="QUERY", help="headless: index --folder, answer QUERY, exit")
    parser.add_argument("--rerank", action="store_true", help="rerank the self-test's results")
    parser.add_argument("--top-k", type=int, default=5, help="results the self-test prints")
    args = parser.parse_args(argv)
    if args.self_test is not None and args.folder is None:
        parser.error("--self-test needs --folder")
    if args.folder is not None and not args.folder.is_dir():
        parser.error(f"--folder {args.folder}: not a folder")
    if args.reranker is None and (models_dir() / RERANKER).is_dir():
        args.reranker = models_dir() / RERANKER
    return args


def last_folder(index_root: Path) -> Path | None:
    """The folder searched last time (the app's settings), if it still exists."""
    from examples.desktop.window import settings

    value = settings(index_root).value("folder")
    return Path(value) if isinstance(value, str) and Path(value).is_dir() else None


def main(argv: list[str] | None = None) -> int:
    """Run the app (or its self-test); returns the exit status."""
    started = time.perf_counter()
    args = parse_args(argv)
    if args.self_test is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QStandardPaths
    from PySide6.QtWidgets import QApplication, QMessageBox

    from examples.desktop.engine import Engine, ModelError
    from examples.desktop.window import MainWindow

    app = QApplication(sys.argv[:1])
    app.setOrganizationName("edgesbert")
    app.setApplicationName("edgesbert-desktop")
    data = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))
    index_root = args.index_dir or data / "index"
    try:
        engine = Engine(args.model, args.reranker, cache_dir=index_root / "model-cache", variant=args.variant)
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        if args.self_test is None:
            QMessageBox.critical(None, "edgesbert desktop search", str(e))
        return 2
    window = MainWindow(engine, index_root, args.folder or last_folder(index_root))
    if args.self_test is not None:
        return self_test(app, window, args.self_test, args.rerank, args.top_k, started)
    window.show()
    status = app.exec()
    engine.close()
    return status


def self_test(
    app: QApplication, window: MainWindow, query: str, rerank: bool, top_k: int, started: float
) -> int:
    """Wait for indexing, type ``query`` into the search box, print the answer; 0 if there was one."""
    from PySide6.QtCore import QTimer

    from examples.desktop.indexer import IndexReport
    from examples.desktop.search import Hit

    def indexed(report: IndexReport | None) -> None:
        print(window.status.text(), flush=True)
        if report is None or report.empty:
            app.exit(1)
            return
        for name, why in sorted(report.skipped.items()):
            print(f"skipped {name}: {why}")
        window.rerank_box.setChecked(rerank)
        window.query_edit.setText(query)

    def answered(hits: list[Hit]) -> None:
        print(f"first answer {time.perf_counter() - started:.2f} s after start: {query!r}")
        for rank, hit in enumerate(hits[:top_k], start=1):
            print(f"{rank:3d}. {hit.score:.4f}  {hit.file}  {hit.snippet}")
        app.exit(0 if hits else 1)

    window.indexed.connect(indexed)
    window.answered.connect(answered)
    QTimer.singleShot(SELF_TEST_TIMEOUT_MS, lambda: app.exit(3))
    status = app.exec()
    window.close()
    window.engine.close()
    return status
