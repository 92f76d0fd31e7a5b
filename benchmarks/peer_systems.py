"""The peer systems of benchmarks/peers.py: what each one loads, and how its export is built and cached.

Standard library and numpy at import time, each tool imported by the system that uses it, so that it runs
in ``.venv-peers`` (``make peers-venv``) as well as in the project's environment (benchmarks/suite_worker.py
loads the peers through it). Exported peer models are cached
under build/peers, one folder per model keyed by its weights and the tools' versions; an export is built
in a temp folder beside its target and moved into place.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "peers"
STSB_DEV = ROOT / "exporters" / "data" / "stsb-en-dev.csv"
PACKAGES = ["torch", "transformers", "sentence-transformers", "optimum", "optimum-onnx", "optimum-intel"]
PACKAGES += ["onnxruntime", "openvino", "nncf", "fastembed", "datasets"]
ST = "sentence_transformers"
ST_ONNX = "onnx/model.onnx"  # where sentence-transformers saves its exports
ST_OV = "openvino/openvino_model.xml"

Build = Callable[[argparse.Namespace, str, Path], None]  # (args, system name, temp folder)
Backend = Literal["torch", "onnx", "openvino", "fastembed"]  # sentence-transformers' backends, or fastembed


@dataclass(frozen=True)
class System:
    """One peer: how to load it and, for exported ones, which cached folder and file it runs."""

    kind: str  # "bi-encoder" or "cross-encoder"
    backend: Backend
    modules: tuple[str, ...]  # imported (and timed) before loading
    folder: str | None = None  # under the model's cache folder; None: the model folder itself
    file: str | None = None  # the graph it runs, inside ``folder``
    build: Build | None = None  # writes ``folder`` (into a temp folder)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- data and cache ------------------------------------------------------------------------------


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """The first two columns of every row of a CSV (STSb: sentence1, sentence2, score)."""
    with path.open(encoding="utf-8", newline="") as f:
        return [(row[0], row[1]) for row in csv.reader(f) if len(row) >= 2]


def unique_texts(pairs: list[tuple[str, str]]) -> list[str]:
    """Unique sentences of both columns, longest first (as the project's benchmarks order them)."""
    return sorted(dict.fromkeys([a for a, _ in pairs] + [b for _, b in pairs]), key=len, reverse=True)


def model_cache(args: argparse.Namespace) -> Path:
    """This model's cache folder: named after the folder, keyed by its weights and the tools' versions."""
    return _model_cache(str(Path(args.model).resolve()), args.cache)


@functools.cache
def _model_cache(model: str, cache: str) -> Path:
    folder = Path(model)
    key = hashlib.sha1(json.dumps(versions(), sort_keys=True).encode())
    for file in [
        folder / "config.json",
        *sorted(folder.glob("*.safetensors")),
        *sorted(folder.glob("*.bin")),
    ]:
        if file.is_file():  # size, first and last MiB: cheap, and unchanged by a reinstall
            with file.open("rb") as f:
                key.update(f"{file.name}:{file.stat().st_size}".encode() + f.read(1 << 20))
                f.seek(max(0, file.stat().st_size - (1 << 20)))
                key.update(f.read())
    name = folder.parent.name if folder.name == "model" else folder.name
    return Path(cache) / f"{name}-{key.hexdigest()[:8]}"


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Build ``target`` in a temp folder beside it and move it in place: never a half-written folder."""
    if target.exists():
        return target
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(temp, ignore_errors=True)
    temp.parent.mkdir(parents=True, exist_ok=True)
    try:
        build(temp)
        os.replace(temp, target)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target


def exported(args: argparse.Namespace, name: str) -> Path:
    """The folder system ``name`` runs, exported on first use."""
    system = SYSTEMS[name]
    if system.folder is None or system.build is None:
        return Path(args.model)
    build = system.build
    return build_once(model_cache(args) / system.folder, lambda temp: build(args, name, temp))


def is_cached(args: argparse.Namespace) -> bool:
    system = SYSTEMS[args.system]
    if system.backend == "fastembed":
        return bool(args.onnx) or (model_cache(args) / "st-onnx" / "onnx" / "model.onnx").exists()
    return system.folder is None or (model_cache(args) / system.folder).exists()


def megabytes(model_file: Path) -> float:
    files = [model_file, model_file.with_suffix(".bin")] if model_file.suffix == ".xml" else [model_file]
    files += model_file.parent.glob(f"{model_file.name}_data*")  # onnx external data
    return sum(p.stat().st_size for p in files if p.is_file()) / 1e6


# --- sentence-transformers -----------------------------------------------------------------------


def st_model(args: argparse.Namespace, name: str, folder: Path, **model_kwargs: Any) -> Any:
    """System ``name``'s sentence-transformers model (``backend`` from it) loaded from ``folder``."""
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer

    system = SYSTEMS[name]
    torch.set_num_threads(args.threads)  # the torch backend, and pooling/normalizing after the others
    cls = CrossEncoder if system.kind == "cross-encoder" else SentenceTransformer
    backend = system.backend
    if backend == "fastembed":
        raise ValueError(f"{name} runs on fastembed, not sentence-transformers")
    # str(): sentence-transformers 5.7 fails on a Path after loading; model_kwargs=None is its default
    return cls(
        str(folder), device="cpu", backend=backend, local_files_only=True, model_kwargs=model_kwargs or None
    )


def backend_kwargs(args: argparse.Namespace, backend: str, file: str) -> dict[str, Any]:
    """Thread settings as each backend takes them; the rest stays at the tool's defaults."""
    if backend == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        return {"file_name": file, "session_options": options, "provider": "CPUExecutionProvider"}
    # optimum-intel's default performance hint (LATENCY) is kept
    return {"file_name": file, "ov_config": {"INFERENCE_NUM_THREADS": args.threads}}


def export_st(args: argparse.Namespace, name: str, temp: Path) -> None:
    """sentence-transformers exports a folder that has no graph itself; save what it made."""
    st_model(args, name, Path(args.model)).save_pretrained(str(temp))


def copy_model_files(source: Path, target: Path) -> None:
    """The sentence-transformers folder without its graphs (an int8 folder holds only its own graph)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("onnx", "openvino"), dirs_exist_ok=True)


def export_st_onnx_int8(args: argparse.Namespace, name: str, temp: Path) -> None:
    """sentence-transformers' dynamic int8 with its avx2 preset (this machine has AVX2, no VNNI)."""
    from sentence_transformers import export_dynamic_quantized_onnx_model

    source = exported(args, "st-onnx")
    fp32 = st_model(args, "st-onnx", source, file_name=ST_ONNX)
    export_dynamic_quantized_onnx_model(fp32, "avx2", str(temp))
    copy_model_files(source, temp)


def calibration_dataset(args: argparse.Namespace) -> Path:
    """A local `datasets` folder (train.csv, column "sentence"): the unique sentences of ``--calibration``.

    export_static_quantized_openvino_model otherwise loads glue/sst2 from the Hub, which fails offline.
    """
    source = Path(args.calibration).resolve()
    digest = hashlib.sha1(source.read_bytes()).hexdigest()[:8]

    def build(temp: Path) -> None:
        temp.mkdir(parents=True)
        with (temp / "train.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["sentence"])
            writer.writerows([s] for s in dict.fromkeys(s for pair in read_pairs(source) for s in pair))

    return build_once(Path(args.cache) / "calibration" / f"{source.stem}-{digest}", build)


def export_st_openvino_int8(args: argparse.Namespace, name: str, temp: Path) -> None:
    """sentence-transformers' static int8 (NNCF) with the default OVQuantizationConfig, calibrated on
    ``--calibration`` (STSb-dev) instead of the Hub's glue/sst2."""
    from optimum.intel import OVQuantizationConfig
    from sentence_transformers import export_static_quantized_openvino_model

    source = exported(args, "st-openvino")
    data = calibration_dataset(args)
    fp32 = st_model(args, "st-openvino", source, file_name=ST_OV)
    config = OVQuantizationConfig()
    log(f"calibrating on {data} with {config!r}")
    export_static_quantized_openvino_model(
        fp32, config, str(temp), dataset_name=str(data), dataset_config_name="default",
        dataset_split="train", column_name="sentence",
    )  # fmt: skip
    copy_model_files(source, temp)


def load_st(args: argparse.Namespace) -> tuple[Callable[[list[Any]], Any], Any, Path]:
    """``run(inputs)``, the model and the file it runs, for every sentence-transformers system."""
    system = SYSTEMS[args.system]
    folder = exported(args, args.system)
    if system.file is None:
        model = st_model(args, args.system, folder)
        weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
        model_file = weights[0] if weights else folder
    else:
        model = st_model(args, args.system, folder, **backend_kwargs(args, system.backend, system.file))
        model_file = folder / system.file
    if system.kind == "cross-encoder":
        predict = lambda pairs: model.predict(pairs, batch_size=args.batch_size, show_progress_bar=False)  # noqa: E731
        return predict, model, model_file
    encode = lambda texts: model.encode(texts, batch_size=args.batch_size, show_progress_bar=False)  # noqa: E731
    return encode, model, model_file


# --- fastembed -----------------------------------------------------------------------------------


def graph_output_rank(onnx_file: Path) -> int:
    """Rank of the graph's first output, read in a child process (the parent's peak RSS stays clean)."""
    code = "import onnx, sys; g = onnx.load(sys.argv[1], load_external_data=False).graph; "
    code += "print(len(g.output[0].type.tensor_type.shape.dim))"
    result = subprocess.run([sys.executable, "-c", code, str(onnx_file)], check=True, capture_output=True)
    return int(result.stdout)


def load_fastembed(args: argparse.Namespace) -> tuple[Callable[[list[Any]], Any], Any, Path]:
    """fastembed's TextEmbedding on ``--onnx`` (default: the fp32 graph st-onnx runs), as a custom model."""
    onnx_file = Path(args.onnx).resolve() if args.onnx else exported(args, "st-onnx") / "onnx" / "model.onnx"
    model = fastembed_model(args, onnx_file, pooled=graph_output_rank(onnx_file) == 2)
    return lambda texts: np.stack(list(model.embed(texts, batch_size=args.batch_size))), model, onnx_file


def fastembed_model(args: argparse.Namespace, onnx_file: Path, pooled: bool) -> Any:
    """fastembed's TextEmbedding on ``onnx_file``; ``pooled``: the graph's output is (batch, dim) already.

    Takes ``pooled`` from the caller so that a timed process (benchmarks/suite_worker.py) spawns no child.
    """
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    config = json.loads((Path(args.model) / "config.json").read_text(encoding="utf-8"))
    name = f"peers/{onnx_file.stem}-{hashlib.sha1(str(onnx_file).encode()).hexdigest()[:8]}"
    TextEmbedding.add_custom_model(
        model=name,
        pooling=PoolingType.DISABLED if pooled else PoolingType.MEAN,
        normalization=True,  # all-MiniLM-L6-v2: mean pooling, then L2 normalization
        sources=ModelSource(hf="peers/local"),  # never fetched: specific_model_path wins
        dim=int(config["hidden_size"]),
        model_file=str(onnx_file),  # absolute: fastembed joins it to the tokenizer folder below
    )
    return TextEmbedding(
        name, threads=args.threads, providers=["CPUExecutionProvider"], specific_model_path=str(args.model),
        local_files_only=True,
    )  # fmt: skip


ORT, OV = (ST, "optimum.onnxruntime"), (ST, "optimum.intel")
SYSTEMS: dict[str, System] = {
    "st-torch": System("bi-encoder", "torch", (ST,)),
    "st-onnx": System("bi-encoder", "onnx", ORT, "st-onnx", ST_ONNX, export_st),
    # the file names export_dynamic_quantized_onnx_model / export_static_quantized_openvino_model write
    "st-onnx-int8": System(
        "bi-encoder", "onnx", ORT, "st-onnx-int8", "onnx/model_quint8_avx2.onnx", export_st_onnx_int8
    ),
    "st-openvino": System("bi-encoder", "openvino", OV, "st-openvino", ST_OV, export_st),
    "st-openvino-int8": System(
        "bi-encoder",
        "openvino",
        OV,
        "st-openvino-int8",
        "openvino/openvino_model_qint8_quantized.xml",
        export_st_openvino_int8,
    ),
    "fastembed": System("bi-encoder", "fastembed", ("fastembed",)),
    "st-cross-torch": System("cross-encoder", "torch", (ST,)),
    "st-cross-onnx": System("cross-encoder", "onnx", ORT, "cross-onnx", ST_ONNX, export_st),
    "st-cross-openvino": System("cross-encoder", "openvino", OV, "cross-openvino", ST_OV, export_st),
}

NOTES = {
    "st-onnx-int8": "export_dynamic_quantized_onnx_model(model, 'avx2'): dynamic int8, uint8 weights",
    "st-openvino-int8": (
        "export_static_quantized_openvino_model with the default OVQuantizationConfig (num_samples=None: "
        "NNCF's default subset of 128), calibrated on the unique sentences of {calibration} as a local "
        "dataset instead of the Hub's glue/sst2; sentence-transformers pads them to 384 tokens"
    ),
    "fastembed": (
        "TextEmbedding.add_custom_model + specific_model_path: tokenizer files from --model, mean pooling "
        "(none if the graph's output is already pooled), L2-normalized"
    ),
}


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec.

    Not ``ru_maxrss``: Linux carries the spawning process's peak into it across fork and exec, so a
    peer started from a large benchmark process would report that process's memory.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def versions(packages: Sequence[str] = PACKAGES) -> dict[str, str]:
    """The installed versions of ``packages`` (the peer tools by default), leaving out missing ones."""
    found = {}
    for package in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found
