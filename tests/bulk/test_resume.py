"""The command line in a subprocess: killed and rerun it writes what an uninterrupted run writes; memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from edgesbert.bulk import metadata_of


def edgesbert(*argv: object, **kwargs) -> subprocess.Popen:
    command = [sys.executable, "-m", "edgesbert.cli", *map(str, argv)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def finish(process: subprocess.Popen) -> str:
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return err


def corpus_of(path: Path, lines: int, short: bool = False) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(lines):
            f.write(
                f"w{i % 997}\n" if short else f"sentence {i} about {'cats' if i % 3 else 'the weather'}\n"
            )
    return path


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_killed_run_resumes_to_the_same_file(bi_folder, tmp_path):
    corpus = corpus_of(tmp_path / "corpus.txt", 4000)
    common = ("--chunk-rows", 100, "--batch-size", 16, "--precision", "int8")
    finish(edgesbert("embed", bi_folder, "--input", corpus, "--output", tmp_path / "whole.parquet", *common))

    output = tmp_path / "resumed.parquet"
    work = tmp_path / ".resumed.parquet.work"
    process = edgesbert("embed", bi_folder, "--input", corpus, "--output", output, *common, "--processes", 2)
    deadline = time.monotonic() + 60
    while not (work / "shard-000003.parquet").exists():
        assert process.poll() is None, "the run ended before it could be killed; make the corpus larger"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    workers = children_of(process.pid)
    assert len(workers) >= 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    while any(Path(f"/proc/{pid}").exists() for pid in workers):  # they end with their parent
        assert time.monotonic() < deadline + 10, "worker processes outlived the killed job"
        time.sleep(0.05)
    assert not output.exists()
    done = len(list(work.glob("shard-*.parquet")))
    assert 4 <= done < 40

    err = finish(edgesbert("embed", bi_folder, "--input", corpus, "--output", output, *common))
    assert "resuming:" in err
    assert "4000 rows in" in err
    assert not work.exists()
    assert pq.read_table(output).equals(pq.read_table(tmp_path / "whole.parquet"))
    assert output.read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert metadata_of(output)["ranges"] is not None


def test_other_options_start_over(bi_folder, tmp_path):
    from edgesbert.bulk.shards import WorkFolder

    corpus = corpus_of(tmp_path / "corpus.txt", 50)
    output = tmp_path / "out.parquet"
    earlier = WorkFolder(output, {"input": "another"}, lambda message: None)
    earlier.add_shard(0, pq.read_table(_tiny_table(tmp_path)), 10, [])
    earlier.release()  # as a run that died
    err = finish(edgesbert("embed", bi_folder, "--input", corpus, "--output", output))
    assert "starting over" in err
    assert pq.read_table(output).num_rows == 50


def _tiny_table(tmp_path: Path) -> Path:
    import pyarrow as pa

    path = tmp_path / "tiny.parquet"
    pq.write_table(pa.table({"id": [0]}), path)
    return path


def peak_rss_kib(bi_folder: Path, corpus: Path, output: Path) -> int:
    script = (
        "import sys; from edgesbert.cli import main; code = main(sys.argv[1:]); "
        "status = open('/proc/self/status').read(); "
        "print([l.split()[1] for l in status.splitlines() if l.startswith('VmHWM')][0]); sys.exit(code)"
    )
    argv = [
        "embed",
        bi_folder,
        "--input",
        corpus,
        "--output",
        output,
        "--chunk-rows",
        2000,
        "--batch-size",
        256,
    ]
    result = subprocess.run(
        [sys.executable, "-c", script, *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def test_memory_does_not_grow_with_the_corpus(bi_folder, tmp_path):
    small = peak_rss_kib(
        bi_folder, corpus_of(tmp_path / "small.txt", 20_000, short=True), tmp_path / "small.parquet"
    )
    large = peak_rss_kib(
        bi_folder, corpus_of(tmp_path / "large.txt", 200_000, short=True), tmp_path / "large.parquet"
    )
    assert pq.read_metadata(tmp_path / "large.parquet").num_rows == 200_000
    assert large <= small * 1.2, (small, large)


def test_a_second_job_on_the_same_output_is_refused(bi_folder, tmp_path):
    import pytest

    from edgesbert.bulk import embed_corpus
    from edgesbert.bulk.shards import WorkFolder

    corpus = corpus_of(tmp_path / "corpus.txt", 20)
    output = tmp_path / "out.parquet"
    running = WorkFolder(output, {"input": "the first job"}, lambda message: None)
    with pytest.raises(ValueError, match="another edgesbert job is writing"):
        embed_corpus(bi_folder, corpus, output)
    running.release()
    embed_corpus(bi_folder, corpus, output)
    assert pq.read_metadata(output).num_rows == 20


def test_help_is_light_and_a_job_never_imports_torch(bi_folder, tmp_path):
    from tests.test_cli import imports_after

    for command in ("embed", "score"):
        assert imports_after([command, "--help"]) == {"code": 0, "loaded": []}, command
    corpus = corpus_of(tmp_path / "corpus.txt", 5)
    argv = ["embed", str(bi_folder), "--input", str(corpus), "--output", str(tmp_path / "out.parquet")]
    assert imports_after(argv) == {"code": 0, "loaded": ["edgesbert.runtime", "numpy", "onnxruntime"]}
