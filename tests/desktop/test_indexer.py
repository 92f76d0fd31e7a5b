"""The index on disk: only changed, added or removed files are re-embedded; Cancel or damage keep it whole."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from examples.desktop.indexer import update_index
from examples.desktop.search import search
from examples.desktop.store import EMBEDDINGS_FILE, INDEX_FILE, Index
from tests.desktop.conftest import write_files

FILES = {
    "guitar.txt": "A man is playing a guitar.\n\nThe crowd sings along.",
    "food.md": "# Dinner\n\nA woman is slicing tomatoes.",
    "notes/horse.html": "<p>A rider on a horse.</p><p>The horse jumps a fence.</p>",
    "notes/violin.txt": "Someone plays the violin.",
    "ignored.png": b"\x89PNG\x00\x00",
    ".hidden/secret.txt": "never indexed",
}


class CountingEmbed:
    """The engine's embed, remembering every text it was asked to embed."""

    def __init__(self, engine) -> None:
        self.engine, self.texts = engine, []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.engine.embed(texts)


def index_once(engine, folder: Path, index_dir: Path, **kwargs):
    index = Index.load(index_dir, folder, engine.model_id, engine.dimension)
    embed = CountingEmbed(engine)
    report = update_index(index, embed, **kwargs)
    index.save(index_dir)
    return report, index, embed.texts


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_files(tmp_path / "docs", FILES)


def test_first_run_embeds_every_text_file_and_the_index_reloads_equal(tiny_engine, folder, tmp_path):
    report, index, texts = index_once(tiny_engine, folder, tmp_path / "index")
    assert sorted(report.embedded) == ["food.md", "guitar.txt", "notes/horse.html", "notes/violin.txt"]
    assert report.rebuilt and report.paragraphs == 7 == len(texts)
    again = Index.load(tmp_path / "index", folder, tiny_engine.model_id, tiny_engine.dimension)
    assert not again.rebuilt
    np.testing.assert_array_equal(again.table().embeddings, index.table().embeddings)
    assert again.table().chunks == index.table().chunks


def test_only_the_changed_added_and_removed_files_are_re_embedded(tiny_engine, folder, tmp_path):
    index_once(tiny_engine, folder, tmp_path / "index")
    (folder / "guitar.txt").write_text("A man is playing a guitar.\n\nNobody listens.", encoding="utf-8")
    (folder / "new.txt").write_text("A new file about cats.", encoding="utf-8")
    (folder / "food.md").unlink()
    touched = folder / "notes" / "violin.txt"  # newer mtime, same bytes: the hash says unchanged
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    report, _, texts = index_once(tiny_engine, folder, tmp_path / "index")
    assert sorted(report.embedded) == ["guitar.txt", "new.txt"]
    assert report.removed == ["food.md"]
    assert report.unchanged == 2
    assert texts == ["A man is playing a guitar.", "Nobody listens.", "A new file about cats."]
    report, _, texts = index_once(tiny_engine, folder, tmp_path / "index")
    assert report.embedded == [] and texts == [] and report.unchanged == 4


def test_cancel_keeps_the_files_finished_so_far_and_the_next_run_embeds_the_rest(tiny_engine, tmp_path):
    folder = write_files(
        tmp_path / "many", {f"f{i:03d}.txt": f"Paragraph {i} of file {i}." for i in range(200)}
    )
    asked = []
    report, _, _ = index_once(
        tiny_engine, folder, tmp_path / "index", cancelled=lambda: asked.append(1) or len(asked) > 1
    )
    assert report.cancelled and len(report.embedded) == 64  # one batch of 64 paragraphs
    saved = Index.load(tmp_path / "index", folder, tiny_engine.model_id, tiny_engine.dimension)
    assert sorted(saved.files) == sorted(report.embedded)
    hits = search(tiny_engine, saved.table(), "Paragraph 3 of file 3.", top_k=1)
    assert hits[0].file == "f003.txt"
    report, _, texts = index_once(tiny_engine, folder, tmp_path / "index")
    assert len(report.embedded) == 136 and len(texts) == 136 and report.unchanged == 64


@pytest.mark.parametrize("damage", ["delete", "truncate", "other-model"])
def test_a_deleted_or_damaged_index_is_rebuilt(tiny_engine, folder, tmp_path, damage):
    index_once(tiny_engine, folder, tmp_path / "index")
    if damage == "delete":
        (tmp_path / "index" / INDEX_FILE).unlink()
    elif damage == "truncate":
        (tmp_path / "index" / EMBEDDINGS_FILE).write_bytes(b"\x93NUMPY garbage")
    loaded = Index.load(
        tmp_path / "index", folder, "another-model" if damage == "other-model" else tiny_engine.model_id, 32
    )
    assert loaded.rebuilt and loaded.files == {}
    report, _, _ = index_once(tiny_engine, folder, tmp_path / "index")
    assert len(report.embedded) == (0 if damage == "other-model" else 4)


def test_binary_and_non_utf8_files_are_skipped_and_listed(tiny_engine, tmp_path):
    folder = write_files(
        tmp_path / "bad",
        {
            "good.txt": "Fine text.",
            "photo.txt": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
            "old.md": "caf\xe9".encode("latin-1"),
        },
    )
    report, index, _ = index_once(tiny_engine, folder, tmp_path / "index")
    assert report.embedded == ["good.txt"]
    assert report.skipped == {"old.md": "not UTF-8 text (byte 3)", "photo.txt": "binary file"}
    assert sorted(index.files) == ["good.txt"]


def test_a_folder_without_text_says_so(tiny_engine, tmp_path):
    folder = write_files(tmp_path / "none", {"image.png": b"\x89PNG", "blank.txt": "\n\n  \n"})
    report, _, _ = index_once(tiny_engine, folder, tmp_path / "index")
    assert report.empty and report.paragraphs == 0
