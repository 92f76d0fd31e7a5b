"""Peak memory and time of ``edgesbert.util.semantic_search`` over a 1,000,000 x 384 corpus.

    python -m benchmarks.memory.search [--rows 1000000] [--dim 384] [--queries 100] [--top-k 10]

Each case runs in a fresh process, which imports numpy and edgesbert.util only, builds its corpus with
numpy's random generator 10,000 rows at a time (int8 or float32 values, or packed sign bits), takes 100
of its rows as queries, notes its resident memory (VmRSS) once the corpus is built, then times
``semantic_search(queries, corpus, top_k=10)`` (cosine for int8 and float32, minus the Hamming distance
for the bits) and reads the peak resident memory of its whole life (VmHWM, /proc/self/status): the
corpus, the interpreter and numpy, and what the search adds. One case repeats int8 with
sentence-transformers' default ``corpus_chunk_size`` of 500,000 to show what the chunk size costs. Each
query is a corpus row, so the search must find that row first: the table says whether it did.
Target (issue 17): the int8 case under 500 MB peak. MB are 10^6 bytes. Results go to
benchmarks/results/search-memory.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common.machine import cpu_flags, machine
from benchmarks.common.paths import RESULTS, ROOT
from benchmarks.common.timing import log

TARGET_MB = 500  # issue 17, the int8 case
CASES = {  # name: (kind, precision, corpus_chunk_size or None for the default)
    "int8, cosine": ("int8", None, None),
    "float32, cosine": ("float32", None, None),
    "ubinary, Hamming": ("ubinary", "ubinary", None),
    "int8, cosine, corpus_chunk_size=500,000": ("int8", None, 500_000),
}
CHILD = """
import json, sys
import numpy as np
from edgesbert.util import semantic_search
from benchmarks.common.timing import status_mb, timed

kind, precision, chunk, rows, dim, n_queries, top_k = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
shape = (rows, dim // 8) if kind == "ubinary" else (rows, dim)
corpus = np.empty(shape, dtype={"int8": np.int8, "float32": np.float32, "ubinary": np.uint8}[kind])
for start in range(0, rows, 10_000):
    block = (min(10_000, rows - start), shape[1])
    if kind == "float32":
        corpus[start : start + block[0]] = rng.standard_normal(block, dtype=np.float32)
    else:
        low, high = (-128, 128) if kind == "int8" else (0, 256)
        corpus[start : start + block[0]] = rng.integers(low, high, block, dtype=corpus.dtype)
picked = rng.choice(rows, n_queries, replace=False)
queries = corpus[picked].copy()
before = status_mb("VmRSS")
options = {"precision": precision} if chunk is None else {"precision": precision, "corpus_chunk_size": chunk}
seconds, hits = timed(semantic_search, queries, corpus, top_k=top_k, **options)
found = sum(row[0]["corpus_id"] == i for row, i in zip(hits, picked.tolist()))
print(json.dumps({"corpus": corpus.nbytes / 1e6, "before": before, "peak": status_mb("VmHWM"),
                  "seconds": seconds, "found": found}))
"""


def run_case(
    kind: str, precision: str | None, chunk: int | None, args: argparse.Namespace
) -> dict[str, float]:
    """One case in a fresh process: its figures (corpus, before and peak in MB, seconds, found)."""
    spec = json.dumps([kind, precision, chunk, args.rows, args.dim, args.queries, args.top_k])
    out = subprocess.run([sys.executable, "-c", CHILD, spec], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"case {kind} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run every case and write the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    table = [
        "| case | corpus MB | RSS, corpus built, MB | peak RSS MB | search adds MB | seconds | own row 1st |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    figures = {}
    for name, (kind, precision, chunk) in CASES.items():
        log(f"running {name}")
        figures[name] = f = run_case(kind, precision, chunk, args)
        table.append(
            f"| {name} | {f['corpus']:.0f} | {f['before']:.0f} | {f['peak']:.0f} | "
            f"{f['peak'] - f['before']:.0f} | {f['seconds']:.2f} | {f['found']}/{args.queries} |"
        )
    peak = figures["int8, cosine"]["peak"]
    lines = [
        "# Memory of semantic search over stored embeddings",
        "",
        f"Machine: {machine()} ({cpu_flags()}). Command: `python -m benchmarks.memory.search --rows "
        f"{args.rows} --dim {args.dim} --queries {args.queries} --top-k {args.top_k}`",
        "",
        f"`edgesbert.util.semantic_search` of {args.queries} queries (rows of the corpus) over {args.rows:,} "
        f"random {args.dim}-dimensional embeddings, top {args.top_k}, each case in a fresh process; default "
        "chunk sizes (100 queries, 16,384 corpus rows) unless named. Peak RSS is the process's whole life "
        "(VmHWM): interpreter, numpy, the corpus and the search.",
        "",
        *table,
        "",
        f"Target: the int8 case under {TARGET_MB} MB peak: **{'met' if peak < TARGET_MB else 'missed'}** "
        f"({peak:.0f} MB). Beyond the corpus the search holds one corpus chunk as float32 (4 x dim bytes a "
        "row; bits are unpacked to one float a bit) and one block of scores (4 x 100 bytes a row), so its "
        "share grows with `corpus_chunk_size`, not with the corpus.",
        "",
    ]
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "search-memory.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
