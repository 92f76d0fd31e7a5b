"""Shared fixtures: tiny random models built offline, and their exported folders.

Heavy imports stay inside the fixtures, so collecting a test that needs none of them stays light.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Run by `make runtime-only` in an environment without torch, not by the main test run.
collect_ignore = ["runtime_only"]

#: name -> keyword arguments of the tiny bi-encoders the tests share.
BI_ENCODERS = {
    "bert-mean": {"architecture": "bert", "pooling": "mean", "normalize": True},
    "distilbert-cls-dense": {
        "architecture": "distilbert",
        "pooling": "cls",
        "normalize": False,
        "dense_out": 16,
    },
    "bert-max-st6": {"architecture": "bert", "pooling": "max", "normalize": True, "layout": "st6"},
    "bert-lasttoken": {"architecture": "bert", "pooling": "lasttoken", "normalize": False},
    "bert-sqrt-prompts": {
        "architecture": "bert",
        "pooling": "mean_sqrt_len_tokens",
        "normalize": False,
        "prompts": {"query": "query: ", "passage": "passage: "},
        "default_prompt_name": "query",
        "similarity_fn_name": "dot",
    },
}
#: name -> keyword arguments of the tiny cross-encoders the tests share.
CROSS_ENCODERS = {
    "bert-1": {"architecture": "bert", "num_labels": 1},
    "distilbert-3": {"architecture": "distilbert", "num_labels": 3},
}


@pytest.fixture(scope="session")
def tiny_bi_encoder_folder(tmp_path_factory: pytest.TempPathFactory):
    """Build (once per session) the tiny bi-encoder called ``name``; returns its folder."""
    from tests.tiny_models import build_bi_encoder

    built: dict[str, Path] = {}

    def get(name: str = "bert-mean") -> Path:
        if name not in built:
            folder = tmp_path_factory.mktemp(f"bi-{name}")
            built[name] = build_bi_encoder(folder, **BI_ENCODERS[name])
        return built[name]

    return get


@pytest.fixture(scope="session")
def tiny_cross_encoder_folder(tmp_path_factory: pytest.TempPathFactory):
    """Build (once per session) the tiny cross-encoder called ``name``; returns its folder."""
    from tests.tiny_models import build_cross_encoder

    built: dict[str, Path] = {}

    def get(name: str = "bert-1") -> Path:
        if name not in built:
            folder = tmp_path_factory.mktemp(f"ce-{name}")
            built[name] = build_cross_encoder(folder, **CROSS_ENCODERS[name])
        return built[name]

    return get


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_bi_encoder_folder, tiny_cross_encoder_folder):
    """Export (once per session) the tiny model called ``name``; returns the exported folder."""
    from edgesbert.exporters import export_model

    done: dict[str, Path] = {}

    def get(name: str = "bert-mean", kind: str = "bi-encoder") -> Path:
        key = f"{kind}:{name}"
        if key not in done:
            source = tiny_bi_encoder_folder(name) if kind == "bi-encoder" else tiny_cross_encoder_folder(name)
            output = tmp_path_factory.mktemp("exported") / name
            export_model(source, output, kind=kind, validation_size=64)
            done[key] = output
        return done[key]

    return get


@pytest.fixture(scope="session")
def default_openvino_int8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real default model exported as `make demo` does it (OpenVINO, int8, default tolerances), once."""
    from edgesbert import DEFAULT_MODEL
    from edgesbert.exporters import export_model
    from tests.threads import torch_threads

    folder = tmp_path_factory.mktemp("default-openvino-int8") / "all-MiniLM-L6-v2"
    with torch_threads(2):
        export_model(DEFAULT_MODEL, folder, backend="openvino", quantize=["int8"])
    return folder


@pytest.fixture(scope="session")
def stsb_sentences() -> list[str]:
    """Real sentences (STSb test, first 200 rows), with very short and very long ones."""
    import csv

    path = Path(__file__).resolve().parents[1] / "data" / "stsb-en-test.csv"
    with path.open(encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if len(row) == 3][:100]
    return [s for row in rows for s in row[:2]]
