"""The bundle's figures, each from its executable started as a new process with ``--self-test``
(offscreen Qt):

- size: the bytes of every file in the bundle folder (MB = 10^6 bytes);
- cold start to first answer: from starting the process to its printing the first answer of a query,
  with the folder's index already saved (TREC QA dev answers as 287 files, 1,134 paragraphs), the median
  of 3 starts, each after dropping the bundle's and the index's files from the page cache (``evict``);
  the warm start is the same with the files cached;
- indexing 10,000 paragraphs (100 files of 100 TREC QA and STSb sentences) into a new index: the wall
  time of the run and the peak RSS of the process (getrusage of the child).
"""

from __future__ import annotations

import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common.paths import DATA, ROOT
from benchmarks.common.timing import log
from benchmarks.desktop.bundle import WORK

QUERY = "When did James Dean die ?"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def trec_folder(target: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.desktop.trec_files import write_trec_folder

    shutil.rmtree(target, ignore_errors=True)
    write_trec_folder(target, 78)
    return target


def ten_thousand_paragraphs(target: Path, files: int = 100, per_file: int = 100) -> Path:
    """100 files of 100 paragraphs: TREC QA answers, then STSb sentences, each used once."""
    texts: dict[str, None] = {}
    for name, columns in [("trecqa-train.csv", [2]), ("trecqa-dev.csv", [2]), ("stsb-en-train.csv", [0, 1])]:
        with (DATA / name).open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))[1 if name.startswith("trec") else 0 :]
        texts.update(dict.fromkeys(row[c] for row in rows for c in columns if len(row) > max(columns)))
    paragraphs = list(texts)[: files * per_file]
    if len(paragraphs) < files * per_file:
        sys.exit(f"only {len(paragraphs)} distinct paragraphs in data/")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for i in range(files):
        text = "\n\n".join(paragraphs[i * per_file : (i + 1) * per_file])
        (target / f"part-{i:03d}.txt").write_text(text + "\n", encoding="utf-8")
    return target


def self_test(executable: Path, folder: Path, index_dir: Path) -> tuple[float, float, int]:
    """Run the bundle's self-test: (seconds to its first answer, seconds to exit, peak RSS in bytes)."""
    env = os.environ | {"QT_QPA_PLATFORM": "offscreen"}
    command = [str(executable), "--self-test", QUERY, "--folder", str(folder), "--index-dir", str(index_dir)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    first_answer, lines = None, []
    for line in process.stdout:
        lines.append(line.rstrip())
        if first_answer is None and line.startswith("first answer"):
            first_answer = time.perf_counter() - started
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 or first_answer is None:
        sys.exit(f"self-test failed ({process.returncode}):\n" + "\n".join(lines))
    log("\n".join(lines[:4]))
    return first_answer, time.perf_counter() - started, usage.ru_maxrss * 1024


def evict(*folders: Path) -> None:
    """Drop every file of ``folders`` from the page cache, so that the next start reads them from disk.

    ``posix_fadvise(DONTNEED)`` needs no root; the system's own libraries (libc, libX11's deps) stay
    cached, as they are on any desktop where other programs run.
    """
    for path in (p for folder in folders for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def measure(bundle: Path, executable_name: str) -> dict[str, float]:
    """Size; first start (indexing the TREC folder); cold and warm starts, index saved; 10,000 paragraphs."""
    executable = bundle / executable_name
    trec, index_dir = trec_folder(WORK / "bench-trec"), WORK / f"bench-index-{executable_name}"
    shutil.rmtree(index_dir, ignore_errors=True)
    first_run = self_test(executable, trec, index_dir)
    cold = []
    for _ in range(3):
        evict(bundle, index_dir)
        cold.append(self_test(executable, trec, index_dir)[0])
    starts = [self_test(executable, trec, index_dir)[0] for _ in range(3)]
    big, big_index = ten_thousand_paragraphs(WORK / "bench-10k"), WORK / f"bench-10k-{executable_name}"
    shutil.rmtree(big_index, ignore_errors=True)
    _, index_s, peak = self_test(executable, big, big_index)
    return {
        "size_mb": folder_bytes(bundle) / 1e6,
        "cold_s": statistics.median(cold),
        "start_s": statistics.median(starts),
        "first_s": first_run[0],
        "index_s": index_s,
        "peak_mb": peak / 1e6,
    }
