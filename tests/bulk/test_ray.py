"""The corpus jobs on Ray Data, on a real local Ray instance (num_cpus=2): the same files as one process."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys

import pytest

from edgesbert.bulk import embed_corpus, metadata_of, score_pairs
from edgesbert.cli import main
from edgesbert.errors import EdgesbertError
from tests.bulk.conftest import PAIRS, TEXTS, write_corpus

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_embed_on_ray_writes_what_one_process_writes(bi_folder, tmp_path):
    # int8: the ranges come from a calibration chunk mapped by Ray too; a bad row leaves a chunk empty
    texts = TEXTS * 3 + [""] * 4 + TEXTS
    corpus = write_corpus(tmp_path / "corpus.jsonl", texts, ids=[f"doc-{i}" for i in range(len(texts))])
    options = {"chunk_rows": 4, "batch_size": 3, "precision": "int8", "on_error": "skip"}
    local = embed_corpus(bi_folder, corpus, tmp_path / "one.parquet", **options)
    on_ray = embed_corpus(bi_folder, corpus, tmp_path / "ray.parquet", ray=True, **options)
    assert (on_ray.rows, on_ray.skipped) == (local.rows, local.skipped) == (len(texts) - 4, 4)
    assert pq.read_table(tmp_path / "ray.parquet").equals(pq.read_table(tmp_path / "one.parquet"))
    assert metadata_of(tmp_path / "ray.parquet")["ranges"] == metadata_of(tmp_path / "one.parquet")["ranges"]
    skipped = (tmp_path / "ray.parquet.skipped.jsonl").read_text()
    assert skipped == (tmp_path / "one.parquet.skipped.jsonl").read_text()


def test_float32_on_one_ray_actor_equals_two_processes(bi_folder, tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", TEXTS * 5)
    embed_corpus(bi_folder, corpus, tmp_path / "two.parquet", chunk_rows=7, processes=2)
    embed_corpus(bi_folder, corpus, tmp_path / "ray.parquet", chunk_rows=7, processes=1, ray=True)
    assert pq.read_table(tmp_path / "ray.parquet").equals(pq.read_table(tmp_path / "two.parquet"))


def test_score_on_ray_from_the_command_line(cross_folder, tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": q, "document": d}) + "\n" for q, d in PAIRS))
    score_pairs(cross_folder, pairs, tmp_path / "one.parquet", chunk_rows=3)
    argv = ["score", str(cross_folder), "-i", str(pairs), "-o", str(tmp_path / "ray.parquet")]
    assert main([*argv, "--chunk-rows", "3", "--ray"]) == 0
    assert pq.read_table(tmp_path / "ray.parquet").equals(pq.read_table(tmp_path / "one.parquet"))
    assert f"{len(PAIRS)} rows in" in capsys.readouterr().err


def test_an_actor_that_cannot_load_the_model_is_reported(bi_folder, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(bi_folder, broken)
    for graph in broken.rglob("*.onnx"):
        graph.write_bytes(b"not a graph")
    corpus = write_corpus(tmp_path / "corpus.txt", TEXTS)
    expected = r"a Ray worker failed: ModelLoadError: .*model.onnx is damaged.*every node has edgesbert"
    with pytest.raises(EdgesbertError, match=expected):
        embed_corpus(broken, corpus, tmp_path / "out.parquet", ray=True)
    assert not (tmp_path / ".out.parquet.work").exists()
    assert not (tmp_path / "out.parquet").exists()


def test_an_unreachable_cluster_is_one_line_at_once(bi_folder, tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", TEXTS)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    output = tmp_path / "out.parquet"
    command = [
        sys.executable,
        "-m",
        "edgesbert.cli",
        "embed",
        str(bi_folder),
        "-i",
        str(corpus),
        "-o",
        str(output),
    ]
    result = subprocess.run([*command, "--ray", address], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith(f"edgesbert embed: error: cannot reach a Ray cluster at '{address}' ("), (
        result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert not output.exists()
