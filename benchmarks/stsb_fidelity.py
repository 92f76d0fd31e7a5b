"""Fidelity and speed of an exported bi-encoder on STSb-test against PyTorch and sentence-transformers.

    python -m benchmarks.stsb_fidelity [MODEL] [--exported FOLDER] [--threads 2]

Prints a markdown table and writes it to benchmarks/results/stsb-fidelity.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from benchmarks.common.data import sts_spearman, stsb_test
from benchmarks.common.machine import machine
from benchmarks.common.paths import RESULTS, scratch
from benchmarks.common.timing import one_pass
from edgesbert import DEFAULT_MODEL
from edgesbert.exporters import export_model
from edgesbert.reference import BiEncoder
from edgesbert.runtime import BiEncoder as RuntimeBiEncoder
from edgesbert.runtime import load

REPORT = RESULTS / "stsb-fidelity.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    parser.add_argument("--exported", type=Path, help="an exported folder (default: export to a temp dir)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    first, second, gold = stsb_test()
    texts = list(dict.fromkeys(first + second))
    folder = args.exported or scratch("edgesbert-fidelity.") / "model"
    if args.exported is None:
        export_model(args.model, folder)

    reference = BiEncoder(args.model)
    runtime = load(folder, threads=args.threads)
    if not isinstance(runtime, RuntimeBiEncoder):
        raise SystemExit(f"{folder} holds a cross-encoder, not a bi-encoder")
    encoders: dict[str, Callable[[list[str]], npt.ArrayLike]] = {
        "edgesbert reference (torch)": reference.encode,
        "edgesbert runtime (onnx fp32)": runtime.encode,
    }
    try:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(reference.folder), device="cpu")
        encoders["sentence-transformers (torch)"] = lambda t: st.encode(t, batch_size=32)
    except ImportError:
        pass

    baseline = np.asarray(one_pass(reference.encode, texts)[1])
    rows = ["| encoder | STSb-test Spearman | max abs diff to reference | sentences/s |", "|---|---|---|---|"]
    for name, encode in encoders.items():
        speed, output = one_pass(encode, texts)
        vectors = np.asarray(output)
        rho = sts_spearman(vectors, texts, first, second, gold)
        rows.append(f"| {name} | {rho:.4f} | {np.abs(vectors - baseline).max():.2e} | {speed:.0f} |")
    table = "\n".join(
        [
            f"# STSb-test fidelity: {args.model}",
            "",
            f"Machine: {machine()}; {args.threads} threads, batch 32.",
            "",
            *rows,
        ]
    )
    print(table)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(table + "\n")


if __name__ == "__main__":
    main()
