"""Bad input: one clear line naming the file, the line or row and the fix; or, with skip, a recorded hole."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from edgesbert.bulk import embed_corpus, metadata_of
from edgesbert.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert out == ""
    return code, err


def assert_error(code: int, err: str, command: str, *parts: str) -> None:
    assert code == 1, err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"edgesbert {command}: error: "), err
    for part in parts:
        assert part in err, err


BAD_JSONL = (
    b'{"text": "fine"}\n{"text": \n{"text": ""}\n{"txt": "no field"}\n{"text": "caf\xe9"}\n{"text": "ok"}\n'
)


@pytest.mark.parametrize(
    ("content", "suffix", "expected"),
    [
        (b'{"text": "fine"}\n{"text": \n', ".jsonl", ["line 2 of", "not valid JSON", "--on-error skip"]),
        (b'{"text": "a"}\n{"text": "  "}\n', ".jsonl", ["line 2 of", "'text' is empty"]),
        (b'{"text": "a"}\n{"body": "b"}\n', ".jsonl", ["line 2 of", "no field 'text'", "its fields: 'body'"]),
        (b'{"text": "a"}\n{"text": 5}\n', ".jsonl", ["line 2 of", "not a string"]),
        (b"one\ncaf\xe9\n", ".txt", ["line 2 of", "not UTF-8", "iconv"]),
        (b"one\n\nthree\n", ".txt", ["line 2 of", "blank", "remove blank lines"]),
        (b"text,id\nok,1\ncaf\xe9,2\n", ".csv", ["line 3 of", "not UTF-8"]),
        (b"text,id\nok,1\nbad,2,3\n", ".csv", ["line 3 of", "3 fields"]),
    ],
)
def test_a_bad_record_fails_with_one_line(bi_folder, tmp_path, capsys, content, suffix, expected):
    corpus = tmp_path / f"corpus{suffix}"
    corpus.write_bytes(content)
    code, err = run(capsys, "embed", bi_folder, "--input", corpus, "--output", tmp_path / "out.parquet")
    assert_error(code, err, "embed", str(corpus), *expected)
    assert not (tmp_path / "out.parquet").exists()


def test_a_missing_column_fails_whatever_on_error_says(bi_folder, tmp_path, capsys):
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("body,id\nhello,1\n")
    for policy in ("fail", "skip"):
        argv = ("--input", corpus, "--output", tmp_path / "out.parquet", "--on-error", policy)
        code, err = run(capsys, "embed", bi_folder, *argv)
        assert_error(code, err, "embed", str(corpus), "no column 'text'", "'body', 'id'", "--text-column")
    parquet = tmp_path / "corpus.parquet"
    _parquet(parquet)
    code, err = run(
        capsys,
        "embed",
        bi_folder,
        "--input",
        parquet,
        "--output",
        tmp_path / "o.parquet",
        "--id-column",
        "key",
    )
    assert_error(code, err, "embed", str(parquet), "no column 'key'")


def _parquet(path: Path) -> None:
    import pyarrow as pa

    pq.write_table(pa.table({"text": ["a", None, "c"]}), path)


def test_skip_leaves_bad_rows_out_and_lists_them(bi_folder, tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_bytes(BAD_JSONL)
    output = tmp_path / "out.parquet"
    argv = ("--input", corpus, "--output", output, "--on-error", "skip", "--chunk-rows", 2)
    code, err = run(capsys, "embed", bi_folder, *argv)
    assert code == 0, err
    assert "4 rows skipped" in err and "out.parquet.skipped.jsonl" in err
    assert pq.read_table(output).column("id").to_pylist() == [0, 5]
    skipped = [json.loads(line) for line in (tmp_path / "out.parquet.skipped.jsonl").read_text().splitlines()]
    assert [(s["row"], s["line"]) for s in skipped] == [(1, 2), (2, 3), (3, 4), (4, 5)]
    assert "not UTF-8" in skipped[3]["error"]
    assert metadata_of(output)["skipped"] == 4

    corpus.write_text('{"text": "all good"}\n')  # a later clean run removes the old list
    embed_corpus(bi_folder, corpus, output)
    assert not (tmp_path / "out.parquet.skipped.jsonl").exists()


def test_null_texts_of_parquet_are_named_by_row(bi_folder, tmp_path, capsys):
    corpus = tmp_path / "corpus.parquet"
    _parquet(corpus)
    code, err = run(capsys, "embed", bi_folder, "--input", corpus, "--output", tmp_path / "out.parquet")
    assert_error(code, err, "embed", f"row 1 of {corpus}", "null")
    result = embed_corpus(bi_folder, corpus, tmp_path / "out.parquet", on_error="skip")
    assert (result.rows, result.skipped) == (2, 1)


@pytest.mark.parametrize(
    ("command", "input_name", "expected"),
    [
        ("score", "corpus.txt", "has no columns"),
        ("embed", "corpus.xml", "has suffix '.xml'"),
        ("embed", "missing.txt", "does not exist"),
    ],
)
def test_wrong_inputs(bi_folder, cross_folder, tmp_path, capsys, command, input_name, expected):
    corpus = tmp_path / input_name
    if input_name != "missing.txt":
        corpus.write_text("a\nb\n")
    folder = cross_folder if command == "score" else bi_folder
    code, err = run(capsys, command, folder, "--input", corpus, "--output", tmp_path / "out.parquet")
    assert_error(code, err, command, expected)


def test_the_wrong_kind_of_model_says_which_command(bi_folder, cross_folder, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a\nb\n")
    code, err = run(capsys, "embed", cross_folder, "--input", corpus, "--output", tmp_path / "out.parquet")
    assert_error(code, err, "embed", "cross-encoder", "edgesbert score")


def test_output_must_be_parquet(bi_folder, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a\n")
    code, err = run(capsys, "embed", bi_folder, "--input", corpus, "--output", tmp_path / "out.npy")
    assert_error(code, err, "embed", ".parquet")


def test_unknown_arguments_exit_2(bi_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["embed", str(bi_folder), "--input", "x.txt", "--output", "o.parquet", "extra"])
    assert stopped.value.code == 2
