"""``embed --chunk-tokens``: one row per window of each document, with its number and span (issue 32)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgesbert.bulk import embed_corpus, metadata_of
from edgesbert.cli import main
from tests.bulk.conftest import TEXTS, write_corpus

pq = pytest.importorskip("pyarrow.parquet")

LONG = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 12)


def test_each_window_is_a_row_with_its_document_number_and_span(bi_folder, tmp_path):
    from edgesbert.runtime import load

    texts = [LONG, TEXTS[0], LONG + " The end."]
    corpus = write_corpus(tmp_path / "docs.jsonl", texts, ids=["a", "b", "c"])
    options = {"id_column": "id", "chunk_tokens": 20, "chunk_overlap": 5}
    result = embed_corpus(bi_folder, corpus, tmp_path / "out.parquet", **options)
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert result.rows == len(table) > 3
    assert [row["id"] for row in table if row["chunk"] == 0] == ["a", "b", "c"]
    model = load(bi_folder)
    for doc_id, text in zip("abc", texts, strict=True):
        rows = [row for row in table if row["id"] == doc_id]
        assert [row["chunk"] for row in rows] == list(range(len(rows)))
        pieces = [text[row["start"] : row["stop"]] for row in rows]
        np.testing.assert_allclose([row["embedding"] for row in rows], model.encode(pieces), atol=1e-5)
        if doc_id == "b":  # fits one window: the whole text
            assert (rows[0]["start"], rows[0]["stop"]) == (0, len(text))
        else:
            assert rows[0]["start"] == 0 and rows[-1]["stop"] == len(text.rstrip())
            for before, after in itertools.pairwise(rows):
                assert after["start"] < before["stop"]  # neighbours overlap
    assert metadata_of(tmp_path / "out.parquet")["chunk_tokens"] == 20


def test_windows_in_small_chunks_and_two_processes_come_out_as_one_process_writes_them(bi_folder, tmp_path):
    corpus = write_corpus(tmp_path / "docs.txt", [LONG, *TEXTS] * 3)
    options = {"chunk_tokens": 16, "chunk_rows": 4}
    embed_corpus(bi_folder, corpus, tmp_path / "one.parquet", **options)
    embed_corpus(bi_folder, corpus, tmp_path / "two.parquet", processes=2, **options)
    assert pq.read_table(tmp_path / "two.parquet").equals(pq.read_table(tmp_path / "one.parquet"))


def test_a_window_must_fit_the_model(bi_folder, tmp_path, capsys):
    corpus = write_corpus(tmp_path / "docs.txt", TEXTS)
    with pytest.raises(ValueError, match=r"chunk_tokens must be in 1\.\.62 \(this model takes 62 tokens"):
        embed_corpus(bi_folder, corpus, tmp_path / "out.parquet", chunk_tokens=63)
    argv = ["embed", str(bi_folder), "-i", str(corpus), "-o", str(tmp_path / "out.parquet")]
    assert main([*argv, "--chunk-tokens", "8", "--chunk-overlap", "8"]) == 1
    assert "chunk_overlap must be in 0..7, got 8" in capsys.readouterr().err
    assert not (tmp_path / "out.parquet").exists()
