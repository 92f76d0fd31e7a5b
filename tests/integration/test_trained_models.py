"""The models the project trained and ships in models/, and one short real training run.

Each shipped model is loaded by the PyTorch reference from its folder (fp16 safetensors into a float32
model) and its headline figure is measured again on the test data, to match its metrics.json, and
compared with its baseline (the reranker must beat BM25, the student must gain 10 points of
cross-lingual Spearman). sentence-transformers must load the same folders into the same numbers.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from tests.threads import torch_threads

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
DATA = ROOT / "data"
STS = "stsb-cross-encoder-minilm"
RERANKER = "trecqa-reranker-minilm"
STUDENT = "minilm-en-de-distilled"
#: how far a figure measured here may be from the one in metrics.json
TOLERANCE = 1e-3


@pytest.fixture(autouse=True, scope="module")
def two_torch_threads():
    """The threads the figures in metrics.json were measured with."""
    with torch_threads(2):
        yield


def shipped_metrics(name: str) -> dict:
    """metrics.json of a shipped model, checked to describe the weights next to it."""
    folder = MODELS / name
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert digest == metrics["weights"]["sha256"], f"{name}: metrics.json was measured on other weights"
    return metrics


def sts_rows(file: str) -> list[tuple[str, str, float]]:
    with (DATA / file).open(encoding="utf-8", newline="") as f:
        return [(a, b, float(score)) for a, b, score in csv.reader(f)]


def test_sts_cross_encoder_reproduces_its_stsb_test_spearman_of_at_least_0_84():
    from edgesbert.reference import CrossEncoder
    from edgesbert.training import CrossEncoderCorrelationEvaluator

    metrics = shipped_metrics(STS)
    rows = sts_rows("stsb-en-test.csv")
    assert len(rows) == 1379
    evaluator = CrossEncoderCorrelationEvaluator([(a, b) for a, b, _ in rows], [s for *_, s in rows])
    result = evaluator.evaluate(CrossEncoder(MODELS / STS))
    assert metrics["headline"]["name"] == "stsb_test_spearman"
    assert result.spearman == pytest.approx(metrics["headline"]["value"], abs=TOLERANCE)
    assert result.pearson == pytest.approx(metrics["test"]["stsb_test_pearson"], abs=TOLERANCE)
    assert result.spearman > metrics["baseline"]["stsb_test_spearman"]  # the bi-encoder it started from
    assert result.spearman >= 0.84  # the target the recipe was built for


def test_reranker_reproduces_its_trecqa_dev_map_and_beats_bm25():
    from edgesbert.reference import CrossEncoder
    from edgesbert.training import RerankingEvaluator, RerankingSample

    metrics = shipped_metrics(RERANKER)
    groups: dict[str, tuple[list[str], list[str]]] = {}
    with (DATA / "trecqa-dev.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            groups.setdefault(row["qtext"], ([], []))[0 if row["label"] == "1" else 1].append(row["atext"])
    samples = [RerankingSample(q, tuple(pos), tuple(neg)) for q, (pos, neg) in groups.items()]
    result = RerankingEvaluator(samples).evaluate(CrossEncoder(MODELS / RERANKER))
    assert result.groups == 65  # the "clean" questions: at least one positive and one negative
    assert metrics["headline"]["name"] == "map"
    assert result.map == pytest.approx(metrics["headline"]["value"], abs=TOLERANCE)
    assert result.mrr_at_10 == pytest.approx(metrics["test"]["mrr_at_10"], abs=TOLERANCE)
    assert metrics["baseline"]["groups"] == 65
    assert result.map > metrics["baseline"]["map"]  # BM25 on the same groups


def test_student_reproduces_its_cross_lingual_spearman():
    from edgesbert.reference import BiEncoder
    from edgesbert.training import STSEvaluator

    metrics = shipped_metrics(STUDENT)
    english, german = sts_rows("stsb-en-test.csv"), sts_rows("stsb-de-test.csv")
    assert [s for *_, s in english] == [s for *_, s in german]  # row-aligned translations
    evaluator = STSEvaluator([e[0] for e in english], [g[1] for g in german], [s for *_, s in english])
    result = evaluator.evaluate(BiEncoder(MODELS / STUDENT))
    assert metrics["headline"]["name"] == "en_de_test_spearman"
    assert result.spearman == pytest.approx(metrics["headline"]["value"], abs=TOLERANCE)
    assert result.spearman >= metrics["baseline"]["en_de_test_spearman"] + 0.10


@pytest.mark.parametrize("name", [STS, RERANKER, STUDENT])
def test_fp16_weights_load_as_float32_in_the_reference_and_sentence_transformers(name):
    import sentence_transformers
    import torch
    from safetensors import safe_open

    from edgesbert.reference import BiEncoder, CrossEncoder

    folder = MODELS / name
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}  # noqa: SIM118
    if name == STUDENT:
        texts = ["The cat sits on the mat.", "Die Katze sitzt auf der Matte.", "Er fuhr zum Stadion."]
        ours, theirs = BiEncoder(folder), sentence_transformers.SentenceTransformer(str(folder), device="cpu")
        parameters, expected, actual = theirs.parameters(), ours.encode(texts), theirs.encode(texts)
    else:
        pairs = [("Who wrote Hamlet?", "Shakespeare wrote Hamlet."), ("A man plays guitar.", "It rains.")]
        ours, theirs = CrossEncoder(folder), sentence_transformers.CrossEncoder(str(folder), device="cpu")
        parameters, expected, actual = theirs.model.parameters(), ours.predict(pairs), theirs.predict(pairs)
    assert {p.dtype for p in ours.network.parameters()} == {torch.float32}
    assert {p.dtype for p in parameters} == {torch.float32}
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_twenty_real_steps_of_sts_cross_encoder_training_lower_the_loss():
    import torch

    from edgesbert import DEFAULT_MODEL
    from edgesbert.reference import CrossEncoder
    from edgesbert.training import (
        BinaryCrossEntropyLoss,
        CrossEncoderTask,
        Trainer,
        TrainingConfig,
        seed_everything,
        sts_examples,
    )
    from edgesbert.training.data import ScoredPair

    examples = sts_examples([ScoredPair(*row) for row in sts_rows("stsb-en-train.csv")[:160]])
    seed_everything(0)
    model = CrossEncoder(DEFAULT_MODEL, num_labels=1, max_length=64)
    task = CrossEncoderTask(model, BinaryCrossEntropyLoss())

    def loss() -> float:
        task.network.eval()
        with torch.no_grad():
            return float(task.batch_loss(examples))

    before = loss()
    config = TrainingConfig(batch_size=8, learning_rate=5e-5, seed=0, show_progress_bar=False)
    history = Trainer(task, config).fit(examples)
    assert history.steps == 20
    assert loss() < before - 0.01


def test_sts_teacher_examples_blend_gold_with_the_teacher_and_add_unseen_silver_pairs(monkeypatch):
    import importlib

    from scipy.stats import spearmanr

    from edgesbert import DEFAULT_MODEL
    from edgesbert.reference import BiEncoder

    monkeypatch.syspath_prepend(str(MODELS))
    recipes = importlib.import_module("recipes")
    rows = sts_rows("stsb-en-train.csv")[:120]
    pairs, gold = [(a, b) for a, b, _ in rows], [score for _, _, score in rows]

    examples = recipes._sts_teacher_examples(pairs, gold, seed=0)
    blended, silver = examples[: len(pairs)], examples[len(pairs) :]
    assert [e.texts for e in blended] == pairs
    labels = np.array([e.label for e in blended])
    assert ((labels >= 0) & (labels <= 1)).all()
    assert spearmanr(labels, gold)[0] > 0.9  # half of each label is the gold score / 5
    # every silver pair joins two training sentences that were never a gold pair
    sentences, gold_pairs = {s for p in pairs for s in p}, {frozenset(p) for p in pairs}
    assert 0 < len(silver) <= recipes.STS_SILVER_PAIRS
    assert all(set(e.texts) <= sentences and frozenset(e.texts) not in gold_pairs for e in silver)
    assert len({frozenset(e.texts) for e in silver}) == len(silver)
    # their labels are the teacher's cosine on the gold scale: same order, within 0..1
    teacher = BiEncoder(DEFAULT_MODEL)
    left = teacher.encode([e.texts[0] for e in silver], normalize_embeddings=True)
    right = teacher.encode([e.texts[1] for e in silver], normalize_embeddings=True)
    silver_labels = np.array([e.label for e in silver])
    assert ((silver_labels >= 0) & (silver_labels <= 1)).all()
    assert spearmanr((left * right).sum(axis=1), silver_labels)[0] > 0.999
    assert recipes._sts_teacher_examples(pairs, gold, seed=0) == examples  # seeded
    # with the gold-trained cross-encoder, silver labels average its score and the teacher's
    constant = recipes._sts_teacher_examples(pairs, gold, seed=0, pair_model=lambda t: np.full(len(t), 0.5))
    assert constant[: len(pairs)] == blended
    assert [e.texts for e in constant[len(pairs) :]] == [e.texts for e in silver]
    np.testing.assert_allclose([e.label for e in constant[len(pairs) :]], 0.25 + silver_labels / 2)


def test_both_orders_scorer_is_symmetric_and_in_the_unit_interval(monkeypatch, tiny_cross_encoder_folder):
    import importlib

    from edgesbert.reference import CrossEncoder

    monkeypatch.syspath_prepend(str(MODELS))
    recipes = importlib.import_module("recipes")
    model = CrossEncoder(tiny_cross_encoder_folder())
    score = recipes._both_orders_scorer(model)
    pairs = [("a cat sits on the mat", "a dog runs"), ("stocks fell", "the market dropped sharply")]
    forward, backward = score(pairs), score([(b, a) for a, b in pairs])
    np.testing.assert_allclose(forward, backward, atol=1e-6)
    assert ((forward > 0) & (forward < 1)).all()
    one_way = np.asarray(model.predict(pairs))
    assert not np.allclose(one_way, forward)  # the tiny random model is not symmetric by itself
