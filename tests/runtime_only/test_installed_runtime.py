"""The runtime as ``pip install edgesbert`` installs it: no torch, transformers, onnx or optimum.

Run by ``make runtime-only`` in its own virtual environment, against the folders and reference outputs
that ``make_fixtures.py`` wrote (``EDGESBERT_RUNTIME_FIXTURES``).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

FIXTURES = os.environ.get("EDGESBERT_RUNTIME_FIXTURES")
ABSENT = ("torch", "transformers", "onnx", "optimum", "sentence_transformers")


@pytest.fixture(scope="module")
def fixtures() -> Path:
    if not FIXTURES or not Path(FIXTURES).is_dir():
        pytest.fail("set EDGESBERT_RUNTIME_FIXTURES to a folder written by make_fixtures.py")
    return Path(FIXTURES)


def _reference(fixtures: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(fixtures / name / "reference.npz") as data:
        return dict(data)


def test_edgesbert_comes_from_the_installed_package_not_the_source_tree():
    import edgesbert

    assert "site-packages" in Path(edgesbert.__file__).parts, edgesbert.__file__


@pytest.mark.parametrize("module", ABSENT)
def test_heavy_packages_are_not_installed(module):
    assert importlib.util.find_spec(module) is None, f"{module} is installed in the runtime-only environment"


def test_the_exporter_is_not_importable():
    with pytest.raises(ImportError, match=r'pip install "edgesbert\[export\]"'):
        import edgesbert.exporters  # noqa: F401


@pytest.mark.parametrize("variant", ["fp32", "packed"])
@pytest.mark.parametrize("name", ["bert-mean", "distilbert-cls-dense"])
def test_tiny_bi_encoder_matches_reference(fixtures, name, variant):
    """The padded graph, and the packed one (the default; rows packed with numpy alone)."""
    from edgesbert.runtime import BiEncoder, load

    expected = _reference(fixtures, name)
    model = load(fixtures / name / "model", variant=variant)
    assert isinstance(model, BiEncoder)
    texts = [str(t) for t in expected["texts"]]
    embeddings = model.encode(texts, batch_size=16, normalize_embeddings=True)
    assert embeddings.shape == expected["embeddings"].shape
    np.testing.assert_allclose(embeddings, expected["embeddings"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("variant", ["fp32", "packed"])
@pytest.mark.parametrize("name", ["bert-1", "distilbert-3"])
def test_tiny_cross_encoder_matches_reference(fixtures, name, variant):
    """The padded graph, and the packed one (pairs with their token types)."""
    from edgesbert.runtime import CrossEncoder, load

    expected = _reference(fixtures, name)
    model = load(fixtures / name / "model", variant=variant)
    assert isinstance(model, CrossEncoder)
    query = str(expected["query"])
    documents = [str(d) for d in expected["documents"]]
    scores = model.predict([(query, doc) for doc in documents])
    np.testing.assert_allclose(scores, expected["scores"], atol=1e-4, rtol=0)
    if scores.ndim == 1:
        assert [hit.corpus_id for hit in model.rank(query, documents)] == expected["ranking"].tolist()


def test_default_model_matches_reference_on_stsb_test(fixtures):
    from edgesbert.evaluation import spearman
    from edgesbert.runtime import load

    expected = _reference(fixtures, "minilm")
    sentences = [str(t) for t in expected["texts"]]
    model = load(fixtures / "minilm" / "model", threads=2)
    embeddings = model.encode(sentences, batch_size=64, normalize_embeddings=True)
    assert embeddings.shape == expected["embeddings"].shape == (2552, 384)
    assert float(np.abs(embeddings - expected["embeddings"]).max()) <= 1e-4

    rows = json.loads((fixtures / "minilm" / "stsb.json").read_text(encoding="utf-8"))
    index = {sentence: i for i, sentence in enumerate(sentences)}

    def stsb_spearman(vectors: np.ndarray) -> float:
        first = vectors[[index[r[0]] for r in rows]]
        second = vectors[[index[r[1]] for r in rows]]
        return spearman((first * second).sum(axis=1), np.array([float(r[2]) for r in rows]))

    assert round(stsb_spearman(embeddings), 4) == round(stsb_spearman(expected["embeddings"]), 4) == 0.8203
