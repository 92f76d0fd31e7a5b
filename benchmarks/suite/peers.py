"""The suite's peers: what each one loads, and how its export is built and cached.

Standard library and numpy at import time, each tool imported by the peer that uses it, so that it runs in
``.venv-peers`` (``make peers-venv``: the peer tools need transformers<4.58) as well as in the project's
environment; the suite's worker (benchmarks.suite.worker) loads and times the peers through it. Exported
peer models are cached under build/peers, one folder per model keyed by its files and the tools' versions;
an export is built in a temp folder beside its target and moved into place. How each peer is set up:

- ``st-onnx-int8``: ``export_dynamic_quantized_onnx_model(model, "avx2")``: dynamic int8, uint8 weights;
- ``st-openvino-int8``: ``export_static_quantized_openvino_model`` with the default OVQuantizationConfig
  (NNCF's default subset of 128), calibrated on the unique sentences of STSb-dev as a local dataset instead
  of the Hub's glue/sst2 (sentence-transformers pads them to 384 tokens);
- ``fastembed``: ``TextEmbedding.add_custom_model`` + ``specific_model_path``: the tokenizer files of the
  model folder, mean pooling (none if the graph's output is pooled already), L2-normalized.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmarks.common.cache import build_once, model_digest, model_name
from benchmarks.common.paths import ROOT
from benchmarks.common.timing import log, versions

CACHE = ROOT / "build" / "peers"
STSB_DEV = ROOT / "exporters" / "data" / "stsb-en-dev.csv"
PACKAGES = ["torch", "transformers", "sentence-transformers", "optimum", "optimum-onnx", "optimum-intel"]
PACKAGES += ["onnxruntime", "openvino", "nncf", "fastembed", "datasets"]
ST = "sentence_transformers"
ST_ONNX = "onnx/model.onnx"  # where sentence-transformers saves its exports
ST_OV = "openvino/openvino_model.xml"

Backend = Literal["torch", "onnx", "openvino", "fastembed"]  # sentence-transformers' backends, or fastembed


@dataclass(frozen=True)
class Options:
    """What a peer is loaded with: the model folder, the threads, and where its exports are cached."""

    model: str  # the sentence-transformers folder
    threads: int = 2
    onnx: str | None = None  # fastembed: the graph it runs (default: st-onnx's)
    calibration: str = str(STSB_DEV)  # st-openvino-int8's calibration CSV
    cache: str = str(CACHE)  # folder of exported peer models


Build = Callable[[Options, str, Path], None]  # (options, peer name, temp folder)


@dataclass(frozen=True)
class Peer:
    """One peer: how to load it and, for exported ones, which cached folder and file it runs."""

    kind: str  # "bi-encoder" or "cross-encoder"
    backend: Backend
    modules: tuple[str, ...]  # imported (and timed) before loading
    folder: str | None = None  # under the model's cache folder; None: the model folder itself
    file: str | None = None  # the graph it runs, inside ``folder``
    build: Build | None = None  # writes ``folder`` (into a temp folder)


# --- data and cache ------------------------------------------------------------------------------


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """The first two columns of every row of a CSV (STSb: sentence1, sentence2, score)."""
    with path.open(encoding="utf-8", newline="") as f:
        return [(row[0], row[1]) for row in csv.reader(f) if len(row) >= 2]


def model_cache(options: Options) -> Path:
    """This model's cache folder: named after the folder, keyed by its files and the tools' versions."""
    return _model_cache(str(Path(options.model).resolve()), options.cache)


@functools.cache
def _model_cache(model: str, cache: str) -> Path:
    key = json.dumps(versions(PACKAGES), sort_keys=True) + model_digest(Path(model))
    return Path(cache) / f"{model_name(Path(model))}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def exported(options: Options, name: str) -> Path:
    """The folder peer ``name`` runs, exported on first use."""
    peer = PEERS[name]
    if peer.folder is None or peer.build is None:
        return Path(options.model)
    build = peer.build
    return build_once(model_cache(options) / peer.folder, lambda temp: build(options, name, temp))


# --- sentence-transformers -----------------------------------------------------------------------


def st_model(options: Options, name: str, folder: Path, **model_kwargs: Any) -> Any:
    """Peer ``name``'s sentence-transformers model (``backend`` from it) loaded from ``folder``."""
    import torch
    from sentence_transformers import CrossEncoder, SentenceTransformer

    peer = PEERS[name]
    torch.set_num_threads(options.threads)  # the torch backend, and pooling/normalizing after the others
    cls = CrossEncoder if peer.kind == "cross-encoder" else SentenceTransformer
    backend = peer.backend
    if backend == "fastembed":
        raise ValueError(f"{name} runs on fastembed, not sentence-transformers")
    # str(): sentence-transformers 5.7 fails on a Path after loading; model_kwargs=None is its default
    return cls(
        str(folder), device="cpu", backend=backend, local_files_only=True, model_kwargs=model_kwargs or None
    )


def backend_kwargs(options: Options, backend: str, file: str) -> dict[str, Any]:
    """Thread settings as each backend takes them; the rest stays at the tool's defaults."""
    if backend == "onnx":
        import onnxruntime as ort

        session = ort.SessionOptions()
        session.intra_op_num_threads = options.threads
        session.inter_op_num_threads = 1
        return {"file_name": file, "session_options": session, "provider": "CPUExecutionProvider"}
    # optimum-intel's default performance hint (LATENCY) is kept
    return {"file_name": file, "ov_config": {"INFERENCE_NUM_THREADS": options.threads}}


def export_st(options: Options, name: str, temp: Path) -> None:
    """sentence-transformers exports a folder that has no graph itself; save what it made."""
    st_model(options, name, Path(options.model)).save_pretrained(str(temp))


def copy_model_files(source: Path, target: Path) -> None:
    """The sentence-transformers folder without its graphs (an int8 folder holds only its own graph)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("onnx", "openvino"), dirs_exist_ok=True)


def export_st_onnx_int8(options: Options, name: str, temp: Path) -> None:
    """sentence-transformers' dynamic int8 with its avx2 preset (this machine has AVX2, no VNNI)."""
    from sentence_transformers import export_dynamic_quantized_onnx_model

    source = exported(options, "st-onnx")
    fp32 = st_model(options, "st-onnx", source, file_name=ST_ONNX)
    export_dynamic_quantized_onnx_model(fp32, "avx2", str(temp))
    copy_model_files(source, temp)


def calibration_dataset(options: Options) -> Path:
    """A local `datasets` folder (train.csv, column "sentence"): the unique sentences of ``--calibration``.

    export_static_quantized_openvino_model otherwise loads glue/sst2 from the Hub, which fails offline.
    """
    source = Path(options.calibration).resolve()
    digest = hashlib.sha1(source.read_bytes()).hexdigest()[:8]

    def build(temp: Path) -> None:
        temp.mkdir(parents=True)
        with (temp / "train.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["sentence"])
            writer.writerows([s] for s in dict.fromkeys(s for pair in read_pairs(source) for s in pair))

    return build_once(Path(options.cache) / "calibration" / f"{source.stem}-{digest}", build)


def export_st_openvino_int8(options: Options, name: str, temp: Path) -> None:
    """sentence-transformers' static int8 (NNCF) with the default OVQuantizationConfig, calibrated on
    ``--calibration`` (STSb-dev) instead of the Hub's glue/sst2."""
    from optimum.intel import OVQuantizationConfig
    from sentence_transformers import export_static_quantized_openvino_model

    source = exported(options, "st-openvino")
    data = calibration_dataset(options)
    fp32 = st_model(options, "st-openvino", source, file_name=ST_OV)
    config = OVQuantizationConfig()
    log(f"calibrating on {data} with {config!r}")
    export_static_quantized_openvino_model(
        fp32, config, str(temp), dataset_name=str(data), dataset_config_name="default",
        dataset_split="train", column_name="sentence",
    )  # fmt: skip
    copy_model_files(source, temp)


# --- fastembed -----------------------------------------------------------------------------------


def graph_output_rank(onnx_file: Path) -> int:
    """Rank of the graph's first output, read in a child process (the parent's peak RSS stays clean)."""
    code = "import onnx, sys; g = onnx.load(sys.argv[1], load_external_data=False).graph; "
    code += "print(len(g.output[0].type.tensor_type.shape.dim))"
    result = subprocess.run([sys.executable, "-c", code, str(onnx_file)], check=True, capture_output=True)
    return int(result.stdout)


def fastembed_model(options: Options, onnx_file: Path, pooled: bool) -> Any:
    """fastembed's TextEmbedding on ``onnx_file``; ``pooled``: the graph's output is (batch, dim) already.

    Takes ``pooled`` from the caller so that a timed process (the suite's worker) spawns no child.
    """
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    config = json.loads((Path(options.model) / "config.json").read_text(encoding="utf-8"))
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
        name, threads=options.threads, providers=["CPUExecutionProvider"], specific_model_path=options.model,
        local_files_only=True,
    )  # fmt: skip


ORT, OV = (ST, "optimum.onnxruntime"), (ST, "optimum.intel")
PEERS: dict[str, Peer] = {
    "st-torch": Peer("bi-encoder", "torch", (ST,)),
    "st-onnx": Peer("bi-encoder", "onnx", ORT, "st-onnx", ST_ONNX, export_st),
    # the file names export_dynamic_quantized_onnx_model / export_static_quantized_openvino_model write
    "st-onnx-int8": Peer(
        "bi-encoder", "onnx", ORT, "st-onnx-int8", "onnx/model_quint8_avx2.onnx", export_st_onnx_int8
    ),
    "st-openvino": Peer("bi-encoder", "openvino", OV, "st-openvino", ST_OV, export_st),
    "st-openvino-int8": Peer(
        "bi-encoder",
        "openvino",
        OV,
        "st-openvino-int8",
        "openvino/openvino_model_qint8_quantized.xml",
        export_st_openvino_int8,
    ),
    "fastembed": Peer("bi-encoder", "fastembed", ("fastembed",)),
    "st-cross-torch": Peer("cross-encoder", "torch", (ST,)),
    "st-cross-onnx": Peer("cross-encoder", "onnx", ORT, "cross-onnx", ST_ONNX, export_st),
    "st-cross-openvino": Peer("cross-encoder", "openvino", OV, "cross-openvino", ST_OV, export_st),
}
