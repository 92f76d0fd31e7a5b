"""A 0.6B-parameter model through both backends: export time and memory, size, speed, long texts (issue 32).

    python -m benchmarks.memory.big_model [--texts 128] [--threads 2] [--backends onnx,openvino]

Builds (once, in build/big-model) a model of Qwen3-Embedding-0.6B's shapes with random weights: 28 layers,
1024 wide, a 151,669-token table, 596M parameters, 2.4 GB in float32, last-token pooling; the tokenizer is
the tests' small WordPiece one (only the table's first rows are ever looked up, which changes no timing).
Exports it as a user would (``edgesbert export``, each backend in a fresh process, its phases' peak memory
followed as ``benchmarks.memory.export`` does): ONNX fp32, dynamic int8, static int8 and int4-weights;
OpenVINO fp32, int8-weights, int4-weights and NNCF int8. Random weights make accuracy figures meaningless:
the export runs with its tolerances open and 32 validation pairs; the cosine to fp32 is reported instead.
Then, per variant, in one process: sentences/s over the first ``--texts`` unique STSb-test sentences
(batches of 32, after one warm-up pass), the p50 of 20 one-sentence calls, the folder's files for the
variant; and for the long texts, with each backend's default variant: a document of 7,500 words (14,123
tokens with the tests' tokenizer) embedded whole in windows of the model's 512 tokens
(``long_texts="chunk"``) against truncated to its first window, in tokens computed per second (its 28
windows take minutes in fp32 on 2 cores: one variant each). Writes
benchmarks/results/big-model-<cpu kind>.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.cache import graph_mb
from benchmarks.common.data import stsb_test, unique_texts
from benchmarks.common.machine import cpu_flags, cpu_kind, machine
from benchmarks.common.paths import RESULTS, ROOT
from benchmarks.common.timing import call_ms, log, percentiles, timed
from benchmarks.memory.export import run_export, weight_bytes

BUILD = ROOT / "build" / "big-model"
#: Qwen3-Embedding-0.6B's shapes (its config.json)
QWEN3_06B = {
    "vocab_size": 151_669, "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "max_position_embeddings": 32768,
    "rope_theta": 1_000_000, "tie_word_embeddings": True,
}  # fmt: skip
WINDOW = 512  # the window the folder is exported with (max_seq_length): chunks of it
EXPORTS = {
    "onnx": ["int8", "int8-static", "int4-weights"],
    "openvino": ["int8-weights", "int4-weights", "int8"],
}
OPEN_TOLERANCES = ["--max-spearman-drop", "1", "--min-cosine", "0", "--min-score-spearman", "-1",
                   "--validation-size", "32", "--calibration-samples", "64"]  # fmt: skip


def build_model(folder: Path) -> Path:
    """The random 0.6B model, built once."""
    if (folder / "modules.json").is_file():
        return folder
    build_bi_encoder = importlib.import_module("tests.tiny_models").build_bi_encoder  # the tests' builder
    with_pid = folder.with_name(f"{folder.name}.{os.getpid()}")
    build_bi_encoder(
        with_pid, architecture="qwen3", pooling="lasttoken", config=QWEN3_06B, max_seq_length=WINDOW
    )
    with_pid.rename(folder)
    return folder


def export(model: Path, backend: str) -> tuple[Path, list[dict[str, float]]]:
    """The backend's folder (exported unless there) and the phases of its export."""
    output, phases_file = BUILD / backend, BUILD / f"{backend}.phases.json"
    if not (output / "edgesbert.json").is_file() or not phases_file.is_file():
        log(f"exporting to {backend} (several minutes)")
        first, *more = EXPORTS[backend]
        extra = [*(a for q in more for a in ("--quantize", q)), *OPEN_TOLERANCES, "--output", str(output)]
        phases = run_export(model, backend, first, extra)
        phases_file.write_text(json.dumps(phases))
    return output, json.loads(phases_file.read_text())


def documents(texts: list[str], count: int, words: int) -> list[str]:
    """``count`` documents of ``words`` words each: ``texts`` run together."""
    found = " ".join(texts).split()
    return [" ".join(found[i * words : (i + 1) * words]) for i in range(count)]


def measure(folder: Path, variant: str, texts: list[str], docs: list[str], threads: int) -> dict[str, Any]:
    """Speed of one variant: sentences/s, one-sentence p50; with ``docs``, long documents in tokens/s."""
    from edgesbert.runtime import BiEncoder

    model = BiEncoder(folder, variant=variant, threads=threads)
    model.encode(texts[:32])  # warm-up: shapes compiled, pages touched
    seconds, vectors = timed(model.encode, texts, batch_size=32)
    p50, _ = percentiles(call_ms(model.encode, [[t] for t in texts[:20]]))
    found = {"per_s": len(texts) / seconds, "p50_ms": p50, "vectors": vectors.tolist()}
    if docs:
        tokens = sum(model.tokenizer.token_counts(docs))
        chunked_s, _ = timed(model.encode, docs, long_texts="chunk", batch_size=8)
        truncated_s, _ = timed(model.encode, docs, batch_size=8)
        found |= {"doc_tokens": tokens, "chunk_tokens_s": tokens / chunked_s,
                  "truncated_tokens_s": len(docs) * (WINDOW - 2) / truncated_s}  # fmt: skip
    return found


def render(rows: list[dict[str, Any]], exports: dict[str, list[dict[str, float]]], weights: float) -> str:
    """The report: one row per variant, the long document, then each export's phases."""
    lines = [
        f"# A 0.6B-parameter model ({weights / 1e9:.2f} GB of float32 weights), both backends",
        "",
        f"Machine: {machine()} ({cpu_flags()}). Command: `python -m benchmarks.memory.big_model`. Random "
        "weights in Qwen3-Embedding-0.6B's shapes (accuracy is not measured: the cosine to the backend's "
        "fp32 instead). Sentences/s: STSb-test sentences in batches of 32, 2 threads; p50: one sentence per "
        "call. MB are 10^6 bytes.",
        "",
        "| backend | variant | MB | × fp32 size | sentences/s | one-sentence p50 ms | cosine to fp32 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['variant']} | {r['mb']:.0f} | {r['size_ratio']:.2f}× | "
            f"{r['per_s']:.1f} | {r['p50_ms']:.1f} | {r['cosine']:.4f} |"
        )
    long = [r for r in rows if "doc_tokens" in r]
    tokens = long[0]["doc_tokens"] if long else 0
    lines += ["", f"A document of {tokens:,} tokens (STSb sentences run together), "
              "embedded whole in windows of 512 (`long_texts=\"chunk\"`) or truncated to its first window, "
              "in tokens computed per second:", "",
              "| backend | variant | chunked tokens/s | truncated tokens/s |",
              "|---|---|---:|---:|"]  # fmt: skip
    for r in long:
        lines.append(
            f"| {r['backend']} | {r['variant']} | {r['chunk_tokens_s']:.0f} | {r['truncated_tokens_s']:.0f} |"
        )
    for backend, phases in exports.items():
        total, top = sum(p["s"] for p in phases), max(phases, key=lambda p: p["peak"])
        lines += ["", f"## Export to {backend}: {total / 60:.1f} min, peak RSS {top['peak'] / 1e3:.1f} GB = "
                  f"{top['peak'] / (weights / 1e6):.1f}× the weights ({top['phase']})", "",
                  "| phase | peak MB | × weights | seconds |", "|---|---:|---:|---:|"]  # fmt: skip
        for p in phases:
            lines.append(
                f"| {p['phase']} | {p['peak']:.0f} | {p['peak'] / (weights / 1e6):.1f}× | {p['s']:.0f} |"
            )
    return "\n".join([*lines, ""])


def main() -> None:
    """Build, export, measure, report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", default="onnx,openvino")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    from edgesbert.runtime.manifest import Manifest

    BUILD.mkdir(parents=True, exist_ok=True)
    model = build_model(BUILD / "qwen3-0.6b-random")
    weights = float(weight_bytes(model))
    first, second, _ = stsb_test()
    unique = unique_texts(first, second)
    texts, docs = unique[: args.texts], documents(unique, 1, 7_500)  # 14,123 tokens with this tokenizer
    rows, exports = [], {}
    for backend in args.backends.split(","):
        folder, exports[backend] = export(model, backend)
        manifest = Manifest.load(folder)
        fp32 = None
        for variant in manifest.variants:
            log(f"measuring {backend} {variant.name}")
            long = docs if variant.name == manifest.default_variant else []
            found = measure(folder, variant.name, texts, long, args.threads)
            vectors = np.array(found.pop("vectors"))
            fp32 = vectors if fp32 is None else fp32
            mb, fp32_mb = (graph_mb(folder / v.file) for v in (variant, manifest.variants[0]))
            cosine = float((vectors * fp32).sum(axis=1).mean())
            rows.append({"backend": backend, "variant": variant.name, "mb": mb, "size_ratio": mb / fp32_mb,
                         "cosine": cosine, **found})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    report = render(rows, exports, weights)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / f"big-model-{cpu_kind()}.md").write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
