"""Speed and fidelity of every ONNX variant of a bi-encoder, against PyTorch and sentence-transformers.

    python -m benchmarks.onnx_variants [MODEL] [--exported FOLDER] [--variants fp32,O2-int8]
                                       [--repeats 3] [--threads 2] [--batch-size 32] [--no-save]

Without ``--exported`` the model is first exported into a temp folder with ``optimize="O2"`` and
``quantize=["int8", "int8-static", "fp16"]`` (variants fp32, O2, O2-int8, int8-static, O2-fp16).
Every variant, the edgesbert PyTorch reference and sentence-transformers embed every unique STSb-test
sentence; the repetitions are interleaved across systems. Prints a markdown table and writes it to
benchmarks/results/onnx-variants.md, with a bar plot onnx-variants.png when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import machine, sts_spearman, stsb_test
from edgesbert import DEFAULT_MODEL
from edgesbert.errors import ValidationFailedError
from edgesbert.exporters import Tolerance, export_model
from edgesbert.reference import BiEncoder
from edgesbert.runtime import load
from edgesbert.runtime.manifest import Manifest

RESULTS = Path(__file__).resolve().parent / "results"
OPTIMIZE = "O2"
QUANTIZE = ["int8", "int8-static", "fp16"]
#: Used only if the default tolerance rejects the static int8 variant (its activation ranges are coarse).
LOOSE = Tolerance(max_spearman_drop=0.03, min_mean_cosine=0.85)
RUNTIME = "edgesbert (onnxruntime)"
REFERENCE = "edgesbert reference (torch)"
ST_TORCH = "sentence-transformers (torch)"
ST_ONNX = "sentence-transformers (onnx)"


@dataclass
class System:
    """One encoder under test and what was measured on it."""

    name: str
    variant: str
    encode: Callable[[list[str]], np.ndarray]
    megabytes: float
    speeds: list[float] = field(default_factory=list)
    vectors: np.ndarray | None = None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def export(model: str, folder: Path, notes: list[str]) -> None:
    """Export all variants; retry with a looser tolerance only if the static int8 variant fails it."""
    try:
        export_model(model, folder, optimize=OPTIMIZE, quantize=QUANTIZE)
    except ValidationFailedError as e:
        if "int8-static" not in str(e):
            raise
        log(f"{e}\nretrying with {LOOSE}")
        export_model(model, folder, optimize=OPTIMIZE, quantize=QUANTIZE, tolerance=LOOSE)
        notes.append(f"int8-static failed the default validation tolerance and was exported with {LOOSE}.")


def weights_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*.safetensors")) / 1e6


def runtime_systems(folder: Path, names: list[str] | None, threads: int, batch: int) -> list[System]:
    manifest = Manifest.load(folder)
    known = [v.name for v in manifest.variants if v.backend == "onnxruntime"]
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise SystemExit(f"{folder} has no variant {', '.join(unknown)}; it has {', '.join(known)}")
    systems = []
    for variant in manifest.variants:
        if variant.name in known and (names is None or variant.name in names):
            model = load(folder, variant=variant.name, threads=threads)
            size = (folder / variant.file).stat().st_size / 1e6
            systems.append(System(RUNTIME, variant.name, _batched(model.encode, batch), size))
    return systems


def _batched(encode: Callable[..., np.ndarray], batch: int) -> Callable[[list[str]], np.ndarray]:
    return lambda texts: np.asarray(encode(texts, batch_size=batch))


def st_onnx_systems(
    st_folder: Path, exported: Path, threads: int, batch: int, notes: list[str]
) -> list[System]:
    """sentence-transformers' own ONNX backend on our graphs, if it loads them offline."""
    if importlib.util.find_spec("optimum") is None:
        notes.append(
            'sentence-transformers\' ONNX backend (`backend="onnx"`) was skipped: it needs '
            "`optimum[onnxruntime]`, which is not installed."
        )
        return []
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer

    manifest = Manifest.load(exported)
    int8 = [v for v in manifest.variants if v.recipe.get("quantize") == "int8-dynamic"]
    files = {"fp32": ("model.onnx", "model.onnx")}
    if int8:
        files["int8"] = (int8[0].file, "model_qint8_avx2.onnx")
    copy = Path(tempfile.mkdtemp()) / "st"
    shutil.copytree(st_folder, copy)
    (copy / "onnx").mkdir()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    systems = []
    for label, (source, target) in files.items():
        shutil.copy(exported / source, copy / "onnx" / target)
        try:
            st = SentenceTransformer(
                str(copy),
                device="cpu",
                backend="onnx",
                local_files_only=True,
                model_kwargs={"file_name": f"onnx/{target}", "session_options": options},
            )
            st.encode(["A probe.", "Another probe sentence."])
        except Exception as e:  # whatever the backend raises: report it, measure the rest
            notes.append(f"sentence-transformers' ONNX backend could not run our {label} graph: {e!r:.300}")
            continue
        encode = lambda texts, st=st: st.encode(texts, batch_size=batch, show_progress_bar=False)  # noqa: E731
        systems.append(System(ST_ONNX, label, encode, (copy / "onnx" / target).stat().st_size / 1e6))
    return systems


def measure(systems: list[System], texts: list[str], repeats: int, batch: int) -> None:
    """Time every system ``repeats`` times over all of ``texts``, finely interleaved.

    ``texts`` come sorted longest first, so a chunk of whole batches is encoded in exactly the batches a
    single call on all texts would use. Each round runs every system on one chunk before moving to the
    next (rotating the order of systems each round), so a burst of load from other processes slows all
    systems alike instead of whichever happened to be running.
    """
    chunk = batch * 10
    for system in systems:
        system.encode(texts[:batch])  # warm-up: graph loading, allocations, thread pools
    for round_ in range(repeats):
        shift = round_ % len(systems)
        order = systems[shift:] + systems[:shift]
        seconds = dict.fromkeys(map(id, order), 0.0)
        parts: dict[int, list[np.ndarray]] = {id(s): [] for s in order}
        for begin in range(0, len(texts), chunk):
            for system in order:
                start = time.perf_counter()
                parts[id(system)].append(system.encode(texts[begin : begin + chunk]))
                seconds[id(system)] += time.perf_counter() - start
        for system in order:
            system.speeds.append(len(texts) / seconds[id(system)])
            if system.vectors is None:
                system.vectors = np.concatenate(parts[id(system)])
        speeds = ", ".join(f"{s.variant if s.name == RUNTIME else s.name}: {s.speeds[-1]:.0f}" for s in order)
        log(f"round {round_ + 1}/{repeats} (sentences/s) {speeds}")


def speedup(system: System, base: System | None) -> str:
    """Median over rounds of the ratio of throughputs measured in the same round."""
    if base is None:
        return "–"
    ratios = np.array(system.speeds) / np.array(base.speeds)
    return f"{np.median(ratios):.2f}×"


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def table(systems: list[System], reference: System, sts: tuple) -> list[str]:
    texts, first, second, gold = sts
    fp32 = next((s for s in systems if s.name == RUNTIME and s.variant == "fp32"), None)
    st_torch = next((s for s in systems if s.name == ST_TORCH), None)
    rows = [
        "| system | variant | sent/s | vs edgesbert fp32 | vs sentence-transformers torch "
        "| STSb-test Spearman | mean cosine to reference | MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    assert reference.vectors is not None
    expected = unit(reference.vectors)
    for s in systems:
        assert s.vectors is not None
        rho = sts_spearman(s.vectors, texts, first, second, gold)
        cosine = float((unit(s.vectors) * expected).sum(axis=1).mean())
        rows.append(
            f"| {s.name} | {s.variant} | {np.median(s.speeds):.0f} | {speedup(s, fp32)} "
            f"| {speedup(s, st_torch)} | {rho:.4f} | {cosine:.5f} | {s.megabytes:.1f} |"
        )
    return rows


def plot(systems: list[System], path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    colors = {RUNTIME: "tab:blue", REFERENCE: "tab:orange", ST_TORCH: "tab:red", ST_ONNX: "tab:purple"}
    labels = [f"{s.name}\n{s.variant}" for s in systems]
    medians = np.array([np.median(s.speeds) for s in systems])
    spread = np.array(
        [[m - min(s.speeds), max(s.speeds) - m] for s, m in zip(systems, medians, strict=True)]
    ).T
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(systems) + 1.5))
    y = np.arange(len(systems))[::-1]
    ax.barh(y, medians, xerr=spread, color=[colors[s.name] for s in systems], capsize=3)
    for yi, m, s in zip(y, medians, systems, strict=True):
        ax.text(max(s.speeds), yi, f"  {m:.0f}", va="center", ha="left", fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("sentences per second (median, bars: min–max of rounds)")
    ax.set_title(title, fontsize=9)
    ax.set_xlim(0, max(max(s.speeds) for s in systems) * 1.15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL)
    parser.add_argument("--exported", type=Path, help="an exported folder (default: export to a temp dir)")
    parser.add_argument("--variants", help="comma-separated variants to measure (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per system (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-save", action="store_true", help="print the table only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    began = time.perf_counter()

    first, second, gold = stsb_test()
    texts = sorted(dict.fromkeys(first + second), key=len, reverse=True)  # as encode() orders them
    notes: list[str] = []
    folder = args.exported or Path(tempfile.mkdtemp()) / "model"
    if args.exported is None:
        log(f"exporting {args.model} to {folder}")
        export(args.model, folder, notes)
    names = args.variants.split(",") if args.variants else None

    batch = args.batch_size
    reference_model = BiEncoder(args.model)
    reference = System(
        REFERENCE, "fp32", _batched(reference_model.encode, batch), weights_mb(reference_model.folder)
    )
    systems = runtime_systems(folder, names, args.threads, batch)
    systems.append(reference)
    try:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(reference_model.folder), device="cpu")
        encode = lambda t: st.encode(t, batch_size=batch, show_progress_bar=False)  # noqa: E731
        systems.append(System(ST_TORCH, "fp32", encode, weights_mb(reference_model.folder)))
        systems += st_onnx_systems(reference_model.folder, folder, args.threads, batch, notes)
    except ImportError:
        notes.append("sentence-transformers is not installed: its rows are missing.")

    measure(systems, texts, args.repeats, batch)
    rows = table(systems, reference, (texts, first, second, gold))
    setting = f"{args.threads} threads, batch {batch}, {len(texts)} unique STSb-test sentences"
    report = "\n".join(
        [
            f"# ONNX variants: {args.model}",
            "",
            f"Machine: {machine()}; {setting}.",
            "",
            *rows,
        ]
    )
    print(report)
    for note in notes:
        print(f"note: {note}")
    log(f"took {time.perf_counter() - began:.0f} s")
    if args.no_save:
        return
    method = (
        f"Method: `python -m benchmarks.onnx_variants`. The model is exported once with "
        f'`optimize="{OPTIMIZE}", quantize={QUANTIZE}` (int8 preset detected from the CPU; the static '
        "variant is calibrated on the built-in text and quantizes the fp32 graph, as onnxruntime's static "
        "quantizer cannot take fused attention). Each system embeds every unique STSb-test sentence "
        f"{args.repeats} times, longest first in batches of {batch}. The systems are interleaved: each "
        f"round walks the sentences in chunks of {batch * 10}, and every system (in an order rotated "
        "each round) encodes a chunk before the next chunk, so load from other processes hits all systems "
        "alike; the chunks are whole batches of the length-sorted list, so they are exactly the batches "
        "of one call on all sentences. One warm-up batch per system precedes the first round. "
        "sent/s is the median of the rounds; a "
        "speed-up is the median over rounds of the ratio of two systems' throughputs in the same round. "
        "Spearman is the STSb-test Spearman of cosine similarity against the gold scores; mean cosine "
        "compares each sentence's embedding with the edgesbert PyTorch reference's. MB is the graph file "
        "(or the safetensors weights for torch). The edgesbert rows run through the runtime "
        "(`load(folder, variant=NAME, threads=N)`); torch runs with `torch.set_num_threads(N)`."
    )
    RESULTS.mkdir(exist_ok=True)
    notes_md = [f"- {note}" for note in notes]
    (RESULTS / "onnx-variants.md").write_text(
        "\n".join([report, "", method, *(["", *notes_md] if notes_md else [])]) + "\n"
    )
    if plot(systems, RESULTS / "onnx-variants.png", f"{args.model}\n{machine()}; {setting}"):
        log(f"wrote {RESULTS / 'onnx-variants.md'} and onnx-variants.png")
    else:
        log(f"wrote {RESULTS / 'onnx-variants.md'} (no plot: matplotlib is not installed)")


if __name__ == "__main__":
    main()
