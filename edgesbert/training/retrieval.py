"""Ranking metrics, and the information-retrieval and reranking evaluators built on them.

Every metric takes ``hits``: booleans in ranked order, True where the ranked document is relevant.
The formulas are sentence-transformers' (binary relevance): MRR@k, nDCG@k, MAP@k with the
denominator min(k, relevant), recall@k.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edgesbert.runtime.encoding import SentenceEncoder
from edgesbert.runtime.ranking import PairScorer
from edgesbert.training.evaluators import MetricsMixin

if TYPE_CHECKING:
    from numpy.typing import ArrayLike


def reciprocal_rank(hits: ArrayLike, k: int) -> float:
    """1 / rank of the first relevant document within the top ``k``; 0 if there is none."""
    top = np.flatnonzero(np.asarray(hits, dtype=bool)[:k])
    return 1.0 / (top[0] + 1) if len(top) else 0.0


def ndcg(hits: ArrayLike, k: int, relevant: int) -> float:
    """Normalized discounted cumulative gain at ``k``, for ``relevant`` relevant documents in all."""
    top = np.asarray(hits, dtype=np.float64)[:k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(relevant, k)].sum()
    return float((top * discounts[: len(top)]).sum() / ideal) if ideal > 0 else 0.0


def average_precision(hits: ArrayLike, relevant: int, k: int | None = None) -> float:
    """Mean of the precision at each relevant document's rank within the top ``k`` (all if None).

    Divided by min(k, relevant): relevant documents ranked below ``k`` count as zero.
    """
    top = np.asarray(hits, dtype=bool)[:k]
    precisions = np.cumsum(top) / np.arange(1, len(top) + 1)
    denominator = relevant if k is None else min(k, relevant)
    return float(precisions[top].sum() / denominator) if denominator > 0 else 0.0


def recall(hits: ArrayLike, k: int, relevant: int) -> float:
    """Share of the ``relevant`` documents found in the top ``k``."""
    return float(np.asarray(hits, dtype=bool)[:k].sum() / relevant) if relevant > 0 else 0.0


@dataclass(frozen=True)
class RetrievalResult(MetricsMixin):
    """Information-retrieval metrics averaged over the queries; primary: nDCG@10."""

    mrr_at_10: float
    ndcg_at_10: float
    map_at_100: float
    recall_at: dict[int, float] = field(default_factory=dict)

    @property
    def primary(self) -> float:
        """nDCG@10, as sentence-transformers' InformationRetrievalEvaluator."""
        return self.ndcg_at_10


class InformationRetrievalEvaluator:
    """Every query searches the whole corpus by cosine similarity; graded against its relevant documents.

    Queries without a relevant document in the corpus are left out.
    """

    def __init__(
        self,
        queries: Mapping[str, str],
        corpus: Mapping[str, str],
        relevant_docs: Mapping[str, Collection[str]],
        *,
        recall_ks: Sequence[int] = (1, 5, 10),
        batch_size: int = 32,
    ) -> None:
        """``queries`` and ``corpus`` map ids to texts; ``relevant_docs`` maps query ids to corpus ids."""
        self.corpus_ids = list(corpus)
        self.corpus_texts = [corpus[i] for i in self.corpus_ids]
        known = set(self.corpus_ids)
        self.relevant = {q: set(relevant_docs.get(q, ())) & known for q in queries}
        self.query_ids = [q for q in queries if self.relevant[q]]
        if not self.query_ids:
            raise ValueError("no query has a relevant document in the corpus")
        self.query_texts = [queries[q] for q in self.query_ids]
        if any(k < 1 for k in recall_ks):
            raise ValueError(f"recall_ks must be positive, got {list(recall_ks)}")
        self.recall_ks = tuple(recall_ks)
        self.batch_size = batch_size

    def evaluate(self, model: SentenceEncoder) -> RetrievalResult:
        """Embed queries and corpus, rank the corpus for every query and average the metrics."""
        queries = model.encode(self.query_texts, batch_size=self.batch_size, normalize_embeddings=True)
        corpus = model.encode(self.corpus_texts, batch_size=self.batch_size, normalize_embeddings=True)
        depth = min(len(corpus), max(100, *self.recall_ks))
        rows: list[list[float]] = []
        for start in range(0, len(queries), 256):
            scores = queries[start : start + 256] @ corpus.T
            ranked = np.argsort(-scores, axis=1, kind="stable")[:, :depth]
            for query_id, order in zip(self.query_ids[start : start + 256], ranked, strict=True):
                relevant = self.relevant[query_id]
                hits = np.array([self.corpus_ids[i] in relevant for i in order])
                rows.append(_query_metrics(hits, len(relevant), self.recall_ks))
        mean = np.mean(rows, axis=0)
        recalls = {k: float(v) for k, v in zip(self.recall_ks, mean[3:], strict=True)}
        return RetrievalResult(float(mean[0]), float(mean[1]), float(mean[2]), recalls)


def _query_metrics(hits: np.ndarray, relevant: int, recall_ks: Sequence[int]) -> list[float]:
    head = [reciprocal_rank(hits, 10), ndcg(hits, 10, relevant), average_precision(hits, relevant, 100)]
    return head + [recall(hits, k, relevant) for k in recall_ks]


@dataclass(frozen=True)
class RerankingSample:
    """A query and its candidates: relevant (positives) and not (negatives)."""

    query: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]


@dataclass(frozen=True)
class RerankingResult(MetricsMixin):
    """Reranking metrics averaged over the groups (queries); primary: MAP.

    ``groups`` is how many queries were scored: those with at least one positive and one negative.
    """

    map: float
    mrr_at_10: float
    ndcg_at_10: float
    groups: int

    @property
    def primary(self) -> float:
        """MAP over each group's full ranking."""
        return self.map


class RerankingEvaluator:
    """Ranks each query's candidates with a bi-encoder (cosine) or a cross-encoder (its scores).

    Ties between scores are broken in a random order fixed by ``seed``, so that a model that gives
    equal scores is not credited with the order of the input lists.
    """

    def __init__(self, samples: Sequence[RerankingSample], *, batch_size: int = 32, seed: int = 0) -> None:
        self.samples = [s for s in samples if s.positives and s.negatives]
        if not self.samples:
            raise ValueError("no reranking sample has both a positive and a negative candidate")
        self.batch_size = batch_size
        self.seed = seed

    def evaluate(self, model: SentenceEncoder | PairScorer) -> RerankingResult:
        """Score every group's candidates, rank them and average the metrics."""
        groups = self._scores(model)
        rng = np.random.default_rng(self.seed)
        rows = []
        for sample, scores in zip(self.samples, groups, strict=True):
            labels = np.array([True] * len(sample.positives) + [False] * len(sample.negatives))
            shuffle = rng.permutation(len(labels))
            order = shuffle[np.argsort(-scores[shuffle], kind="stable")]
            hits, relevant = labels[order], len(sample.positives)
            rows.append(
                [average_precision(hits, relevant), reciprocal_rank(hits, 10), ndcg(hits, 10, relevant)]
            )
        mean = np.mean(rows, axis=0)
        return RerankingResult(float(mean[0]), float(mean[1]), float(mean[2]), len(rows))

    def _scores(self, model: Any) -> list[np.ndarray]:
        candidates = [list(s.positives) + list(s.negatives) for s in self.samples]
        if isinstance(model, PairScorer):
            if model.num_labels != 1:
                raise ValueError(f"reranking needs a model with one label, this one has {model.num_labels}")
            pairs = [(s.query, doc) for s, docs in zip(self.samples, candidates, strict=True) for doc in docs]
            flat = np.asarray(model.predict(pairs, batch_size=self.batch_size), dtype=np.float64)
            bounds = np.cumsum([len(docs) for docs in candidates])[:-1]
            return list(np.split(flat, bounds))
        if isinstance(model, SentenceEncoder):
            texts = list(
                dict.fromkeys([s.query for s in self.samples] + [d for docs in candidates for d in docs])
            )
            vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True)
            index = {text: i for i, text in enumerate(texts)}
            return [
                vectors[[index[d] for d in docs]].astype(np.float64) @ vectors[index[s.query]]
                for s, docs in zip(self.samples, candidates, strict=True)
            ]
        raise TypeError(f"reranking needs a SentenceEncoder or a PairScorer, got {type(model).__name__}")
