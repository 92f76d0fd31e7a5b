"""The app's command line in a subprocess: the headless self-test, and clear messages for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.desktop.conftest import write_files

ROOT = Path(__file__).resolve().parents[2]


def run_app(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "examples.desktop", *map(str, args)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_self_test_indexes_answers_one_query_and_exits_0(exported, tmp_path):
    folder = write_files(
        tmp_path / "docs", {"a.txt": "Alpha paragraph.", "b.md": "Beta one.\n\nBeta two.", "c.txt": b"\0"}
    )
    model, reranker = exported("bert-mean"), exported("bert-1", kind="cross-encoder")
    args = ["--folder", folder, "--model", model, "--reranker", reranker, "--index-dir", tmp_path / "ix"]
    done = run_app("--self-test", "Beta two.", "--rerank", *args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Indexed: 3 paragraphs, 2 files embedded")
    assert lines[1] == "skipped c.txt: binary file"
    assert lines[2].startswith("first answer") and len(lines) == 6  # three paragraphs found
    again = run_app("--self-test", "Alpha", *args)
    assert again.returncode == 0 and again.stdout.startswith(
        "Indexed: 3 paragraphs, 0 files embedded, 2 unchanged"
    )


def test_an_empty_folder_fails_the_self_test_with_a_message(exported, tmp_path):
    (tmp_path / "empty").mkdir()
    done = run_app("--self-test", "x", "--folder", tmp_path / "empty", "--model", exported("bert-mean"))
    assert done.returncode == 1
    assert done.stdout.startswith("No text to search in")


def test_a_bad_model_folder_or_folder_is_one_line_not_a_traceback(exported, tmp_path):
    done = run_app("--self-test", "x", "--folder", tmp_path, "--model", tmp_path / "missing")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith(f"error: cannot load the model in {tmp_path / 'missing'}")
    cross = run_app(
        "--self-test", "x", "--folder", tmp_path, "--model", exported("bert-1", kind="cross-encoder")
    )
    assert cross.returncode == 2 and "holds a cross-encoder, not a bi-encoder" in cross.stderr
    bi = exported("bert-mean")  # the default model folder is absent in a fresh clone: name one
    swapped = run_app("--self-test", "x", "--folder", tmp_path, "--model", bi, "--reranker", bi)
    assert swapped.returncode == 2 and "holds a bi-encoder, not a cross-encoder" in swapped.stderr
    nowhere = run_app("--self-test", "x", "--folder", tmp_path / "nowhere", "--model", bi)
    assert nowhere.returncode == 2 and "not a folder" in nowhere.stderr and "Traceback" not in nowhere.stderr


def test_the_app_never_imports_torch_or_transformers(exported, tmp_path):
    folder = write_files(tmp_path / "docs", {"a.txt": "Alpha.", "b.txt": "Beta."})
    code = (
        "import sys; from pathlib import Path; from examples.desktop import app\n"
        f"status = app.main(['--self-test', 'Alpha', '--folder', {str(folder)!r}, '--model', "
        f"{str(exported('bert-mean'))!r}, '--index-dir', {str(tmp_path / 'ix')!r}])\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'onnx', 'optimum') if m in sys.modules)\n"
        "print('heavy:', heavy); sys.exit(status)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "heavy: []"
