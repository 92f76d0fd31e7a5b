"""embed_corpus and score_pairs give what encode and predict give, row for row, in every format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from edgesbert.bulk import embed_corpus, metadata_of, score_pairs
from edgesbert.runtime import load, quantize_embeddings
from tests.bulk.conftest import PAIRS, TEXTS, write_corpus, write_pairs


def embeddings_of(path: Path) -> np.ndarray:
    table = pq.read_table(path)
    return np.stack(table.column("embedding").to_numpy(zero_copy_only=False))


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv", ".tsv", ".parquet"])
def test_float_embeddings_equal_encode_in_every_format(bi_folder, tmp_path, suffix):
    corpus = write_corpus(tmp_path / f"corpus{suffix}", TEXTS)
    result = embed_corpus(bi_folder, corpus, tmp_path / "out.parquet", chunk_rows=4, batch_size=3)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("id").to_pylist() == list(range(len(TEXTS)))
    column = table.schema.field("embedding").type
    assert (column.list_size, str(column.value_type)) == (32, "float")
    expected = load(bi_folder).encode(TEXTS)
    np.testing.assert_allclose(embeddings_of(tmp_path / "out.parquet"), expected, atol=1e-6)
    assert (result.rows, result.skipped) == (len(TEXTS), 0)
    assert not (tmp_path / ".out.parquet.work").exists()


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_quantized_embeddings_equal_encode_exactly(bi_folder, tmp_path, precision):
    corpus = write_corpus(tmp_path / "corpus.jsonl", TEXTS)
    output = tmp_path / "out.parquet"
    embed_corpus(bi_folder, corpus, output, precision=precision, batch_size=32)
    got = embeddings_of(output)
    expected = load(bi_folder).encode(TEXTS, precision=precision)  # its ranges: these texts, as the job's
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)
    meta = metadata_of(output)
    assert meta["precision"] == precision
    if precision in ("int8", "uint8"):
        floats = load(bi_folder).encode(TEXTS)
        np.testing.assert_allclose(meta["ranges"], [floats.min(0), floats.max(0)], atol=1e-6)
        np.testing.assert_array_equal(got, quantize_embeddings(floats, precision, np.array(meta["ranges"])))
    else:
        assert meta["ranges"] is None


def test_int8_codes_do_not_depend_on_the_chunking(bi_folder, tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", TEXTS)
    embed_corpus(bi_folder, corpus, tmp_path / "one.parquet", precision="int8", chunk_rows=100)
    embed_corpus(bi_folder, corpus, tmp_path / "many.parquet", precision="int8", chunk_rows=3)
    assert metadata_of(tmp_path / "one.parquet")["ranges"] == metadata_of(tmp_path / "many.parquet")["ranges"]
    difference = embeddings_of(tmp_path / "one.parquet").astype(int) - embeddings_of(
        tmp_path / "many.parquet"
    )
    assert np.abs(difference).max() <= 1  # floats differ by padding only (~1e-7): a code may move one bucket


@pytest.mark.parametrize("kind", ["int", "str"])
def test_id_column_is_kept(bi_folder, tmp_path, kind):
    ids = [100 + i for i in range(len(TEXTS))] if kind == "int" else [f"doc-{i}" for i in range(len(TEXTS))]
    for suffix in (".jsonl", ".parquet", ".csv"):
        corpus = write_corpus(tmp_path / f"corpus{suffix}", TEXTS, ids)
        output = tmp_path / f"out{suffix}.parquet"
        embed_corpus(bi_folder, corpus, output, id_column="id", chunk_rows=3)
        expected = [str(i) for i in ids] if suffix == ".csv" else ids
        assert pq.read_table(output).column("id").to_pylist() == expected


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_scores_equal_predict(cross_folder, tmp_path, suffix):
    pairs = write_pairs(tmp_path / f"pairs{suffix}", PAIRS)
    output = tmp_path / "scores.parquet"
    score_pairs(cross_folder, pairs, output, chunk_rows=4, batch_size=3)
    table = pq.read_table(output)
    assert str(table.schema.field("score").type) == "float"
    expected = load(cross_folder).predict(PAIRS)
    np.testing.assert_allclose(table.column("score").to_numpy(), expected, atol=1e-6)
    assert table.column("id").to_pylist() == list(range(len(PAIRS)))


def test_two_processes_write_what_one_writes(bi_folder, tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", TEXTS * 5)
    embed_corpus(bi_folder, corpus, tmp_path / "one.parquet", chunk_rows=7)
    embed_corpus(bi_folder, corpus, tmp_path / "two.parquet", chunk_rows=7, processes=2)
    assert pq.read_table(tmp_path / "one.parquet").equals(pq.read_table(tmp_path / "two.parquet"))


def test_an_empty_input_writes_an_empty_table(bi_folder, tmp_path):
    corpus = tmp_path / "empty.jsonl"
    corpus.write_text("")
    result = embed_corpus(bi_folder, corpus, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert result.rows == table.num_rows == 0
    assert table.column_names == ["id", "embedding"]


def test_int8_with_every_row_skipped_writes_an_empty_table(bi_folder, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": ""}\n{"text": " "}\n')
    result = embed_corpus(bi_folder, corpus, tmp_path / "out.parquet", precision="int8", on_error="skip")
    assert (result.rows, result.skipped) == (0, 2)
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 0 and str(table.schema.field("embedding").type.value_type) == "int8"
    assert metadata_of(tmp_path / "out.parquet")["ranges"] is None


def test_progress_bar_counts_rows(bi_folder, tmp_path, capsys):
    corpus = write_corpus(tmp_path / "corpus.txt", TEXTS)
    embed_corpus(bi_folder, corpus, tmp_path / "out.parquet", chunk_rows=4, progress=True)
    err = capsys.readouterr().err
    assert "10/10" in err and "rows/s" in err


def test_a_worker_that_cannot_load_the_model_is_reported(bi_folder, tmp_path):
    import shutil

    from edgesbert.errors import EdgesbertError

    broken = tmp_path / "model"
    shutil.copytree(bi_folder, broken)
    for graph in broken.rglob("*.onnx"):
        graph.write_bytes(b"not a graph")
    corpus = write_corpus(tmp_path / "corpus.txt", TEXTS)
    with pytest.raises(EdgesbertError, match="--processes 1"):
        embed_corpus(broken, corpus, tmp_path / "out.parquet", processes=2)
    assert not (tmp_path / ".out.parquet.work").exists()


def test_the_command_line_passes_its_options(bi_folder, cross_folder, tmp_path, capsys):
    import json

    from edgesbert.cli import main

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"key": f"k{i}", "body": t}) + "\n" for i, t in enumerate(TEXTS)))
    argv = [
        "--input",
        corpus,
        "--output",
        tmp_path / "e.parquet",
        "--id-column",
        "key",
        "--text-column",
        "body",
    ]
    assert (
        main(["embed", str(bi_folder), *map(str, argv), "--precision", "ubinary", "--chunk-rows", "3"]) == 0
    )
    assert "10 rows in" in capsys.readouterr().err
    np.testing.assert_array_equal(
        embeddings_of(tmp_path / "e.parquet"), load(bi_folder).encode(TEXTS, precision="ubinary")
    )
    assert pq.read_table(tmp_path / "e.parquet").column("id").to_pylist() == [
        f"k{i}" for i in range(len(TEXTS))
    ]

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("q\td\n" + "".join(f"{q}\t{d}\n" for q, d in PAIRS))
    argv = [
        "--input",
        pairs,
        "--output",
        tmp_path / "s.parquet",
        "--query-column",
        "q",
        "--document-column",
        "d",
    ]
    assert main(["score", str(cross_folder), *map(str, argv), "--processes", "2"]) == 0
    scores = pq.read_table(tmp_path / "s.parquet").column("score").to_numpy()
    np.testing.assert_allclose(scores, load(cross_folder).predict(PAIRS), atol=1e-6)
