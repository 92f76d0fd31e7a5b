"""The window through its widgets (offscreen, pytest-qt) on tiny models: progress, Cancel, search as you
type, rerank, double-click, skipped files, an empty folder."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices

from examples.desktop.search import search
from examples.desktop.store import Index
from examples.desktop.window import MainWindow
from tests.desktop.conftest import write_files

TEXTS = {
    f"doc{i:02d}.txt": f"Document {i} talks about subject {i}.\n\nIt has a second paragraph {i}."
    for i in range(30)
}


@pytest.fixture
def make_window(qtbot, tiny_engine, tmp_path):
    def make(folder: Path | None = None) -> MainWindow:
        window = MainWindow(tiny_engine, tmp_path / "indexes", folder)
        qtbot.addWidget(window)
        return window

    return make


def index(qtbot, window: MainWindow, folder: Path):
    with qtbot.waitSignal(window.indexed, timeout=30_000) as blocker:
        window.index_folder(folder)
    return blocker.args[0]


def type_query(qtbot, window: MainWindow, text: str) -> list:
    with qtbot.waitSignal(window.answered, timeout=10_000) as blocker:
        qtbot.keyClicks(window.query_edit, text)
    return blocker.args[0]


def test_typing_shows_the_engines_hits_in_the_result_list_after_one_debounced_search(
    qtbot, make_window, tiny_engine, tmp_path
):
    folder = write_files(tmp_path / "docs", TEXTS)
    window = make_window()
    report = index(qtbot, window, folder)
    assert len(report.embedded) == 30 and window.progress.value() == window.progress.maximum()
    requests = []
    window.search_requested.connect(lambda *args: requests.append(args[2]))
    hits = type_query(qtbot, window, "Document 7 talks")
    assert requests == ["Document 7 talks"]  # one search for 16 keystrokes
    expected = search(tiny_engine, window.table, "Document 7 talks")
    assert [(h.file, h.text) for h in hits] == [(h.file, h.text) for h in expected]
    shown = [window.results.topLevelItem(i) for i in range(window.results.topLevelItemCount())]
    assert [item.text(1) for item in shown] == [h.file for h in expected]
    assert [item.text(0) for item in shown] == [f"{h.score:.3f}" for h in expected]


def test_rerank_orders_the_top_50_by_the_cross_encoder(qtbot, make_window, tiny_engine, tmp_path):
    folder = write_files(tmp_path / "docs", TEXTS)
    window = make_window(folder)
    qtbot.waitSignal(window.indexed, timeout=30_000).wait()
    plain = type_query(qtbot, window, "subject 12")
    with qtbot.waitSignal(window.answered, timeout=10_000) as blocker:
        window.rerank_box.setChecked(True)
    reranked = blocker.args[0]
    scores = tiny_engine.rerank("subject 12", window.table.chunks)  # all 60 paragraphs: top 50 of them
    assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)
    for hit in reranked:
        assert hit.score == pytest.approx(scores[window.table.chunks.index(hit.text)], abs=1e-5)
    assert [h.text for h in reranked] != [h.text for h in plain]


def test_double_click_opens_the_file_with_the_desktop(qtbot, make_window, tmp_path, monkeypatch):
    folder = write_files(tmp_path / "docs", TEXTS)
    window = make_window(folder)
    qtbot.waitSignal(window.indexed, timeout=30_000).wait()
    type_query(qtbot, window, "subject 3")
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    item = window.results.topLevelItem(0)
    window.results.itemDoubleClicked.emit(item, 2)
    assert opened == [QUrl.fromLocalFile(str(folder.resolve() / item.text(1)))]


def test_cancel_button_mid_index_leaves_a_searchable_index_and_the_window_responsive(
    qtbot, make_window, tiny_engine, tmp_path, monkeypatch
):
    folder = write_files(
        tmp_path / "many", {f"f{i:03d}.txt": f"Paragraph {i} of file {i}." for i in range(400)}
    )
    entered, gate = threading.Event(), threading.Event()
    embed = tiny_engine.embed

    def slow_embed(texts):  # the first batch waits until the test has clicked Cancel
        entered.set()
        gate.wait(10)
        return embed(texts)

    monkeypatch.setattr(tiny_engine, "embed", slow_embed)
    window = make_window()
    with qtbot.waitSignal(window.indexed, timeout=30_000) as blocker:
        window.index_folder(folder)
        qtbot.waitUntil(entered.is_set)
        start = time.perf_counter()
        qtbot.keyClicks(window.query_edit, "typing while indexing")  # the event loop is not blocked
        assert time.perf_counter() - start < 2
        window.cancel_button.click()
        gate.set()
    report = blocker.args[0]
    assert report.cancelled and 0 < len(report.embedded) < 400
    assert window.status.text().startswith("Cancelled; index kept with 64 paragraphs")
    saved = Index.load(window.index_dir(folder.resolve()), folder.resolve(), tiny_engine.model_id, 32)
    assert sorted(saved.files) == sorted(report.embedded)
    window.query_edit.clear()
    hits = type_query(qtbot, window, "Paragraph 5 of file 5.")
    assert hits[0].file == "f005.txt"
    report = index(qtbot, window, folder)
    assert not report.cancelled and len(report.embedded) == 400 - 64 and report.unchanged == 64


def test_bad_files_are_listed_in_the_window(qtbot, make_window, tmp_path):
    folder = write_files(
        tmp_path / "bad",
        {"ok.txt": "Readable.", "blob.txt": b"\x00\x01\x02", "latin.md": "\xe9t\xe9".encode("latin-1")},
    )
    window = make_window()
    index(qtbot, window, folder)
    listed = [window.skipped_list.item(i).text() for i in range(window.skipped_list.count())]
    assert listed == ["blob.txt: binary file", "latin.md: not UTF-8 text (byte 0)"]
    assert window.skipped_list.isVisibleTo(window)


def test_an_empty_folder_says_so_and_searching_it_shows_nothing(qtbot, make_window, tmp_path):
    (tmp_path / "empty").mkdir()
    window = make_window()
    report = index(qtbot, window, tmp_path / "empty")
    assert report.empty
    assert window.status.text().startswith("No text to search in")
    assert not window.skipped_list.isVisibleTo(window)
    qtbot.keyClicks(window.query_edit, "anything")
    qtbot.wait(400)
    assert window.results.topLevelItemCount() == 0


def test_the_last_folder_is_remembered_beside_the_indexes(qtbot, make_window, tmp_path):
    from examples.desktop.app import last_folder

    folder = write_files(tmp_path / "docs", {"a.txt": "Alpha."})
    assert last_folder(tmp_path / "indexes") is None
    index(qtbot, make_window(), folder)
    assert last_folder(tmp_path / "indexes") == folder.resolve()
