"""Evaluators of embedding and pair-scoring models: STS, distillation MSE, translation, cross-encoders.

An evaluator holds its data and, given a model, returns a small frozen result whose ``primary``
metric (higher is better) the trainer uses to keep the best model. Evaluators only call
``encode`` or ``predict``, so they evaluate the PyTorch reference and the exported runtime models
alike. Retrieval and reranking evaluators are in ``edgesbert.training.retrieval``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from edgesbert.evaluation import pearson, spearman

if TYPE_CHECKING:
    from edgesbert.runtime.encoding import SentenceEncoder
    from edgesbert.runtime.ranking import PairScorer
    from edgesbert.training.data import ScoredPair


class EvaluationResult(Protocol):
    """What every evaluator returns."""

    @property
    def primary(self) -> float:
        """The metric that decides which model is best; higher is better."""
        ...

    def metrics(self) -> dict[str, float]:
        """Every metric by name, e.g. for a log or a model card."""
        ...


class Evaluator(Protocol):
    """Anything that scores a model; ``model`` is a ``SentenceEncoder`` or a ``PairScorer``."""

    def evaluate(self, model: Any) -> EvaluationResult:
        """Evaluate ``model`` on the evaluator's data."""
        ...


class MetricsMixin:
    """``metrics()`` from a result dataclass's fields; a mapping ``name_at: {k: v}`` becomes ``name@k``."""

    def metrics(self) -> dict[str, float]:
        """Every metric by name."""
        out: dict[str, float] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            if isinstance(value, dict):
                out.update({f"{field.name.removesuffix('_at')}@{k}": float(v) for k, v in value.items()})
            else:
                out[field.name] = float(value)
        return out


@dataclass(frozen=True)
class CorrelationResult(MetricsMixin):
    """Pearson and Spearman correlation of predicted against gold scores; primary: Spearman."""

    pearson: float
    spearman: float

    @property
    def primary(self) -> float:
        """Spearman."""
        return self.spearman


@dataclass(frozen=True)
class MSEResult(MetricsMixin):
    """Mean squared error between student and teacher embeddings, over all elements; primary: -mse.

    The plain mean: sentence-transformers' MSEEvaluator logs this value times 100 (``mse_x100``).
    """

    mse: float

    @property
    def primary(self) -> float:
        """Minus the MSE, so that higher is better."""
        return -self.mse

    @property
    def mse_x100(self) -> float:
        """The MSE times 100, the figure sentence-transformers reports."""
        return 100.0 * self.mse


@dataclass(frozen=True)
class TranslationResult(MetricsMixin):
    """Share of sentences whose nearest neighbour (cosine) on the other side is their translation."""

    source_to_target: float
    target_to_source: float

    @property
    def primary(self) -> float:
        """The mean of both directions."""
        return (self.source_to_target + self.target_to_source) / 2


@dataclass(frozen=True)
class ClassificationResult(MetricsMixin):
    """Accuracy and macro F1 (over classes in gold or predictions) of predicted labels; primary: accuracy."""

    accuracy: float
    macro_f1: float

    @property
    def primary(self) -> float:
        """Accuracy."""
        return self.accuracy


def _same_length(**lists: Sequence[Any] | np.ndarray) -> None:
    lengths = {name: len(values) for name, values in lists.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"evaluator inputs must be equally long, got {lengths}")
    if not next(iter(lengths.values())):
        raise ValueError("evaluator inputs must not be empty")


def _unit_embeddings(model: SentenceEncoder, sentences: Sequence[str], batch_size: int) -> np.ndarray:
    return model.encode(list(sentences), batch_size=batch_size, normalize_embeddings=True).astype(np.float64)


class STSEvaluator:
    """Correlation of cos(sentence1, sentence2) with gold similarity scores (any scale)."""

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        *,
        batch_size: int = 32,
    ) -> None:
        _same_length(sentences1=sentences1, sentences2=sentences2, scores=scores)
        self.sentences1, self.sentences2 = list(sentences1), list(sentences2)
        self.scores = np.asarray(scores, dtype=np.float64)
        self.batch_size = batch_size

    @classmethod
    def from_pairs(cls, pairs: Sequence[ScoredPair], *, batch_size: int = 32) -> STSEvaluator:
        """An evaluator of rows read by ``read_sts_csv``."""
        return cls(
            [p.sentence1 for p in pairs],
            [p.sentence2 for p in pairs],
            [p.score for p in pairs],
            batch_size=batch_size,
        )

    def evaluate(self, model: SentenceEncoder) -> CorrelationResult:
        """Embed both sides and correlate their cosines with the gold scores."""
        a = _unit_embeddings(model, self.sentences1, self.batch_size)
        b = _unit_embeddings(model, self.sentences2, self.batch_size)
        cosines = (a * b).sum(axis=1)
        return CorrelationResult(pearson(cosines, self.scores), spearman(cosines, self.scores))


class MSEEvaluator:
    """MSE between the student's embeddings of ``sentences`` and fixed teacher embeddings."""

    def __init__(
        self, sentences: Sequence[str], teacher_embeddings: np.ndarray, *, batch_size: int = 32
    ) -> None:
        teacher_embeddings = np.asarray(teacher_embeddings, dtype=np.float64)
        if teacher_embeddings.ndim != 2:
            raise ValueError(f"teacher_embeddings must be a matrix, got shape {teacher_embeddings.shape}")
        _same_length(sentences=sentences, teacher_embeddings=teacher_embeddings)
        self.sentences = list(sentences)
        self.teacher_embeddings = teacher_embeddings
        self.batch_size = batch_size

    @classmethod
    def from_teacher(
        cls,
        teacher: SentenceEncoder,
        source_sentences: Sequence[str],
        target_sentences: Sequence[str],
        *,
        batch_size: int = 32,
    ) -> MSEEvaluator:
        """The teacher embeds ``source_sentences`` once; the student will embed ``target_sentences``."""
        _same_length(source_sentences=source_sentences, target_sentences=target_sentences)
        embeddings = teacher.encode(list(source_sentences), batch_size=batch_size)
        return cls(target_sentences, embeddings, batch_size=batch_size)

    def evaluate(self, model: SentenceEncoder) -> MSEResult:
        """Embed the sentences with ``model`` and compare with the teacher's embeddings."""
        student = model.encode(self.sentences, batch_size=self.batch_size).astype(np.float64)
        if student.shape != self.teacher_embeddings.shape:
            raise ValueError(
                f"student embeddings {student.shape} and teacher's {self.teacher_embeddings.shape} differ"
            )
        return MSEResult(float(np.mean((student - self.teacher_embeddings) ** 2)))


class TranslationEvaluator:
    """Is source sentence i's nearest target (by cosine) target i, and the other way round?"""

    def __init__(
        self, source_sentences: Sequence[str], target_sentences: Sequence[str], *, batch_size: int = 32
    ) -> None:
        _same_length(source_sentences=source_sentences, target_sentences=target_sentences)
        self.source_sentences, self.target_sentences = list(source_sentences), list(target_sentences)
        self.batch_size = batch_size

    def evaluate(self, model: SentenceEncoder) -> TranslationResult:
        """Embed both sides and count the sentences whose nearest neighbour is their translation."""
        source = _unit_embeddings(model, self.source_sentences, self.batch_size)
        target = _unit_embeddings(model, self.target_sentences, self.batch_size)
        similarities = source @ target.T
        expected = np.arange(len(source))
        return TranslationResult(
            float(np.mean(similarities.argmax(axis=1) == expected)),
            float(np.mean(similarities.argmax(axis=0) == expected)),
        )


def _check_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    out = [(a, b) for a, b in pairs]
    if not out:
        raise ValueError("evaluator inputs must not be empty")
    return out


class CrossEncoderCorrelationEvaluator:
    """Correlation of a one-label cross-encoder's scores (after its activation) with gold scores."""

    def __init__(
        self, pairs: Sequence[tuple[str, str]], scores: Sequence[float], *, batch_size: int = 32
    ) -> None:
        _same_length(pairs=pairs, scores=scores)
        self.pairs = _check_pairs(pairs)
        self.scores = np.asarray(scores, dtype=np.float64)
        self.batch_size = batch_size

    def evaluate(self, model: PairScorer) -> CorrelationResult:
        """Score every pair and correlate with the gold scores."""
        if model.num_labels != 1:
            raise ValueError(f"correlation needs a model with one label, this one has {model.num_labels}")
        predicted = np.asarray(model.predict(self.pairs, batch_size=self.batch_size), dtype=np.float64)
        return CorrelationResult(pearson(predicted, self.scores), spearman(predicted, self.scores))


def macro_f1(gold: np.ndarray, predicted: np.ndarray) -> float:
    """Mean F1 over the classes that occur in ``gold`` or ``predicted`` (scikit-learn's macro average)."""
    scores = []
    for label in np.union1d(gold, predicted):
        true_positive = np.sum((predicted == label) & (gold == label))
        wrong = np.sum((predicted == label) != (gold == label))  # false positives + false negatives
        scores.append(2 * true_positive / (2 * true_positive + wrong))
    return float(np.mean(scores))


class CrossEncoderClassificationEvaluator:
    """Accuracy of a cross-encoder's predicted labels.

    With several labels the prediction is the arg-max; with one label it is ``score > threshold``,
    the score taken after the model's activation (sigmoid by default, so 0.5 is even odds).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[str, str]],
        labels: Sequence[int],
        *,
        threshold: float = 0.5,
        batch_size: int = 32,
    ) -> None:
        _same_length(pairs=pairs, labels=labels)
        self.pairs = _check_pairs(pairs)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.threshold = threshold
        self.batch_size = batch_size

    def evaluate(self, model: PairScorer) -> ClassificationResult:
        """Predict a label for every pair and compare with the gold labels."""
        scores = np.asarray(model.predict(self.pairs, batch_size=self.batch_size))
        predicted = (
            (scores > self.threshold).astype(np.int64) if model.num_labels == 1 else scores.argmax(axis=1)
        )
        return ClassificationResult(
            float(np.mean(predicted == self.labels)), macro_f1(self.labels, predicted)
        )
