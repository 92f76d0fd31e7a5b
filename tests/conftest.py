"""Shared fixtures: tiny random models built offline, and their exported folders.

Heavy imports stay inside the fixtures, so collecting a test that needs none of them stays light.
"""

from __future__ import annotations

import gc
import shutil
import sys
from pathlib import Path

import pytest

# Run by `make runtime-only` in an environment without torch, not by the main test run.
collect_ignore = ["runtime_only"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="run the tests marked slow too: slower repeats of checks the default run makes (make test-slow)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The README test first (its `make demo` makes the export ``default_openvino_int8`` would repeat), and
    the tests marked slow skipped unless ``--run-slow`` is given."""
    items.sort(key=lambda item: item.path.name != "test_readme.py")  # stable: the rest keep their order
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: a slower repeat of a check the default run makes (make test-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


#: Imports (new entries of ``sys.modules``) after which the heap is frozen again within a test file.
_REFREEZE_AFTER_IMPORTS = 100
_frozen: dict[str, object] = {"file": None, "modules": 0}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Keep the session's long-lived objects out of garbage collections.

    The exporter collects garbage after each of its steps (``exporters/memory.py``). With torch,
    transformers, onnx and openvino imported, each full collection walks millions of objects that live as
    long as the test session: 0.3-0.5 s each, about 40% of the CPU time of a file of export tests. So at
    each test file's first test, and after large imports, the heap is collected and what survives is
    frozen (``gc.freeze``): collections skip it. It is unfrozen and collected again at the next file, so
    garbage never outlives a test file.
    """
    modules = len(sys.modules)
    if item.path != _frozen["file"] or modules > int(_frozen["modules"]) + _REFREEZE_AFTER_IMPORTS:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        _frozen.update(file=item.path, modules=modules)


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
def tokenizer_twins(
    tmp_path_factory: pytest.TempPathFactory, tiny_bi_encoder_folder, tiny_cross_encoder_folder
):
    """Export (once per session) the tiny model ``name`` with its tokenizer inside, per backend.

    ONNX: fp32 and int8-static; OpenVINO: fp32 and int8 (fp32 alone for "distilbert-cls-dense"); each with
    its string-in twin. Shared by the twin tests (tests/test_tokenizer_graphs.py) and the C program
    (tests/interop/test_c_program.py), which would otherwise export the same folders again.
    """
    from edgesbert.exporters import Tolerance, export_model
    from tests.tiny_models import TINY_INT8

    done: dict[tuple[str, str], Path] = {}
    rank_noise = Tolerance(**TINY_INT8)  # the tests compare the twins with the two-step path

    def get(name: str, backend: str) -> Path:
        if (name, backend) not in done:
            cross = name in CROSS_ENCODERS
            source = tiny_cross_encoder_folder(name) if cross else tiny_bi_encoder_folder(name)
            output = tmp_path_factory.mktemp("twins") / f"{name}-{backend}"
            quantize = ["int8-static"] if backend == "onnx" else ["int8"]
            if name == "distilbert-cls-dense" and backend == "openvino":
                quantize = []  # NNCF int8 loses this random tiny model (Spearman -0.5, weights only -0.1)
            export_model(
                source,
                output,
                backend=backend,
                quantize=quantize,
                validation_size=64,
                tolerance=rank_noise,
                tokenizer_in_graph=True,
            )
            done[name, backend] = output
        return done[name, backend]

    return get


@pytest.fixture(scope="session")
def default_openvino_int8(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real default model exported as `make demo` does it (OpenVINO, int8, default tolerances), once.

    Where the README test ran `make demo` in this session (it runs first), a copy of the folder that wrote;
    otherwise exported here.
    """
    from edgesbert import DEFAULT_MODEL
    from edgesbert.exporters import export_model
    from tests.readme_demo import DEMO_FOLDERS
    from tests.threads import torch_threads

    folder = tmp_path_factory.mktemp("default-openvino-int8") / "all-MiniLM-L6-v2"
    demo = pytestconfig.stash.get(DEMO_FOLDERS, {}).get(folder.name)
    if demo is not None:
        shutil.copytree(demo, folder)
        return folder
    with torch_threads(2):
        export_model(DEFAULT_MODEL, folder, backend="openvino", quantize=["int8"])
    return folder


@pytest.fixture(scope="session")
def minilm_stsb_test_reference() -> tuple[list[str], object]:
    """Every unique STSb test sentence (sorted) and all-MiniLM-L6-v2's PyTorch embeddings of them (unit
    length, 2 torch threads), computed once for the integration tests that compare exports with them."""
    import csv

    from edgesbert import DEFAULT_MODEL
    from edgesbert.reference import BiEncoder
    from tests.threads import torch_threads

    path = Path(__file__).resolve().parents[1] / "data" / "stsb-en-test.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = [row for row in csv.reader(f) if len(row) == 3]
    sentences = sorted({s for row in rows for s in row[:2]})
    with torch_threads(2):
        embeddings = BiEncoder(DEFAULT_MODEL).encode(sentences, batch_size=64, normalize_embeddings=True)
    return sentences, embeddings


@pytest.fixture(scope="session")
def stsb_sentences() -> list[str]:
    """Real sentences (STSb test, first 200 rows), with very short and very long ones."""
    import csv

    path = Path(__file__).resolve().parents[1] / "data" / "stsb-en-test.csv"
    with path.open(encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if len(row) == 3][:100]
    return [s for row in rows for s in row[:2]]


def make_batch_dependent(monkeypatch: pytest.MonkeyPatch, variant: str) -> None:
    """Make ``variant`` batch-dependent on purpose, as int8 arithmetic is on some CPUs: its vectors move
    with the number of texts in their batch (until ``monkeypatch`` is undone)."""
    from edgesbert.runtime.models import BiEncoder

    embed = BiEncoder._embed

    def moved(self, texts):
        vectors = embed(self, texts)
        if self.variant.name == variant:
            vectors[:, 0] += 0.05 * (len(texts) - 1)
        return vectors

    monkeypatch.setattr(BiEncoder, "_embed", moved)
