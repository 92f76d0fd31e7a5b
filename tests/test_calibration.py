"""Calibration texts for static int8 quantization: the built-in sets, every source kind, every refusal."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from edgesbert.errors import ExportError
from edgesbert.exporters import calibration

read_calibration = calibration.read_calibration
builtin_calibration = calibration.builtin_calibration
DATA = Path(calibration.__file__).parent / "data"
ENGLISH = Path(__file__).resolve().parents[1] / "edgesbert" / "data"


def error_of(call, *args, **kwargs) -> str:
    """The message of the ExportError that ``call`` raises."""
    with pytest.raises(ExportError) as info:
        call(*args, **kwargs)
    return str(info.value)


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


# --- the shipped data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped_sentences() -> list[str]:
    return (ENGLISH / "calibration-en.txt").read_text("utf-8").splitlines()


@pytest.fixture(scope="module")
def shipped_pairs() -> list[tuple[str, str]]:
    with open(DATA / "trecqa-calibration.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["qtext", "label", "atext"]
    return [(q, a) for q, _, a in rows[1:]]


def test_the_shipped_files_hold_1000_distinct_real_texts(shipped_sentences, shipped_pairs):
    assert len(shipped_sentences) == len(set(shipped_sentences)) == 1000
    assert all(s.strip() == s and s for s in shipped_sentences)
    assert shipped_sentences[:2] == ["A plane is taking off.", "An air plane is taking off."]
    assert len(shipped_pairs) == len(set(shipped_pairs)) == 1000
    with open(DATA / "trecqa-dev.csv", encoding="utf-8", newline="") as f:
        dev = list(csv.reader(f))
    assert dev[0] == ["qtext", "label", "atext"]
    assert len(dev) == 1149
    assert {label for _, label, _ in dev[1:]} == {"0", "1"}


def test_builtin_sentences_are_distinct_real_sentences_in_file_order(shipped_sentences):
    texts = builtin_calibration(False, 256)
    assert len(texts) == len(set(texts)) == 256
    assert all(type(t) is str and t.strip() for t in texts)
    positions = [shipped_sentences.index(t) for t in texts]
    assert positions == sorted(positions)
    assert positions[-1] > 900  # a sample across the file, not its first 256 lines


def test_builtin_pairs_are_distinct_question_answer_pairs(shipped_pairs):
    pairs = builtin_calibration(True, 256)
    assert len(pairs) == len(set(pairs)) == 256
    assert all(type(p) is tuple and len(p) == 2 for p in pairs)
    assert all(type(t) is str and t.strip() for p in pairs for t in p)
    positions = [shipped_pairs.index(p) for p in pairs]
    assert positions == sorted(positions)
    assert len({q for q, _ in pairs}) > 10  # many questions, each with several candidate answers


def test_builtin_returns_everything_when_asked_for_more(shipped_sentences, shipped_pairs):
    assert builtin_calibration(False, 5000) == shipped_sentences
    assert builtin_calibration(True, 1000) == shipped_pairs


def test_builtin_is_deterministic_and_a_fresh_list_each_time():
    first = builtin_calibration(False, 64)
    first.clear()
    assert builtin_calibration(False, 64) == builtin_calibration(False, 64) != []


def test_source_none_is_the_builtin_set():
    assert read_calibration(None, pairs=False) == builtin_calibration(False, 256)
    assert read_calibration(None, pairs=True, count=10) == builtin_calibration(True, 10)
    other = read_calibration(None, pairs=False, count=10, seed=1)
    assert len(other) == 10
    assert other != builtin_calibration(False, 10)


@pytest.mark.parametrize("count", [0, -3, 2.5, True])
def test_count_must_be_a_positive_whole_number(count):
    expected = f"count must be a whole number of at least 1, got {count!r}; e.g. count=256"
    assert error_of(builtin_calibration, False, count) == expected
    assert error_of(read_calibration, ["a"], pairs=False, count=count) == expected


# --- lists ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("container", [list, tuple])
def test_a_list_of_strings_is_used_as_is(container):
    texts = ["b", " a ", "", "b"]
    result = read_calibration(container(texts), pairs=False)
    assert result == texts
    assert type(result) is list


def test_a_list_of_pairs_is_used_as_is_and_lists_become_tuples():
    assert read_calibration([("q", "d"), ["q2", "d2"]], pairs=True) == [("q", "d"), ("q2", "d2")]


def test_a_long_list_is_sampled_in_order():
    texts = [f"text {i}" for i in range(100)]
    result = read_calibration(texts, pairs=False, count=7, seed=3)
    keep = sorted(random.Random(3).sample(range(100), 7))
    assert result == [texts[i] for i in keep]


@pytest.mark.parametrize(
    ("items", "pairs", "message"),
    [
        ([], False, "the calibration list is empty; pass at least one text, or None for the built-in ones"),
        (
            ["a", 3],
            False,
            "calibration item 1 is int, not a string; pass only strings",
        ),
        (
            ["a", ("q", "d")],
            False,
            "calibration item 1 is a pair, but pairs=False needs single texts; "
            "pass strings, or pairs=True for a cross-encoder",
        ),
        (
            [("q", "d"), "a"],
            True,
            "calibration item 1 is a single text, but pairs=True needs (query, document) pairs; "
            "pass 2-tuples of strings, or pairs=False for a bi-encoder",
        ),
        (
            [("q", "d", "x")],
            True,
            "calibration item 0 is tuple, not a (query, document) pair of two strings; "
            "pass 2-tuples of strings",
        ),
        (
            [("q", None)],
            True,
            "calibration item 0 is (str, NoneType), not a (query, document) pair of two strings; "
            "pass 2-tuples of strings",
        ),
        (
            [7],
            True,
            "calibration item 0 is int, not a (query, document) pair of two strings; "
            "pass 2-tuples of strings",
        ),
    ],
    ids=["empty", "non-string", "pair-for-texts", "text-for-pairs", "triple", "non-string-in-pair", "int"],
)
def test_bad_lists_are_refused(items, pairs, message):
    assert error_of(read_calibration, items, pairs=pairs) == message


@pytest.mark.parametrize(
    ("source", "name"), [({"a"}, "set"), (b"text", "bytes"), (iter(["a"]), "list_iterator")]
)
def test_other_sources_are_refused(source, name):
    assert error_of(read_calibration, source, pairs=False) == (
        f"calibration source must be a file path, a list of texts or None, got {name}; pass a list"
    )


@pytest.mark.parametrize("source", [None, ["a"]])
def test_column_needs_a_file(source):
    assert error_of(read_calibration, source, pairs=False, column="text") == (
        "column='text' names a column of a calibration file, but no file was given; "
        "drop column= or pass a .csv, .tsv or .jsonl file"
    )


# --- files in general ----------------------------------------------------------------------------


def test_a_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    assert error_of(read_calibration, path, pairs=False) == (
        f"calibration file {path} does not exist; pass an existing .txt, .csv, .tsv, .jsonl file, "
        "or None for the built-in texts"
    )


def test_a_directory(tmp_path):
    assert error_of(read_calibration, tmp_path, pairs=False) == (
        f"calibration file {tmp_path} is a directory; pass one .txt, .csv, .tsv, .jsonl file"
    )


@pytest.mark.parametrize(("name", "found"), [("texts.parquet", "suffix '.parquet'"), ("texts", "no suffix")])
def test_an_unsupported_suffix(tmp_path, name, found):
    path = write(tmp_path / name, "a\n")
    assert error_of(read_calibration, path, pairs=False) == (
        f"calibration file {path} has {found}; supported: .txt, .csv, .tsv, .jsonl; rename or convert it"
    )


def test_an_unreadable_file(tmp_path, monkeypatch):
    path = write(tmp_path / "texts.txt", "a\n")

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert error_of(read_calibration, path, pairs=False) == (
        f"cannot read calibration file {path}: Permission denied; check its permissions"
    )


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".jsonl"])
def test_a_file_that_is_not_utf8(tmp_path, suffix):
    path = tmp_path / f"latin1{suffix}"
    path.write_bytes("text\ncafé\n".encode("latin-1"))
    assert error_of(read_calibration, path, pairs=False) == (
        f"calibration file {path} is not UTF-8 text (byte 0xe9 at offset 8); re-save it as UTF-8"
    )


@pytest.mark.parametrize(
    ("suffix", "pairs", "hint"),
    [
        (".txt", False, "write one text per line"),
        (".txt", True, "write one query<TAB>document pair per line"),
        (".csv", False, "write a header row, then one row per text"),
        (".tsv", True, "write a header row, then one row per pair"),
        (".jsonl", False, 'write one JSON object per line, like {"text": "..."}'),
        (".jsonl", True, 'write one JSON object per line, like {"query": "...", "document": "..."}'),
    ],
)
@pytest.mark.parametrize("content", ["", " \n\n\t\r\n"], ids=["empty", "blank"])
def test_an_empty_file(tmp_path, suffix, pairs, hint, content):
    path = write(tmp_path / f"empty{suffix}", content)
    assert error_of(read_calibration, path, pairs=pairs) == f"calibration file {path} is empty; {hint}"


def test_a_path_may_be_a_string_and_the_suffix_any_case(tmp_path):
    path = write(tmp_path / "texts.TXT", "one\ntwo\n")
    assert read_calibration(str(path), pairs=False) == ["one", "two"]


def test_a_long_file_is_sampled_deterministically_in_file_order(tmp_path):
    lines = [f"sentence number {i}" for i in range(1000)]
    path = write(tmp_path / "many.txt", "\n".join(lines))
    first = read_calibration(path, pairs=False, count=50)
    assert first == read_calibration(path, pairs=False, count=50)
    assert first == [lines[i] for i in sorted(random.Random(0).sample(range(1000), 50))]
    assert [lines.index(t) for t in first] == sorted(lines.index(t) for t in first)
    assert read_calibration(path, pairs=False, count=50, seed=1) != first
    assert read_calibration(path, pairs=False, count=1000) == lines


# --- .txt ----------------------------------------------------------------------------------------


def test_txt_one_text_per_line_blank_lines_skipped(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_bytes("\ufefffirst line\r\n\r\n  second, with spaces\n   \nthird\twith a tab\n".encode())
    assert read_calibration(path, pairs=False) == ["first line", "  second, with spaces", "third\twith a tab"]


def test_txt_pairs_are_tab_separated(tmp_path):
    path = write(tmp_path / "pairs.txt", "q1\td1\n\nq2\td2\r\n\td3\nq4\t \n")
    assert read_calibration(path, pairs=True) == [("q1", "d1"), ("q2", "d2")]


@pytest.mark.parametrize(("line", "fields"), [("no tab here", 1), ("a\tb\tc", 3)])
def test_txt_pairs_need_exactly_one_tab(tmp_path, line, fields):
    path = write(tmp_path / "pairs.txt", f"q\td\n\n{line}\n")
    assert error_of(read_calibration, path, pairs=True) == (
        f"line 3 of calibration file {path} has {fields} tab-separated fields, not 2; "
        "with pairs=True each line is query<TAB>document"
    )


def test_txt_pairs_all_blank(tmp_path):
    path = write(tmp_path / "pairs.txt", "\t\nq\t\n")
    assert error_of(read_calibration, path, pairs=True) == (
        f"calibration file {path} holds no usable texts, only blank ones; "
        "write one query<TAB>document pair per line"
    )


def test_txt_refuses_column(tmp_path):
    path = write(tmp_path / "texts.txt", "a\n")
    assert error_of(read_calibration, path, pairs=False, column="text") == (
        f"column='text' applies to .csv, .tsv and .jsonl files, but calibration file {path} "
        "is read one text per line; drop column="
    )


# --- .csv and .tsv -------------------------------------------------------------------------------


def test_csv_with_one_column_needs_no_column(tmp_path):
    path = write(tmp_path / "texts.csv", 'text\n"one, with a comma"\n\n"two\nlines"\n""\nthree\n')
    assert read_calibration(path, pairs=False) == ["one, with a comma", "two\nlines", "three"]


def test_csv_column_picks_one_of_several(tmp_path):
    path = write(tmp_path / "texts.csv", "id,text,label\n1,hello,0\n2,world,1\n3,,1\n")
    assert read_calibration(path, pairs=False, column="text") == ["hello", "world"]


def test_csv_pairs_with_two_columns_need_no_column(tmp_path):
    path = write(tmp_path / "pairs.csv", "query,document\nq1,d1\nq2,\nq3,d3\n")
    assert read_calibration(path, pairs=True) == [("q1", "d1"), ("q3", "d3")]


def test_csv_pairs_column_names_two_columns_in_order(tmp_path):
    path = write(tmp_path / "trec.csv", "qtext,label,atext\nWho?,1,Him.\nWhat?,0,That.\n")
    assert read_calibration(path, pairs=True, column="qtext, atext") == [("Who?", "Him."), ("What?", "That.")]
    assert read_calibration(path, pairs=True, column="atext,qtext") == [("Him.", "Who?"), ("That.", "What?")]


def test_tsv_reads_tab_separated_columns(tmp_path):
    path = write(tmp_path / "pairs.tsv", "q\td\tscore\nfirst, query\tfirst doc\t1\nq2\td2\t0\n")
    assert read_calibration(path, pairs=True, column="q,d") == [("first, query", "first doc"), ("q2", "d2")]
    assert read_calibration(path, pairs=False, column="d") == ["first doc", "d2"]


def test_csv_the_shipped_trec_file_reads_as_pairs(shipped_pairs):
    pairs = read_calibration(DATA / "trecqa-calibration.csv", pairs=True, column="qtext,atext", count=1000)
    assert pairs == shipped_pairs


@pytest.mark.parametrize(
    ("pairs", "wanted"),
    [
        (False, "the text column"),
        (True, "the two columns of each pair, like column='query,document'"),
    ],
)
def test_csv_with_several_columns_needs_column(tmp_path, pairs, wanted):
    path = write(tmp_path / "texts.csv", "id,text,label\n1,hello,0\n")
    assert error_of(read_calibration, path, pairs=pairs) == (
        f"calibration file {path} has 3 columns ('id', 'text', 'label'); "
        f"pass column= (--calibration-column) naming {wanted}"
    )


def test_csv_pairs_from_one_column_needs_column(tmp_path):
    path = write(tmp_path / "texts.csv", "text\nhello\n")
    assert error_of(read_calibration, path, pairs=True) == (
        f"calibration file {path} has 1 column ('text'); "
        "pass column= (--calibration-column) naming the two columns of each pair, "
        "like column='query,document'"
    )


@pytest.mark.parametrize(("suffix", "sep"), [(".csv", ","), (".tsv", "\t")])
def test_csv_unknown_column(tmp_path, suffix, sep):
    path = write(tmp_path / f"texts{suffix}", f"id{sep}text\n1{sep}hello\n")
    kind = suffix[1:].upper()
    tail = (
        f"which reads 'id', 'text'; the first row of a {kind} file must name its columns: add a header "
        "row if the file has none, or pass column= (--calibration-column) naming one of those"
    )
    assert error_of(read_calibration, path, pairs=False, column="sentence") == (
        f"calibration file {path} has no column 'sentence' in its header row, {tail}"
    )
    assert error_of(read_calibration, path, pairs=True, column="text,doc") == (
        f"calibration file {path} has no column 'doc' in its header row, {tail}"
    )


def test_csv_without_header_row_says_its_first_row_was_read_as_the_header(tmp_path):
    path = write(tmp_path / "texts.csv", "A man is playing a flute.,1\nA dog runs.,0\n")
    message = error_of(read_calibration, path, pairs=False, column="text")
    assert "header row, which reads 'A man is playing a flute.', '1'" in message
    assert "add a header row if the file has none" in message and "--calibration-column" in message


@pytest.mark.parametrize("column", ["text", "a,b,c"])
def test_pairs_column_must_name_two(tmp_path, column):
    path = write(tmp_path / "texts.csv", "a,b,c\n1,2,3\n")
    count = len(column.split(","))
    assert error_of(read_calibration, path, pairs=True, column=column) == (
        f"column={column!r} names {count} columns, but pairs=True needs two, the query's "
        "and the document's: column='query,document'"
    )


def test_csv_header_only(tmp_path):
    path = write(tmp_path / "texts.csv", "text\n\n")
    assert error_of(read_calibration, path, pairs=False) == (
        f"calibration file {path} has a header row but no data rows; add one row per text"
    )


def test_csv_all_blank(tmp_path):
    path = write(tmp_path / "texts.csv", 'text\n""\n"  "\n')
    assert error_of(read_calibration, path, pairs=False) == (
        f"calibration file {path} holds no usable texts, only blank ones; "
        "write a header row, then one row per text"
    )


@pytest.mark.parametrize(("suffix", "sep", "name"), [(".csv", ",", "commas"), (".tsv", "\t", "tabs")])
def test_csv_ragged_row(tmp_path, suffix, sep, name):
    path = write(tmp_path / f"texts{suffix}", f"id{sep}text\n1{sep}fine\n2{sep}not{sep}fine\n")
    assert error_of(read_calibration, path, pairs=False, column="text") == (
        f"line 3 of calibration file {path} has 3 fields, but the header has 2; "
        f"quote fields that contain {name}"
    )


def test_csv_parse_error(tmp_path):
    path = write(tmp_path / "texts.csv", 'text\nfine\n"unbalanced quote' + "x" * (csv.field_size_limit() + 1))
    message = error_of(read_calibration, path, pairs=False)
    assert message.startswith(f"calibration file {path} is not valid CSV near line 3 (field larger than")
    assert message.endswith("); check its quoting")


# --- .jsonl --------------------------------------------------------------------------------------


def test_jsonl_with_one_field_needs_no_column(tmp_path):
    lines = [json.dumps({"text": "one"}), "", json.dumps({"text": "two\nlines"}), json.dumps({"text": " "})]
    path = write(tmp_path / "texts.jsonl", "\n".join(lines) + "\n")
    assert read_calibration(path, pairs=False) == ["one", "two\nlines"]


def test_jsonl_column_picks_a_field(tmp_path):
    lines = [json.dumps({"id": i, "sentence": f"s{i}", "meta": None}) for i in range(3)]
    path = write(tmp_path / "texts.jsonl", "\r\n".join(lines))
    assert read_calibration(path, pairs=False, column="sentence") == ["s0", "s1", "s2"]


def test_jsonl_pairs(tmp_path):
    lines = [json.dumps({"q": "q1", "d": "d1"}), json.dumps({"d": "d2", "q": "q2", "extra": 1})]
    path = write(tmp_path / "pairs.jsonl", "\n".join(lines))
    assert read_calibration(path, pairs=True, column="q,d") == [("q1", "d1"), ("q2", "d2")]
    assert read_calibration(path, pairs=True, column="q,d", count=1, seed=5) in (
        [("q1", "d1")],
        [("q2", "d2")],
    )
    two_fields = write(tmp_path / "two.jsonl", lines[0])
    assert read_calibration(two_fields, pairs=True) == [("q1", "d1")]


def test_jsonl_invalid_json_names_the_line(tmp_path):
    path = write(tmp_path / "texts.jsonl", '{"text": "fine"}\n\n{"text": "broken\n')
    assert error_of(read_calibration, path, pairs=False) == (
        f"line 3 of calibration file {path} is not valid JSON (Unterminated string starting at: column 10); "
        'write one JSON object per line, like {"text": "..."}'
    )


@pytest.mark.parametrize(
    ("value", "kind"), [('["a list"]', "array"), ('"a string"', "string"), ("3", "number"), ("null", "null")]
)
def test_jsonl_line_that_is_not_an_object(tmp_path, value, kind):
    path = write(tmp_path / "texts.jsonl", f'{{"text": "fine"}}\n{value}\n')
    assert error_of(read_calibration, path, pairs=False) == (
        f"line 2 of calibration file {path} is a JSON {kind}, not an object; "
        'write one JSON object per line, like {"text": "..."}'
    )


def test_jsonl_line_without_the_field(tmp_path):
    path = write(tmp_path / "texts.jsonl", '{"text": "a"}\n{"txt": "b", "id": 2}\n{}\n')
    assert error_of(read_calibration, path, pairs=False) == (
        f"line 2 of calibration file {path} has no field 'text' (its fields: 'txt', 'id'); "
        "pass column= (--calibration-column) naming the text field, present on every line"
    )
    assert error_of(read_calibration, path, pairs=False, column="id") == (
        f"line 1 of calibration file {path} has no field 'id' (its fields: 'text'); "
        "pass column= (--calibration-column) naming the text field, present on every line"
    )


def test_jsonl_pairs_line_without_a_field(tmp_path):
    path = write(tmp_path / "pairs.jsonl", '{"q": "a", "d": "b"}\n{}\n')
    assert error_of(read_calibration, path, pairs=True, column="q,d") == (
        f"line 2 of calibration file {path} has no field 'q' (its fields: none); "
        "pass column= (--calibration-column) naming the query and document fields, present on every line"
    )


@pytest.mark.parametrize(("value", "kind"), [("3", "number"), ("true", "boolean"), ('{"a": 1}', "object")])
def test_jsonl_field_that_is_not_a_string(tmp_path, value, kind):
    path = write(tmp_path / "texts.jsonl", f'{{"text": "a"}}\n{{"text": {value}}}\n')
    assert error_of(read_calibration, path, pairs=False) == (
        f"field 'text' on line 2 of calibration file {path} is a JSON {kind}, not a string; "
        "calibration texts must be strings"
    )


@pytest.mark.parametrize(
    ("pairs", "record", "message"),
    [
        (
            False,
            '{"a": "x", "b": "y"}',
            "has 2 fields ('a', 'b'); pass column= (--calibration-column) naming the text field",
        ),
        (
            True,
            '{"a": "x"}',
            "has 1 field ('a'); "
            "pass column= (--calibration-column) naming the two fields of each pair, "
            "like column='query,document'",
        ),
        (False, "{}", "has 0 fields (none); pass column= (--calibration-column) naming the text field"),
    ],
)
def test_jsonl_needs_column_unless_the_fields_are_obvious(tmp_path, pairs, record, message):
    path = write(tmp_path / "texts.jsonl", f"\n{record}\n")
    assert error_of(read_calibration, path, pairs=pairs) == f"line 2 of calibration file {path} {message}"


def test_jsonl_all_blank(tmp_path):
    path = write(tmp_path / "texts.jsonl", '{"text": ""}\n{"text": "  "}\n')
    assert error_of(read_calibration, path, pairs=False) == (
        f"calibration file {path} holds no usable texts, only blank ones; "
        'write one JSON object per line, like {"text": "..."}'
    )
