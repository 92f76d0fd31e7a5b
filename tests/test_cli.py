"""The edgesbert command line: help, export, encode, rank and info, and its error messages."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesbert import __version__
from edgesbert.cli import main
from edgesbert.runtime import load
from edgesbert.runtime.manifest import MANIFEST_FILE, Manifest

TEXTS = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.", "x"]
QUERY = "How many people live in Berlin?"
DOCUMENTS = [
    "Berlin has a population of 3,520,031 registered inhabitants.",
    "Berlin is well known for its museums.",
    "In 2013 around 600,000 people were registered in Berlin.",
    "The urban area of Berlin had about 4.1 million people in 2014.",
    "short",
]


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run ``edgesbert *argv`` in-process; returns the exit status, stdout and stderr."""
    capsys.readouterr()  # drop what fixtures printed while building models
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_error(code: int, out: str, err: str, command: str, message: str) -> None:
    """Exit status 1, nothing on stdout, one ``edgesbert COMMAND: error: ...`` line and no stack trace."""
    assert code == 1
    assert out == ""
    assert "Traceback" not in err
    if command == "export":  # export first says what it is doing; the error is its last line
        assert err.startswith("exporting "), err
        err = err.rstrip("\n").splitlines()[-1]
    assert err.startswith(f"edgesbert {command}: error: "), err
    assert message in err


@pytest.fixture(scope="module")
def bi_folder(exported) -> Path:
    return exported("bert-mean")


@pytest.fixture(scope="module")
def cross_folder(exported) -> Path:
    return exported("bert-1", "cross-encoder")


# --- help and version ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ((), ["export", "encode", "rank", "info", "--version", "describe an exported model folder"]),
        (("export",), ["model", "--output", "--backend", "--kind", "--max-abs-diff", "--validation-size"]),
        (
            ("encode",),
            [
                "folder",
                "texts",
                "--variant",
                "--device",
                "--threads",
                "--json",
                "--normalize",
                "--prompt-name",
                "--input",
                "--text-column",
                "--batch-size",
                "--precision",
                "--output",
            ],
        ),
        (
            ("rank",),
            [
                "folder",
                "query",
                "documents",
                "--top-k",
                "--variant",
                "--device",
                "--json",
                "--input",
                "--batch-size",
            ],
        ),
        (("serve",), ["--performance-hint", "--calibration"]),
        (("info",), ["folder", "--json"]),
    ],
)
def test_help_exits_0_and_lists_commands_and_options(capsys, command, expected):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(" ".join(["usage: edgesbert", *command]))
    for word in expected:
        assert word in out, f"{word!r} missing from the help of {command}"


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"edgesbert {__version__}"


@pytest.mark.parametrize("argv", [[], ["encode"], ["frobnicate"]])
def test_bad_usage_exits_2_with_usage(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: edgesbert")
    assert "Traceback" not in err


_IMPORTS_AFTER = """
import json, sys
from edgesbert.cli import main
argv = json.loads(sys.argv[1])
try:
    code = main(argv)
except SystemExit as e:
    code = e.code
heavy = ["torch", "transformers", "onnx", "onnxruntime", "numpy"]
heavy += ["edgesbert.runtime", "edgesbert.exporters", "edgesbert.reference"]
loaded = sorted(m for m in heavy if m in sys.modules)
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def imports_after(argv: list[str]) -> dict:
    """Run the CLI with ``argv`` in a fresh interpreter; returns its exit status and heavy modules loaded."""
    result = subprocess.run(
        [sys.executable, "-c", _IMPORTS_AFTER, json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stderr.strip().splitlines()[-1])


def test_help_imports_nothing_heavy():
    for command in ([], ["export"], ["encode"], ["rank"], ["info"]):
        assert imports_after([*command, "--help"]) == {"code": 0, "loaded": []}, command


def test_encode_imports_the_runtime_but_not_torch(bi_folder):
    # The check above can fail: a command that runs a model does load onnxruntime and numpy.
    assert imports_after(["encode", str(bi_folder), "a text"]) == {
        "code": 0,
        "loaded": ["edgesbert.runtime", "numpy", "onnxruntime"],
    }


# --- export ---------------------------------------------------------------------------------------------


def test_export_bi_encoder(capsys, tmp_path, tiny_bi_encoder_folder, bi_folder):
    output = tmp_path / "bi"
    code, out, err = run(
        capsys, "export", tiny_bi_encoder_folder("bert-mean"), "--output", output, "--validation-size", 16
    )
    assert code == 0, err
    assert out.splitlines()[0] == f"wrote {output}"
    assert out.splitlines()[1].split()[:4] == ["variant", "file", "MB", "precision"]
    assert "max_abs_diff" in out and "fp32" in out
    assert (output / MANIFEST_FILE).is_file() and (output / "tokenizer.json").is_file()
    manifest = Manifest.load(output)
    assert manifest.kind.value == "bi-encoder"  # detected: no --kind given
    assert (output / manifest.variant().file).is_file()
    assert manifest.variant().validation["samples"] == 16
    # The same source exported twice runs the same.
    np.testing.assert_allclose(load(output).encode(TEXTS), load(bi_folder).encode(TEXTS), atol=1e-5)


def test_export_cross_encoder_to_the_default_output(capsys, tmp_path, monkeypatch, tiny_cross_encoder_folder):
    source = tiny_cross_encoder_folder("bert-1")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "export", source, "--kind", "cross-encoder", "--validation-size", 8)
    assert code == 0, err
    output = Path("exported") / source.name
    assert out.splitlines()[0] == f"wrote {output}"
    assert err.startswith(f"exporting {source} to {output} ...")
    manifest = Manifest.load(tmp_path / output)
    assert manifest.kind.value == "cross-encoder"
    assert manifest.classifier is not None and manifest.classifier.num_labels == 1
    scores = load(tmp_path / output).predict([(QUERY, d) for d in DOCUMENTS])
    assert scores.shape == (len(DOCUMENTS),) and np.all((scores > 0) & (scores < 1))


def test_export_refuses_a_folder_that_is_not_an_edgesbert_folder(capsys, tmp_path, tiny_bi_encoder_folder):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    code, out, err = run(capsys, "export", tiny_bi_encoder_folder("bert-mean"), "-o", occupied)
    assert_clean_error(
        code, out, err, "export", "is a non-empty folder that is not an edgesbert model folder"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["occupied"]  # no staging folder left behind
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]
    assert (occupied / "notes.txt").read_text() == "keep me"


def test_export_refuses_a_file_and_bad_options(capsys, tmp_path, tiny_bi_encoder_folder):
    a_file = tmp_path / "model.txt"
    a_file.write_text("not a folder")
    code, out, err = run(capsys, "export", tiny_bi_encoder_folder("bert-mean"), "-o", a_file)
    assert_clean_error(code, out, err, "export", "exists and is not a folder")
    assert a_file.read_text() == "not a folder"

    code, out, err = run(capsys, "export", tmp_path / "missing-model", "-o", tmp_path / "out")
    assert_clean_error(code, out, err, "export", "does not exist")

    code, out, err = run(
        capsys, "export", tiny_bi_encoder_folder("bert-mean"), "-o", tmp_path / "out", "--validation-size", 1
    )
    assert_clean_error(code, out, err, "export", "validation_size must be at least 2")
    assert not (tmp_path / "out").exists()


def test_export_under_a_file_is_a_clear_error(capsys, tmp_path, tiny_bi_encoder_folder):
    a_file = tmp_path / "afile"
    a_file.write_text("keep me")
    code, out, err = run(capsys, "export", tiny_bi_encoder_folder("bert-mean"), "-o", a_file / "out")
    assert_clean_error(code, out, err, "export", "cannot write into")
    assert a_file.read_text() == "keep me"


def test_export_of_dot_is_named_after_the_folder(capsys, tmp_path, monkeypatch, tiny_bi_encoder_folder):
    import shutil

    source = shutil.copytree(tiny_bi_encoder_folder("bert-mean"), tmp_path / "my-model")
    monkeypatch.chdir(source)
    code, _, err = run(capsys, "export", ".", "--validation-size", 8)
    assert code == 0, err
    assert Manifest.load(source / "exported" / "my-model").kind.value == "bi-encoder"


# --- encode ---------------------------------------------------------------------------------------------


def test_encode_json_matches_the_runtime(capsys, bi_folder):
    code, out, err = run(capsys, "encode", bi_folder, "--json", *TEXTS)
    assert code == 0, err
    result = json.loads(out)
    assert result["texts"] == TEXTS
    embeddings = np.array(result["embeddings"])
    expected = load(bi_folder).encode(TEXTS)
    assert embeddings.shape == expected.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)


def test_encode_normalize_matches_the_runtime(capsys, exported):
    folder = exported("distilbert-cls-dense")  # not normalized in the graph: --normalize changes it
    code, out, err = run(capsys, "encode", folder, "--normalize", "--json", *TEXTS)
    assert code == 0, err
    embeddings = np.array(json.loads(out)["embeddings"])
    model = load(folder)
    np.testing.assert_allclose(embeddings, model.encode(TEXTS, normalize_embeddings=True), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(np.linalg.norm(model.encode(TEXTS), axis=1), 1.0, atol=1e-3)


def test_encode_says_what_it_truncated_and_chunks_or_refuses_on_request(capsys, bi_folder):
    long = " ".join(["The quick brown fox jumps over the lazy dog."] * 20)  # far over the window of 64
    code, out, err = run(capsys, "encode", bi_folder, "--json", "short", long, "short too")
    assert code == 0, err
    assert "note: 1 of 3 texts were longer than 64 tokens and truncated; --long-texts chunk" in err
    code, out, err = run(
        capsys, "encode", bi_folder, "--json", "--long-texts", "chunk", "--chunk-overlap", "4", long
    )
    assert (code, err) == (0, "")
    expected = load(bi_folder).encode([long], long_texts="chunk", chunk_overlap=4)
    np.testing.assert_allclose(json.loads(out)["embeddings"], expected, atol=1e-5)
    code, out, err = run(capsys, "encode", bi_folder, "--long-texts", "error", "short", long)
    assert code == 1
    assert re.match(
        r"edgesbert encode: error: sentences\[1\] has \d+ tokens, more than the 62 this model", err
    )


def stdin_of(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_encode_reads_stdin_lines_for_a_dash_one_row_per_line(capsys, monkeypatch, bi_folder):
    lines = [TEXTS[0], "", "   ", *TEXTS[1:], "crème brûlée"]
    stdin_of(monkeypatch, ("\n".join(lines[:-1]) + "\r\n" + lines[-1] + "\n").encode())
    code, out, err = run(capsys, "encode", bi_folder, "-", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["texts"] == lines  # blank lines kept (one row per line), line endings stripped
    np.testing.assert_allclose(np.array(result["embeddings"]), load(bi_folder).encode(lines), atol=1e-5)


def test_undecodable_stdin_names_the_line(capsys, monkeypatch, bi_folder):
    stdin_of(monkeypatch, b"fine\nalso fine\nbad \xff byte\n")
    code, out, err = run(capsys, "encode", bi_folder, "-")
    assert_clean_error(code, out, err, "encode", "line 3 of stdin is not UTF-8 text (byte 0xff at byte 5")


def test_encode_prints_a_few_rows_and_no_matrix_for_many_texts(capsys, monkeypatch, bi_folder):
    texts = [f"sentence number {i}" for i in range(25)]
    stdin_of(monkeypatch, "\n".join(texts).encode())
    code, out, err = run(capsys, "encode", bi_folder, "-")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "embeddings: 25 x 32 (fp32)"
    assert [line.split("...  ")[-1] for line in lines[1:11]] == texts[:10]
    # no 25 x 25 similarity matrix
    assert lines[11:] == ["  ... and 15 more (--json prints them all, --output FILE saves them)"]


def test_encode_of_20000_stdin_lines_keeps_memory_flat(bi_folder):
    # the printout once built an N x N similarity matrix: 20,000 lines took 1.6 GB for it alone
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's, the large test process's
    script = (
        "import re, sys; from pathlib import Path; from edgesbert.cli import main; "
        "code = main(sys.argv[1:]); status = Path('/proc/self/status').read_text(); "
        "peak = re.search(r'VmHWM:\\s+(\\d+)', status)[1]; "
        "print(code, peak, file=sys.stderr)"
    )
    lines = "".join(f"line {i} of a long input\n" for i in range(20_000))
    for extra in ([], ["--json"]):
        result = subprocess.run(
            [sys.executable, "-c", script, "encode", str(bi_folder), "-", *extra],
            input=lines,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        code, peak_kb = result.stderr.split()[-2:]
        assert code == "0", result.stderr[-2000:]
        assert int(peak_kb) < 600_000, f"peak RSS {int(peak_kb) // 1024} MB"
        if extra:
            assert len(json.loads(result.stdout)["embeddings"]) == 20_000


def test_a_closed_output_pipe_ends_quietly(bi_folder):
    lines = "".join(f"line {i}\n" for i in range(3000))
    process = subprocess.Popen(
        [sys.executable, "-m", "edgesbert.cli", "encode", str(bi_folder), "-", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    process.stdin.write(lines.encode())
    process.stdin.close()
    process.stdout.read(10)  # like `| head -c 10`: read a little, then go away
    process.stdout.close()
    assert process.wait(timeout=120) == 0
    assert process.stderr.read() == b""


def test_encode_text_output(capsys, bi_folder):
    code, out, err = run(capsys, "encode", bi_folder, *TEXTS[:2])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "embeddings: 2 x 32 (fp32)"
    assert lines[1].endswith(f"...  {TEXTS[0]}") and lines[2].endswith(f"...  {TEXTS[1]}")
    assert lines[3] == "similarity (cosine):"
    model = load(bi_folder)
    embeddings = model.encode(TEXTS[:2])
    printed = np.array([[float(x) for x in line.strip(" []").split()] for line in lines[4:6]])
    np.testing.assert_allclose(printed, model.similarity(embeddings, embeddings), atol=1e-4)
    first = [float(x) for x in lines[1].split("]")[0].strip(" [").split()]
    np.testing.assert_allclose(first, embeddings[0, :6], atol=1e-4)


# --- rank -----------------------------------------------------------------------------------------------


def expected_ranking(folder: Path, top_k: int | None = None) -> list:
    return load(folder).rank(QUERY, DOCUMENTS, top_k=top_k, return_documents=True)


def assert_same_ranking(printed: list[dict], expected: list) -> None:
    assert [r["corpus_id"] for r in printed] == [r.corpus_id for r in expected]
    assert [r["text"] for r in printed] == [r.text for r in expected]
    np.testing.assert_allclose([r["score"] for r in printed], [r.score for r in expected], atol=1e-5)


def test_rank_json_matches_the_runtime(capsys, cross_folder):
    code, out, err = run(capsys, "rank", cross_folder, "--json", QUERY, *DOCUMENTS)
    assert code == 0, err
    printed = json.loads(out)
    assert sorted(r["corpus_id"] for r in printed) == list(range(len(DOCUMENTS)))
    assert all(r["text"] == DOCUMENTS[r["corpus_id"]] for r in printed)
    scores = [r["score"] for r in printed]
    assert scores == sorted(scores, reverse=True)
    assert_same_ranking(printed, expected_ranking(cross_folder))


def test_rank_top_k_and_stdin(capsys, monkeypatch, cross_folder):
    code, out, err = run(capsys, "rank", cross_folder, QUERY, *DOCUMENTS, "--top-k", 2, "--json")
    assert code == 0, err
    assert_same_ranking(json.loads(out), expected_ranking(cross_folder, top_k=2))

    stdin_of(monkeypatch, ("\n".join(DOCUMENTS) + "\n").encode())
    code, out, err = run(capsys, "rank", cross_folder, QUERY, "-", "--json")
    assert code == 0, err
    assert_same_ranking(json.loads(out), expected_ranking(cross_folder))

    stdin_of(monkeypatch, ("\n".join(["", *DOCUMENTS]) + "\n").encode())  # a blank line is a document too
    code, out, err = run(capsys, "rank", cross_folder, QUERY, "-", "--json")
    assert code == 0, err
    assert sorted(r["corpus_id"] for r in json.loads(out)) == list(range(len(DOCUMENTS) + 1))
    assert next(r["text"] for r in json.loads(out) if r["corpus_id"] == 0) == ""


def test_rank_text_output(capsys, cross_folder):
    code, out, err = run(capsys, "rank", cross_folder, QUERY, *DOCUMENTS, "--top-k", 3)
    assert code == 0, err
    expected = expected_ranking(cross_folder, top_k=3)
    assert out.splitlines() == [
        f"{i:>3}. {r.score:.4f}  [{r.corpus_id}] {r.text}" for i, r in enumerate(expected, 1)
    ]


# --- info -----------------------------------------------------------------------------------------------


def test_info_of_a_bi_encoder(capsys, bi_folder):
    code, out, err = run(capsys, "info", bi_folder)
    assert code == 0, err
    manifest = Manifest.load(bi_folder)
    assert out.splitlines()[0] == f"{bi_folder}: bi-encoder, schema 1"
    assert "32 dims, mean pooling inside the graph, normalize=True" in out
    assert "similarity    cosine" in out
    assert f"default       {manifest.default_variant}" in out
    table, files = out.split("\n\n")[1:]
    table = table.splitlines()
    assert table[0].split()[:4] == ["variant", "file", "MB", "precision"]
    rows = [row.split()[:2] for row in table[2:] if not row.startswith("*")]
    assert rows == [
        [f"{v.name}*" if v.name == manifest.default_variant else v.name, v.file] for v in manifest.variants
    ]
    recorded = len(manifest.provenance.checksums)  # every file the export wrote, configs and vocabulary too
    assert files == f"{recorded} of {recorded} files match the checksums in the manifest\n"


def test_info_of_a_cross_encoder(capsys, cross_folder):
    code, out, err = run(capsys, "info", cross_folder)
    assert code == 0, err
    manifest = Manifest.load(cross_folder)
    assert out.splitlines()[0] == f"{cross_folder}: cross-encoder, schema 1"
    assert "labels        1 ['LABEL_0'], activation sigmoid" in out
    assert "pooling" not in out
    table = out.split("\n\n")[1].splitlines()
    rows = [row.split()[:2] for row in table[2:] if not row.startswith("*")]
    assert rows == [
        [f"{v.name}*" if v.name == manifest.default_variant else v.name, v.file] for v in manifest.variants
    ]


def test_info_json_is_the_manifest(capsys, exported):
    folder = exported("distilbert-cls-dense")
    code, out, err = run(capsys, "info", folder, "--json")
    assert code == 0, err
    printed = json.loads(out)
    assert printed == Manifest.load(folder).to_dict()
    assert printed["kind"] == "bi-encoder" and printed["embedding"]["pooling"] == "cls"


# --- errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "extra"),
    [("encode", ["a text"]), ("rank", ["query", "document"]), ("info", [])],
)
def test_missing_folder_and_folder_without_manifest(capsys, tmp_path, command, extra):
    code, out, err = run(capsys, command, tmp_path / "nowhere", *extra)
    assert_clean_error(code, out, err, command, "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run(capsys, command, empty, *extra)
    assert_clean_error(code, out, err, command, "not an edgesbert model folder")


def test_runtime_errors_are_reported_without_a_traceback(capsys, bi_folder, cross_folder, exported):
    cases = [
        (["encode", cross_folder, "text"], "encode", "holds a cross-encoder, not a bi-encoder"),
        (["encode", bi_folder, "--variant", "int8", "text"], "encode", "no variant 'int8'"),
        (
            ["encode", bi_folder, "--prompt-name", "query", "text"],
            "encode",
            "not one of this model's prompts",
        ),
        (["encode", bi_folder, "--threads", 0, "text"], "encode", "threads must be at least 1"),
        (["encode", bi_folder, "--device", "npu", "text"], "encode", "cannot run on 'npu' here"),
        (["rank", exported("distilbert-3", "cross-encoder"), "q", "d"], "rank", "one output label"),
        (["rank", cross_folder, "q", "d", "--top-k", 0], "rank", "top_k must be at least 1"),
    ]
    for argv, command, message in cases:
        assert_clean_error(*run(capsys, *argv), command, message)


def test_damaged_folder_is_reported_without_a_traceback(capsys, tmp_path, bi_folder):
    import shutil

    folder = shutil.copytree(bi_folder, tmp_path / "damaged")
    (folder / "tokenizer.json").write_text("{ not json")
    assert_clean_error(*run(capsys, "encode", folder, "text"), "encode", "tokenizer.json is damaged")
    message = "cannot read the tokenizer"
    assert_clean_error(*run(capsys, "encode", folder, "--no-verify", "text"), "encode", message)
    (folder / MANIFEST_FILE).write_text("{ not json")
    assert_clean_error(*run(capsys, "info", folder), "info", "is not valid JSON")


def test_export_with_optimization_and_int8_prints_each_variant(capsys, tmp_path, tiny_bi_encoder_folder):
    output = tmp_path / "q"
    argv = [
        "export",
        tiny_bi_encoder_folder("bert-mean"),
        "-o",
        output,
        "--optimize",
        "O2",
        "--quantize",
        "int8",
    ]
    code, out, err = run(capsys, *argv, "--max-spearman-drop", 2, "--min-cosine", 0, "--validation-size", 16)
    assert code == 0, err
    manifest = Manifest.load(output)
    table = out.splitlines()[1:]
    assert [row.split()[0].rstrip("*") for row in table[2:5]] == ["fp32", "O2", "O2-int8"]
    assert "batch_min_cosine" in table[0]
    dynamic = manifest.variant("O2-int8")
    assert manifest.default_variant == ("O2" if dynamic.batch_dependent else "O2-int8")
    assert "O2-int8: optimize=O2, quantize=int8-dynamic, preset=" in out
    assert "(int8 preset detected from this CPU)" in out


def test_export_with_a_missing_calibration_file_is_a_clear_error(capsys, tmp_path, tiny_bi_encoder_folder):
    argv = [
        "export",
        tiny_bi_encoder_folder("bert-mean"),
        "-o",
        tmp_path / "out",
        "--quantize",
        "int8-static",
    ]
    code, out, err = run(capsys, *argv, "--calibration", tmp_path / "nope.txt")
    assert_clean_error(code, out, err, "export", "nope.txt")
    assert not (tmp_path / "out").exists()


def test_rank_with_a_bi_encoder_orders_by_similarity(capsys, bi_folder):
    code, out, err = run(capsys, "rank", bi_folder, QUERY, *DOCUMENTS, "--json")
    assert code == 0, err
    model = load(bi_folder)
    scores = model.similarity(model.encode([QUERY]), model.encode(DOCUMENTS))[0]
    printed = json.loads(out)
    assert [r["corpus_id"] for r in printed] == np.argsort(-scores, kind="stable").tolist()
    np.testing.assert_allclose([r["score"] for r in printed], np.sort(scores)[::-1], atol=1e-5)
    assert [r["text"] for r in printed] == [DOCUMENTS[r["corpus_id"]] for r in printed]


def test_ctrl_c_during_an_export_is_one_line_and_exit_130(tmp_path, tiny_bi_encoder_folder):
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # a background job of a shell: children inherit it
        pytest.skip("SIGINT is ignored in this process, so Python in the child ignores Ctrl-C too")
    output = tmp_path / "out"
    argv = ["export", str(tiny_bi_encoder_folder("bert-mean")), "-o", str(output), "--validation-size", "16"]
    process = subprocess.Popen(
        [sys.executable, "-m", "edgesbert.cli", *argv], stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    assert process.stderr.readline().startswith("exporting ")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    err = process.stderr.read()
    assert "Traceback" not in err and err.rstrip().splitlines()[-1] == "edgesbert export: interrupted"
    assert not output.exists() and not list(tmp_path.glob(".out.*"))


# --- texts from files, embeddings to files ----------------------------------------------------------------

#: texts that need care in each format: separators, quotes, a tab, non-ASCII, a leading space
TRICKY = ["plain words", 'a comma, and "quotes"', "a\ttab inside", "crème brûlée — 東京 🙂", " leading space"]


@pytest.fixture(scope="module")
def bi_model(bi_folder):
    return load(bi_folder)


def write_input(path: Path, texts: list[str], column: str = "text") -> Path:
    """``texts`` in the format of ``path``'s suffix, with an unrelated column beside them."""
    import csv

    if path.suffix == ".txt":
        path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    elif path.suffix == ".jsonl":
        lines = [json.dumps({"id": i, column: text}) for i, text in enumerate(texts)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t" if path.suffix == ".tsv" else ",")
            writer.writerow(["id", column])
            writer.writerows([i, text] for i, text in enumerate(texts))
    return path


def read_output(path: Path) -> tuple[list[str] | None, np.ndarray]:
    """The texts (None for .npy) and the embeddings of an --output file."""
    if path.suffix == ".npy":
        return None, np.load(path, allow_pickle=False)
    if path.suffix == ".jsonl":
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return [r["text"] for r in records], np.array([r["embedding"] for r in records], dtype=np.float32)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return table.column("text").to_pylist(), np.array(table.column("embedding").to_pylist(), dtype=np.float32)


def test_no_help_says_openvino_only(capsys):
    for command in (["encode"], ["rank"], ["serve"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert "OpenVINO only" not in out
        assert "throughput: single-threaded runs side by side (onnxruntime and OpenVINO)" in out


@pytest.mark.parametrize("input_suffix", [".txt", ".jsonl", ".csv", ".tsv"])
@pytest.mark.parametrize("output_suffix", [".npy", ".jsonl"])
def test_input_and_output_files_round_trip(
    capsys, tmp_path, bi_folder, bi_model, input_suffix, output_suffix
):
    source = write_input(tmp_path / f"in{input_suffix}", TRICKY)
    output = tmp_path / f"out{output_suffix}"
    code, out, err = run(capsys, "encode", bi_folder, "--input", source, "--output", output)
    assert code == 0, err
    assert out == ""
    assert err == f"wrote {len(TRICKY)} embeddings ({len(TRICKY)} x 32, float32) to {output}\n"
    texts, embeddings = read_output(output)
    if texts is not None:
        assert texts == TRICKY
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(embeddings, bi_model.encode(TRICKY), atol=1e-6, rtol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, output.name])  # no leftovers


def test_parquet_round_trip(capsys, tmp_path, bi_folder, bi_model):
    pytest.importorskip("pyarrow")
    output = tmp_path / "out.parquet"
    code, _, err = run(capsys, "encode", bi_folder, *TRICKY, "-o", output)
    assert code == 0, err
    texts, embeddings = read_output(output)
    assert texts == TRICKY
    np.testing.assert_allclose(embeddings, bi_model.encode(TRICKY), atol=1e-6, rtol=0)


def test_parquet_without_pyarrow_says_to_install_it(capsys, tmp_path, monkeypatch, bi_folder):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    output = tmp_path / "out.parquet"
    code, out, err = run(capsys, "encode", bi_folder, "a text", "--output", output)
    assert_clean_error(code, out, err, "encode", f"writing {output} needs pyarrow")
    assert "pip install pyarrow" in err
    assert list(tmp_path.iterdir()) == []


def test_txt_input_skips_blank_lines_and_reads_crlf_and_a_bom(capsys, tmp_path, bi_folder, bi_model):
    source = tmp_path / "in.txt"
    source.write_bytes(b"\xef\xbb\xbffirst line\r\n\r\n   \nsecond line\r\nthird, no newline")
    code, out, err = run(capsys, "encode", bi_folder, "--input", source, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["texts"] == ["first line", "second line", "third, no newline"]
    np.testing.assert_allclose(np.array(result["embeddings"]), bi_model.encode(result["texts"]), atol=1e-6)


def test_records_keep_blank_texts_so_rows_line_up(capsys, tmp_path, bi_folder):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a"}\n\n{"text": ""}\n{"text": "b"}\n', encoding="utf-8")
    code, out, err = run(capsys, "encode", bi_folder, "-i", source, "--json")
    assert code == 0, err
    assert json.loads(out)["texts"] == ["a", "", "b"]  # a blank line is no record; an empty text is one


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".tsv"])
def test_text_column_picks_the_field(capsys, tmp_path, bi_folder, suffix):
    source = write_input(tmp_path / f"in{suffix}", TEXTS, column="sentence")
    code, out, err = run(
        capsys, "encode", bi_folder, "--input", source, "--text-column", "sentence", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["texts"] == TEXTS


def test_input_dash_reads_stdin_as_the_dash_argument(capsys, monkeypatch, bi_folder):
    lines = [TEXTS[0], "", TEXTS[1]]
    stdin_of(monkeypatch, ("\n".join(lines) + "\n").encode())
    code, out, err = run(capsys, "encode", bi_folder, "--input", "-", "--json")
    assert code == 0, err
    assert json.loads(out)["texts"] == lines


def test_texts_after_an_option_are_texts_too(capsys, bi_folder):
    code, out, err = run(capsys, "encode", bi_folder, TEXTS[0], "--json", *TEXTS[1:])
    assert code == 0, err
    assert json.loads(out)["texts"] == TEXTS
    code, out, err = run(capsys, "encode", bi_folder, "--json", "--", "-dash first", "-5")
    assert code == 0, err
    assert json.loads(out)["texts"] == ["-dash first", "-5"]
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", str(bi_folder), "--json", "text", "--bogus"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: text --bogus" in capsys.readouterr().err


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_precision_to_npy_and_printed(capsys, tmp_path, bi_folder, bi_model, precision):
    output = tmp_path / "out.npy"
    code, _, err = run(capsys, "encode", bi_folder, *TEXTS, "--precision", precision, "--output", output)
    assert code == 0, err
    expected = bi_model.encode(TEXTS, precision=precision)
    width = 32 if precision.endswith("int8") else 4
    assert err == f"wrote {len(TEXTS)} embeddings ({len(TEXTS)} x {width}, {precision}) to {output}\n"
    saved = np.load(output)
    assert saved.dtype == expected.dtype == (np.int8 if precision in ("int8", "binary") else np.uint8)
    np.testing.assert_array_equal(saved, expected)

    code, out, err = run(capsys, "encode", bi_folder, *TEXTS, "--precision", precision)
    assert code == 0, err
    assert out.splitlines()[0] == f"embeddings: {len(TEXTS)} x {width} (fp32, {precision})"
    assert "similarity" not in out  # no matrix of integers that are not floats

    code, out, err = run(capsys, "encode", bi_folder, *TEXTS, "--precision", precision, "--json")
    assert code == 0, err
    np.testing.assert_array_equal(np.array(json.loads(out)["embeddings"]), expected)


def test_jsonl_output_of_a_precision_holds_integers(capsys, tmp_path, bi_folder, bi_model):
    output = tmp_path / "out.jsonl"
    code, _, err = run(capsys, "encode", bi_folder, *TEXTS, "--precision", "ubinary", "-o", output)
    assert code == 0, err
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert all(isinstance(x, int) for r in records for x in r["embedding"])
    np.testing.assert_array_equal(
        [r["embedding"] for r in records], bi_model.encode(TEXTS, precision="ubinary")
    )


def test_a_single_text_in_int8_is_a_clear_error(capsys, bi_folder):
    code, out, err = run(capsys, "encode", bi_folder, "one text", "--precision", "int8")
    assert_clean_error(code, out, err, "encode", "int8 output needs ranges: encode several texts at once")


def test_batch_size_reaches_encode_and_rank(capsys, monkeypatch, bi_folder, cross_folder):
    from edgesbert.runtime.encoding import SentenceEncoder
    from edgesbert.runtime.ranking import PairScorer

    seen: list[tuple[str, int]] = []

    def spy(cls, name):
        real = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            seen.append((name, kwargs.get("batch_size")))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    spy(SentenceEncoder, "encode")
    spy(PairScorer, "predict")
    code, out, err = run(capsys, "encode", bi_folder, *TEXTS, "--batch-size", 3, "--json")
    assert code == 0, err
    assert seen == [("encode", 3)]
    seen.clear()
    code, out, err = run(capsys, "rank", cross_folder, QUERY, *DOCUMENTS, "--batch-size", 2, "--json")
    assert code == 0, err
    assert seen == [("predict", 2)]
    assert_same_ranking(json.loads(out), expected_ranking(cross_folder))
    seen.clear()
    code, out, err = run(capsys, "rank", bi_folder, QUERY, *DOCUMENTS, "--batch-size", 2, "--json")
    assert code == 0, err
    assert ("encode", 2) in seen  # the documents' batches; the query is one text
    code, out, err = run(capsys, "encode", bi_folder, *TEXTS, "--json")
    assert code == 0, err
    assert seen[-1] == ("encode", 32)  # the default


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "must be at least 1, got 0"),
        ("-3", "must be at least 1, got -3"),
        ("many", "expected a whole number"),
    ],
)
@pytest.mark.parametrize("command", ["encode", "rank"])
def test_bad_batch_size_is_a_usage_error(capsys, bi_folder, command, value, message):
    texts = ["a text"] if command == "encode" else ["query", "document"]
    with pytest.raises(SystemExit) as exit_info:
        main([command, str(bi_folder), *texts, "--batch-size", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: edgesbert {command}")
    assert f"argument --batch-size: {message}" in err


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("count", "shown"), [(1000, False), (1001, True)])
def test_progress_bar_for_many_texts_on_a_terminal(capsys, tmp_path, monkeypatch, bi_folder, count, shown):
    source = tmp_path / "many.txt"
    source.write_text("".join(f"text number {i}\n" for i in range(count)), encoding="utf-8")
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["encode", str(bi_folder), "--input", str(source), "-o", str(tmp_path / "out.npy")]) == 0
    assert ("Batches" in terminal.getvalue()) is shown
    assert terminal.getvalue().endswith(
        f"wrote {count} embeddings ({count} x 32, float32) to {tmp_path / 'out.npy'}\n"
    )


def test_no_progress_bar_when_stderr_is_not_a_terminal(capsys, tmp_path, bi_folder):
    source = tmp_path / "many.txt"
    source.write_text("".join(f"text number {i}\n" for i in range(1500)), encoding="utf-8")
    code, out, err = run(capsys, "encode", bi_folder, "--input", source, "-o", tmp_path / "out.npy")
    assert code == 0, err
    assert out == ""
    assert err == f"wrote 1500 embeddings (1500 x 32, float32) to {tmp_path / 'out.npy'}\n"


@pytest.mark.parametrize("kind", ["cross", "bi"])
def test_rank_progress_bar_for_many_documents_on_a_terminal(
    capsys, tmp_path, monkeypatch, cross_folder, bi_folder, kind
):
    source = tmp_path / "docs.txt"
    source.write_text("".join(f"document number {i}\n" for i in range(1001)), encoding="utf-8")
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    folder = cross_folder if kind == "cross" else bi_folder
    assert main(["rank", str(folder), QUERY, "--input", str(source), "--top-k", "1"]) == 0
    assert "Batches" in terminal.getvalue()


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv"])
def test_rank_reads_documents_from_a_file(capsys, tmp_path, cross_folder, suffix):
    source = write_input(tmp_path / f"docs{suffix}", DOCUMENTS)
    code, out, err = run(capsys, "rank", cross_folder, QUERY, "--input", source, "--top-k", 3, "--json")
    assert code == 0, err
    assert_same_ranking(json.loads(out), expected_ranking(cross_folder, top_k=3))


def test_few_texts_print_the_matrix_many_a_summary(capsys, bi_folder):
    code, out, err = run(capsys, "encode", bi_folder, *[f"text {i}" for i in range(10)])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[11] == "similarity (cosine):" and len(lines) == 12 + 10
    code, out, err = run(capsys, "encode", bi_folder, *[f"text {i}" for i in range(11)])
    assert code == 0, err
    assert out.splitlines()[11:] == ["  ... and 1 more (--json prints them all, --output FILE saves them)"]


# --- texts from files, embeddings to files: errors ---------------------------------------------------------


def usage_error(capsys, *argv: object) -> str:
    """Run ``edgesbert *argv``, which must be a usage error: exit 2; returns stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    return err


def test_usage_errors_of_texts_and_files(capsys, tmp_path, bi_folder):
    source = write_input(tmp_path / "in.txt", TEXTS)
    cases = [
        (
            ["encode", bi_folder, "a text", "--input", source],
            "give the texts as arguments or with --input FILE",
        ),
        (["encode", bi_folder, "-", "--input", source], "give the texts as arguments or with --input FILE"),
        (
            ["rank", bi_folder, "q", "doc", "-i", source],
            "give the documents as arguments or with --input FILE",
        ),
        (
            ["encode", bi_folder],
            "no texts: give them as arguments, - to read lines from stdin, or --input FILE",
        ),
        (["rank", bi_folder, "query"], "no documents: give them as arguments"),
        (
            ["encode", bi_folder, "a", "--text-column", "body"],
            "--text-column names a column of an --input file",
        ),
        (
            ["encode", bi_folder, "a", "--json", "-o", tmp_path / "x.npy"],
            "--json prints the embeddings and --output writes them to a file",
        ),
        (["encode", bi_folder, "a", "--precision", "float16"], "invalid choice: 'float16'"),
    ]
    for argv, message in cases:
        err = usage_error(capsys, *argv)
        assert err.startswith(f"usage: edgesbert {argv[0]}"), err
        assert message in err, err
    assert list(tmp_path.iterdir()) == [source]


def test_input_file_errors_name_the_file_the_line_and_the_fix(capsys, tmp_path, bi_folder):
    def file(name: str, content: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(content)
        return path

    jsonl = b'{"text": "fine"}\n\n{"text": "fine"}\n{"text": broken}\n'
    (tmp_path / "folder.txt").mkdir()
    cases = [
        (
            file("texts.xml", b"<a/>"),
            [],
            "input file {path} has suffix '.xml'; supported: .txt (one text per line)",
        ),
        (
            file("noext", b"a"),
            [],
            "has no suffix; supported: .txt (one text per line), .jsonl (one JSON object",
        ),
        (tmp_path / "missing.txt", [], "input file {path} does not exist"),
        (
            tmp_path / "folder.txt",
            [],
            "input file {path} is a folder; give one .txt, .jsonl, .csv, .tsv file",
        ),
        (file("bad.jsonl", jsonl), [], "line 4 of {path} is not valid JSON (Expecting value: column 10)"),
        (
            file("list.jsonl", b'["a"]\n'),
            [],
            "line 1 of {path} is a JSON array, not an object; write one JSON",
        ),
        (
            file("field.jsonl", b'{"text": "a"}\n{"body": "b", "id": 2}\n'),
            [],
            "line 2 of {path} has no field 'text' (its fields: 'body', 'id'); pass --text-column",
        ),
        (
            file("number.jsonl", b'{"text": 3}\n'),
            [],
            "field 'text' on line 1 of {path} is a JSON number, not a string",
        ),
        (
            file("columns.csv", b"id,sentence\n1,hello\n"),
            [],
            "input file {path} has no column 'text' in its header row (columns found: 'id', 'sentence'); "
            "pass --text-column naming one of them",
        ),
        (
            file("columns.tsv", b"id\tsentence\n1\thello\n"),
            ["--text-column", "body"],
            "has no column 'body' in its header row (columns found: 'id', 'sentence')",
        ),
        (
            file("fields.csv", b"id,text\n1,fine\n2,one, two\n"),
            [],
            "line 3 of {path} has 3 fields, but the header row has 2; quote fields that contain commas",
        ),
        (file("quote.csv", b'text\n"open\n'), [], "input file {path} is not valid CSV near line"),
        (
            file("column.txt", b"a\n"),
            ["--text-column", "x"],
            "--text-column applies to .jsonl, .csv and .tsv files",
        ),
        (file("blank.txt", b"\n  \n"), [], "input file {path} holds no texts; write one text per line"),
        (
            file("header.csv", b"text\n"),
            [],
            "input file {path} holds no texts; write header row, then one row",
        ),
        (
            file("latin1.txt", b"ok\ncaf\xe9\n"),
            [],
            "line 2 of input file {path} is not UTF-8 text (byte 0xe9",
        ),
    ]
    for path, extra, message in cases:
        code, out, err = run(capsys, "encode", bi_folder, "--input", path, *extra)
        assert_clean_error(code, out, err, "encode", message.format(path=path))
        assert len(err.splitlines()) == 1


def test_output_errors_come_before_any_work(capsys, tmp_path, monkeypatch, bi_folder):
    from edgesbert.runtime import BiEncoder

    monkeypatch.setattr(BiEncoder, "__init__", lambda *a, **k: pytest.fail("the model was loaded"))
    cases = [
        (tmp_path / "out.csv", "--output {path} has suffix '.csv'; supported: .npy, .jsonl, .parquet"),
        (tmp_path / "out", "--output {path} has no suffix; supported: .npy, .jsonl, .parquet"),
        (tmp_path / "nowhere" / "out.npy", "the folder of --output {path} does not exist; create"),
    ]
    (tmp_path / "folder.npy").mkdir()
    cases.append((tmp_path / "folder.npy", "--output {path} is a folder"))
    for path, message in cases:
        code, out, err = run(capsys, "encode", bi_folder, "a", "b", "--output", path)
        assert_clean_error(code, out, err, "encode", message.format(path=path))
    assert [p.name for p in tmp_path.iterdir()] == ["folder.npy"]


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failing_output_leaves_no_debris_and_the_old_file_intact(
    capsys, tmp_path, monkeypatch, bi_folder, failure
):
    import edgesbert.cli.files

    output = tmp_path / "out.jsonl"
    output.write_text("the old file\n", encoding="utf-8")

    def half_written(f, texts, embeddings):
        f.write(b'{"text": "half')
        raise failure

    monkeypatch.setattr(edgesbert.cli.files, "_write_jsonl", half_written)
    code, out, err = run(capsys, "encode", bi_folder, *TEXTS, "--output", output)
    if isinstance(failure, KeyboardInterrupt):
        assert (code, err) == (130, "edgesbert encode: interrupted\n")
    else:
        assert_clean_error(code, out, err, "encode", "No space left on device")
    assert output.read_text(encoding="utf-8") == "the old file\n"
    assert list(tmp_path.iterdir()) == [output]


def test_output_replaces_an_old_file_with_a_plain_files_permissions(capsys, tmp_path, bi_folder, bi_model):
    import os

    output = tmp_path / "out.npy"
    code, _, err = run(capsys, "encode", bi_folder, *TEXTS, "-o", output)
    assert code == 0, err
    umask = os.umask(0)
    os.umask(umask)
    assert output.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0o600
    output.chmod(0o640)
    code, _, err = run(capsys, "encode", bi_folder, *TEXTS[:2], "-o", output)
    assert code == 0, err
    assert output.stat().st_mode & 0o777 == 0o640  # an existing file keeps its mode
    np.testing.assert_allclose(np.load(output), bi_model.encode(TEXTS[:2]), atol=1e-6, rtol=0)
    assert list(tmp_path.iterdir()) == [output]


def test_info_says_why_a_variant_that_moves_with_its_batch_is_not_the_default():
    from dataclasses import replace

    from edgesbert.cli.text import unsteady_lines
    from tests.test_manifest import bi_manifest, cross_manifest

    bi = bi_manifest()
    fp32, int8 = bi.variants
    moved = replace(int8, name="openvino-int8", backend="openvino", validation={"batch_min_cosine": 0.99984})
    manifest = replace(bi, variants=(replace(fp32, validation={"batch_min_cosine": 1.0}), moved))
    assert unsteady_lines(manifest) == [
        "openvino-int8: not the default: with its batch, a vector moves to cosine 0.999840"
        " (steady: >= 0.99999); run it with --variant openvino-int8; export with --packed for a steady twin"
    ]
    packed = replace(moved, name="openvino-packed-int8", row_length=64, validation={"batch_min_cosine": 1.0})
    with_twin = replace(manifest, variants=(*manifest.variants, packed), default_variant=packed.name)
    assert unsteady_lines(with_twin) == [
        unsteady_lines(manifest)[0].split("; export")[0]
    ]  # the twin is there
    assert unsteady_lines(replace(manifest, default_variant="openvino-int8")) == []  # asked for: no advice

    cross = cross_manifest()
    scores = replace(cross.variants[0], name="int8", validation={"batch_max_score_diff": 3.6e-4})
    onnx = replace(cross, variants=(*cross.variants, scores))
    assert unsteady_lines(onnx) == [  # ONNX Runtime's dynamic int8: rows do not fix it, no --packed advice
        "int8: not the default: with its batch, a score moves by 3.6e-04 (steady: <= 1e-05);"
        " run it with --variant int8"
    ]
