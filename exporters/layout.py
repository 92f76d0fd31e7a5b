"""Where things go in an export folder: the names the other runtimes look for (issue 16).

edgesbert reads the manifest, so any name would do for it; sentence-transformers, TEI, transformers.js,
fastembed and OpenVINO GenAI look for fixed names instead. Graphs go under ``onnx/`` and ``openvino/`` by
their conventions, one file per variant, and the source model's sentence-transformers modules, configs and
tokenizer files are copied beside them (never its PyTorch weights: the graphs replace them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ONNX_FOLDER = "onnx"
OPENVINO_FOLDER = "openvino"

#: Graph outputs: token embeddings first (what transformers.js, fastembed, sentence-transformers' ONNX
#: backend and OpenVINO GenAI read), then in ONNX graphs the pooled embedding (manifest.SENTENCE_OUTPUT: TEI
#: and edgesbert read it); a classifier's logits.
TOKEN_OUTPUT = "last_hidden_state"
LOGITS_OUTPUT = "logits"

#: Files of a Hugging Face / sentence-transformers folder that describe the model without its weights.
DESCRIPTION_FILES = (
    "README.md",
    "config.json",
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def onnx_file(stem: str) -> str:
    """Where an ONNX graph goes: ``onnx/<stem>.onnx``.

    Stems: ``model`` (fp32), ``model_O2``, ``model_qint8_avx512_vnni`` (dynamic int8, as
    sentence-transformers names it), ``model_quantized`` (static int8: transformers.js' ``q8``),
    ``model_fp16``.
    """
    return f"{ONNX_FOLDER}/{stem}.onnx"


def openvino_file(stem: str) -> str:
    """Where an OpenVINO IR goes: ``openvino/<stem>.xml`` (and its ``.bin``).

    Stems: ``openvino_model``, ``openvino_model_qint8_quantized`` (NNCF int8, as sentence-transformers names
    it), ``openvino_model_int8_weights``, ``openvino_model_fp16``.
    """
    return f"{OPENVINO_FOLDER}/{stem}.xml"


def copy_description(source: Path, folder: Path) -> None:
    """Copy what describes ``source`` into ``folder``.

    That is its configs, tokenizer files and sentence-transformers modules (Pooling, Dense, Normalize, ...),
    not the transformer's weights; ``tokenizer.json`` is not copied: the exporter writes its own.
    """
    for name in DESCRIPTION_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, folder / name)
    modules = source / "modules.json"
    for module in json.loads(modules.read_text("utf-8")) if modules.is_file() else []:
        path = module.get("path") or ""
        if path and not str(module.get("type", "")).endswith("Transformer") and (source / path).is_dir():
            shutil.copytree(source / path, folder / path, dirs_exist_ok=True)
