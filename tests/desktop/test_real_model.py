"""The app on the real int8 all-MiniLM-L6-v2 and real TREC QA answers, through its widgets; takes the
desktop page's screenshot (docs/desktop.png, rewritten with EDGESBERT_UPDATE_SCREENSHOT=1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from examples.desktop.search import search
from examples.desktop.window import MainWindow
from tests.desktop.trec_files import write_trec_folder

pytestmark = pytest.mark.integration

#: the docs' screenshot, rewritten only with EDGESBERT_UPDATE_SCREENSHOT=1 (test runs leave the tree clean)
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "desktop.png"
#: hit@3 of the bi-encoder alone over the 78 answered TREC QA dev questions, measured 56/78 = 0.718
MIN_HIT_AT_3 = 0.68


@pytest.fixture(scope="module")
def real_engine(default_openvino_int8):
    from examples.desktop.engine import Engine

    engine = Engine(default_openvino_int8)
    yield engine
    engine.close()


def test_a_typed_trec_question_finds_its_answer_file_in_the_top_3_and_edits_re_embed_one_file(
    qtbot, real_engine, tmp_path
):
    folder = tmp_path / "trec"
    right_files = write_trec_folder(folder, 78)
    window = MainWindow(real_engine, tmp_path / "indexes")
    qtbot.addWidget(window)
    window.resize(1000, 560)
    with qtbot.waitSignal(window.indexed, timeout=120_000) as blocker:
        window.index_folder(folder)
    report = blocker.args[0]
    assert len(report.embedded) == 287 and report.paragraphs == 1134
    question = "When did James Dean die ?"  # as TREC QA writes it
    with qtbot.waitSignal(window.answered, timeout=20_000):
        qtbot.keyClicks(window.query_edit, question)
    top3 = [window.results.topLevelItem(i).text(1) for i in range(3)]
    assert right_files[question] & set(top3), (question, top3)
    window.show()
    qtbot.waitExposed(window)
    update = os.environ.get("EDGESBERT_UPDATE_SCREENSHOT") == "1"
    screenshot = SCREENSHOT if update else tmp_path / "desktop.png"
    screenshot.parent.mkdir(exist_ok=True)
    assert window.grab().save(str(screenshot)) and screenshot.stat().st_size > 10_000

    hits = sum(
        bool(right_files[q] & {h.file for h in search(real_engine, window.table, q, top_k=3)})
        for q in right_files
    )
    assert hits / len(right_files) >= MIN_HIT_AT_3

    edited = sorted(right_files[question])[0]
    (folder / edited).write_text("James Dean died in a car crash in 1955.\n", encoding="utf-8")
    with qtbot.waitSignal(window.indexed, timeout=60_000) as blocker:
        window.update_button.click()
    report = blocker.args[0]
    assert report.embedded == [edited] and report.unchanged == 286
