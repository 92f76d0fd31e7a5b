"""Dynamic int8 settings on this CPU: weight type × per-channel × reduce-range, measured through the runtime.

    python -m benchmarks.int8.presets [MODEL] [--exported FOLDER] [--repeats 3] [--threads 2]
                                      [--batch-size 32] [--no-save]

Exports the model once with ``optimize="O2"`` (fp32 graphs only), then quantizes the O2 graph with
onnxruntime's ``quantize_dynamic`` for each of QInt8/QUInt8 weights × per_channel × reduce_range, as
``exporters/onnx_quantize.py`` does, into scratch copies of the folder. The fp32 O2 graph and the eight
int8 graphs embed every unique STSb-test sentence in interleaved rounds (``benchmarks.common.interleaved``).
Writes benchmarks/results/int8-presets.md; backs the choice of the ``avx2`` preset.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from benchmarks.common import paths
from benchmarks.common.data import sts_spearman, stsb_test, unique_texts, unit
from benchmarks.common.interleaved import Encoder, arguments, measure, speedup
from benchmarks.common.machine import machine
from benchmarks.common.paths import RESULTS
from benchmarks.common.timing import log
from edgesbert.exporters import export_model
from edgesbert.exporters.onnx_quantize import INT8_PRESETS, detect_int8_preset
from edgesbert.resolve import resolve_model
from edgesbert.runtime import BiEncoder, load
from edgesbert.runtime.manifest import MANIFEST_FILE, Manifest

SOURCE = "O2"  # the variant quantized, as the exporter does with optimize="O2", quantize=["int8"]
WEIGHT_TYPES = {"QInt8": QuantType.QInt8, "QUInt8": QuantType.QUInt8}
FP32 = "O2 fp32"


@dataclass(frozen=True)
class Combination:
    weights: str
    per_channel: bool
    reduce_range: bool

    @property
    def label(self) -> str:
        granularity = "per-channel" if self.per_channel else "per-tensor"
        return f"{self.weights} {granularity}{' reduce-range' if self.reduce_range else ''}"

    def presets(self) -> list[str]:
        """The shipped presets that use this combination (they all quantize weights to QInt8)."""
        settings = (self.per_channel, self.reduce_range)
        return [
            p.name
            for p in INT8_PRESETS.values()
            if self.weights == "QInt8" and (p.per_channel, p.reduce_range) == settings
        ]


COMBINATIONS = [
    Combination(w, pc, rr) for w, pc, rr in itertools.product(WEIGHT_TYPES, (False, True), (False, True))
]


def quantized_copy(folder: Path, scratch: Path, combination: Combination) -> float:
    """A copy of ``folder`` whose O2 graph is quantized as ``combination`` says; returns the graph's MB.

    The manifest and tokenizer are copied as they are and the quantized graph takes the O2 graph's name,
    so the copy is loaded with ``verify=False`` (its checksum is the O2 graph's).
    """
    manifest = Manifest.load(folder)
    graph = manifest.variant(SOURCE).file
    scratch.mkdir(parents=True)
    shutil.copy(folder / MANIFEST_FILE, scratch)
    shutil.copy(folder / manifest.tokenizer.file, scratch)
    quantize_dynamic(
        folder / graph,
        scratch / graph,
        weight_type=WEIGHT_TYPES[combination.weights],
        per_channel=combination.per_channel,
        reduce_range=combination.reduce_range,
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return (scratch / graph).stat().st_size / 1e6


def runtime_system(folder: Path, label: str, megabytes: float, threads: int, batch: int) -> Encoder:
    model = load(folder, variant=SOURCE, threads=threads, verify=False)
    if not isinstance(model, BiEncoder):
        raise TypeError(f"{folder} holds a cross-encoder, not a bi-encoder")
    encode = lambda texts: np.asarray(model.encode(texts, batch_size=batch))  # noqa: E731
    return Encoder("edgesbert (onnxruntime)", label, encode, megabytes)


def table(
    systems: list[Encoder], combinations: dict[str, Combination], base: Encoder, sts: tuple
) -> tuple[list[str], dict[str, dict[str, float]]]:
    texts, first, second, gold = sts
    assert base.vectors is not None
    expected = unit(base.vectors)
    rows = [
        "| weights | per_channel | reduce_range | shipped preset | sent/s | vs O2 fp32 | STSb-test Spearman "
        "| mean cosine to fp32 | min cosine to fp32 | MB |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    figures = {}
    for s in systems:
        assert s.vectors is not None
        cosines = (unit(s.vectors) * expected).sum(axis=1)
        rho = sts_spearman(s.vectors, texts, first, second, gold)
        figures[s.variant] = {
            "speed": float(np.median(s.speeds)),
            "ratio": float(np.median(np.array(s.speeds) / np.array(base.speeds))),
            "spearman": rho,
            "mean": float(cosines.mean()),
            "min": float(cosines.min()),
        }
        c = combinations.get(s.variant)
        cells = [c.weights, str(c.per_channel), str(c.reduce_range)] if c else ["fp32", "–", "–"]
        preset = ", ".join(f"**{p}**" if p == "avx2" else p for p in c.presets()) if c else "–"
        rows.append(
            f"| {' | '.join(cells)} | {preset or '–'} | {figures[s.variant]['speed']:.0f} "
            f"| {speedup(s, base)} | {rho:.4f} | {cosines.mean():.5f} | {cosines.min():.4f} "
            f"| {s.megabytes:.1f} |"
        )
    return rows, figures


def verdict(
    figures: dict[str, dict[str, float]], combinations: dict[str, Combination], speeds: dict[str, list[float]]
) -> str:
    """Which combinations lead on accuracy and on speed, and where the shipped avx2 preset stands."""
    int8 = {label: figures[label] for label in combinations}
    avx2 = INT8_PRESETS["avx2"]
    shipped = Combination("QInt8", avx2.per_channel, avx2.reduce_range).label

    def leader(key: str, among: dict[str, dict[str, float]]) -> str:
        return max(among, key=lambda k: among[k][key])

    def median_ratio(weights: str) -> float:
        return float(np.median([int8[k]["ratio"] for k, c in combinations.items() if c.weights == weights]))

    # speed is compared by same-round ratios to fp32, which load from other processes shifts far less
    # than it shifts absolute sentences per second
    fastest = leader("ratio", int8)
    base = np.array(speeds[FP32])
    noise = float(
        np.median([np.ptp(r) / np.median(r) for k in int8 if len(r := np.array(speeds[k]) / base) > 1])
    )
    margin = max(0.05, noise)  # speed-ups closer than the round-to-round noise count as equal
    fast = {k: v for k, v in int8.items() if v["ratio"] >= (1 - margin) * int8[fastest]["ratio"]}
    leads = {key: leader(key, fast) for key in ("spearman", "min", "mean")}
    votes = Counter(leads.values())
    best = max(fast, key=lambda k: (votes[k], fast[k]["spearman"]))
    span = 1 - min(v["ratio"] for v in fast.values()) / int8[fastest]["ratio"]
    s = int8[shipped]
    per_tensor = [v["mean"] for k, v in int8.items() if not combinations[k].per_channel]
    per_channel = [v["mean"] for k, v in int8.items() if combinations[k].per_channel]
    tensor_note = (
        f"; every per-tensor combination (mean cosine at most {max(per_tensor):.5f}) is less faithful than "
        f"every per-channel one (at least {min(per_channel):.5f})"
        if max(per_tensor) < min(per_channel)
        else ""
    )
    best_note = (
        "it is the shipped avx2 preset" if best == shipped else f"the shipped avx2 preset is {shipped}"
    )
    return (
        f"Over all eight: highest mean cosine {leader('mean', int8)} "
        f"({int8[leader('mean', int8)]['mean']:.5f}), highest min cosine {leader('min', int8)} "
        f"({int8[leader('min', int8)]['min']:.4f}), highest Spearman {leader('spearman', int8)} "
        f"({int8[leader('spearman', int8)]['spearman']:.4f}); fastest {fastest} "
        f"({int8[fastest]['ratio']:.2f}× O2 fp32, {int8[fastest]['speed']:.0f} sent/s). QInt8 weights run "
        f"{median_ratio('QInt8'):.2f}× and QUInt8 weights {median_ratio('QUInt8'):.2f}× O2 fp32 (median "
        f"of their four combinations){tensor_note}. A combination's speed-up varies {noise:.0%} from "
        f"round to round (median over combinations), and {len(fast)} combinations run within "
        f"{margin:.0%} of the fastest speed-up (they span {span:.0%}); among "
        f"them {leads['spearman']} has the highest Spearman, {leads['min']} the highest min cosine and "
        f"{leads['mean']} the highest mean cosine. Best on accuracy and speed together here (most of those "
        f"three among the fast ones): {best}; {best_note} (Spearman {s['spearman']:.4f}, mean cosine "
        f"{s['mean']:.5f}, min {s['min']:.4f}, {s['speed']:.0f} sent/s, {s['ratio']:.2f}× O2 fp32)."
    )


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--exported", type=Path, help="an exported folder with an O2 variant to reuse")
    args = parser.parse_args()
    began = time.perf_counter()
    logging.getLogger().setLevel(logging.ERROR)  # quantize_dynamic's advice to pre-process, once per graph

    first, second, gold = stsb_test()
    texts = unique_texts(first, second)
    temp = paths.scratch("edgesbert-presets.")  # the export and the eight quantized copies
    folder = args.exported or temp / "model"
    if args.exported is None:
        log(f"exporting {args.model} to {folder}")
        export_model(resolve_model(args.model, allow_download=False), folder, optimize=SOURCE)
    batch = args.batch_size
    fp32_graph = folder / Manifest.load(folder).variant(SOURCE).file
    base = runtime_system(folder, FP32, fp32_graph.stat().st_size / 1e6, args.threads, batch)
    systems, combinations = [base], {}
    for i, combination in enumerate(COMBINATIONS):
        scratch = temp / f"int8-{i}"
        megabytes = quantized_copy(folder, scratch, combination)
        systems.append(runtime_system(scratch, combination.label, megabytes, args.threads, batch))
        combinations[combination.label] = combination
    log(f"quantized {len(COMBINATIONS)} graphs after {time.perf_counter() - began:.0f} s")

    measure(systems, texts, args.repeats, batch)
    rows, figures = table(systems, combinations, base, (texts, first, second, gold))
    setting = f"{args.threads} threads, batch {batch}, {len(texts)} unique STSb-test sentences"
    detected = detect_int8_preset().name
    report = "\n".join(
        [
            f"# Dynamic int8 settings: {args.model}",
            "",
            f"Machine: {machine()} (detected int8 preset: {detected}); {setting}.",
            "",
            *rows,
            "",
            verdict(figures, combinations, {s.variant: s.speeds for s in systems}),
        ]
    )
    print(report)
    log(f"took {time.perf_counter() - began:.0f} s")
    if args.no_save:
        return
    method = (
        "Method: `python -m benchmarks.int8.presets`. The model is exported once with "
        f'`export_model(..., optimize="{SOURCE}")`; its O2 fp32 graph is then quantized eight times with '
        "onnxruntime's `quantize_dynamic(weight_type=..., per_channel=..., reduce_range=..., "
        'extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})`, as '
        "`exporters/onnx_quantize.py` does (activations are always quantized to uint8 on the fly). Each "
        "graph sits in a scratch copy of the folder under the O2 graph's file name and runs through the "
        f'runtime (`load(copy, variant="{SOURCE}", threads={args.threads})`). Every system embeds every '
        f"unique STSb-test sentence {args.repeats} times, longest first in batches of {batch}, interleaved "
        "as in `benchmarks.common.interleaved` (chunks of ten batches, every system per chunk, order rotated "
        "each round, one warm-up batch each); sent/s is the median of the rounds, the speed-up the median "
        "of same-round ratios to the O2 fp32 graph. Cosines compare each sentence's int8 embedding with "
        "the O2 fp32 graph's. The closing sentence compares speed by speed-up (same-round ratios shift less "
        "with load from other processes than sent/s), counts combinations within the larger of 5% and the "
        "median round-to-round variation of a speed-up of the fastest as equally fast, and among those "
        "picks the one that leads most of Spearman, min cosine and mean cosine. **Bold**: the "
        "combination of the shipped `avx2` preset "
        '(`INT8_PRESETS["avx2"]`: QInt8 weights, per-channel, reduce-range); the shipped presets all use '
        "QInt8 weights."
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "int8-presets.md").write_text(report + "\n\n" + method + "\n")
    log(f"wrote {RESULTS / 'int8-presets.md'}")


if __name__ == "__main__":
    main()
