"""Ranking metrics, the information-retrieval and the reranking evaluators on rankings known by hand."""

from __future__ import annotations

import math

import pytest

from edgesbert.runtime.manifest import Activation
from edgesbert.training.retrieval import (
    InformationRetrievalEvaluator,
    RerankingEvaluator,
    RerankingSample,
    average_precision,
    ndcg,
    recall,
    reciprocal_rank,
)
from tests.training.fakes import LookupEncoder, LookupScorer, at_angle


def log2(x: float) -> float:
    return math.log(x, 2)


def test_metrics_of_one_ranking():
    hits = [False, True, True, False]  # relevant documents at ranks 2 and 3, of 3 relevant in all
    assert reciprocal_rank(hits, 10) == 0.5
    assert reciprocal_rank(hits, 1) == 0.0
    assert ndcg(hits, 10, 3) == pytest.approx((1 / log2(3) + 1 / log2(4)) / (1 + 1 / log2(3) + 1 / log2(4)))
    assert ndcg(hits, 2, 3) == pytest.approx((1 / log2(3)) / (1 + 1 / log2(3)))
    assert average_precision(hits, 3) == pytest.approx((1 / 2 + 2 / 3) / 3)
    assert average_precision(hits, 3, k=2) == pytest.approx((1 / 2) / 2)  # divided by min(k, relevant)
    assert recall(hits, 1, 3) == 0.0
    assert recall(hits, 3, 3) == pytest.approx(2 / 3)
    assert average_precision([False, False], 1) == 0.0


@pytest.fixture()
def retrieval_encoder():
    # Queries and documents on the unit circle: the ranking follows the angle between them.
    return LookupEncoder(
        {
            "q1": at_angle(0),
            "q2": at_angle(40),
            "q3": at_angle(0),
            "d2": at_angle(10),
            "d1": at_angle(20),
            "d3": at_angle(30),
            "d4": at_angle(40),
        }
    )


def test_information_retrieval(retrieval_encoder):
    queries = {"q1": "q1", "q2": "q2", "q3": "q3"}
    corpus = {name: name for name in ("d1", "d2", "d3", "d4")}
    # q1 ranks d2, d1, d3, d4 with d1, d3 relevant; q2 ranks d4, d3, d1, d2 with d2 relevant;
    # q3's only relevant document is not in the corpus, so q3 is left out.
    relevant = {"q1": {"d1", "d3"}, "q2": ["d2"], "q3": ["missing"]}
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant)
    assert evaluator.query_ids == ["q1", "q2"]
    result = evaluator.evaluate(retrieval_encoder)
    assert result.mrr_at_10 == pytest.approx((1 / 2 + 1 / 4) / 2)
    ndcg_q1 = (1 / log2(3) + 1 / log2(4)) / (1 + 1 / log2(3))
    assert result.ndcg_at_10 == pytest.approx((ndcg_q1 + 1 / log2(5)) / 2)
    assert result.map_at_100 == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1 / 4) / 2)
    assert result.recall_at == {1: 0.0, 5: 1.0, 10: 1.0}
    assert result.primary == result.ndcg_at_10
    assert set(result.metrics()) == {
        "mrr_at_10",
        "ndcg_at_10",
        "map_at_100",
        "recall@1",
        "recall@5",
        "recall@10",
    }


def test_information_retrieval_needs_a_relevant_document():
    with pytest.raises(ValueError, match="no query"):
        InformationRetrievalEvaluator({"q": "q"}, {"d": "d"}, {"q": ["other"]})


SAMPLES = [
    RerankingSample("q1", positives=("p1",), negatives=("n1", "n2")),
    RerankingSample("q2", positives=("p2", "p3"), negatives=("n3",)),
    RerankingSample("q3", positives=("p4",), negatives=()),  # no negative: left out
]
# q1 ranks n1, p1, n2; q2 ranks p2, n3, p3.
EXPECTED_MAP = (1 / 2 + (1 + 2 / 3) / 2) / 2
EXPECTED_MRR = (1 / 2 + 1) / 2
EXPECTED_NDCG = ((1 / log2(3)) + (1 + 1 / log2(4)) / (1 + 1 / log2(3))) / 2


def test_reranking_with_cross_encoder_scores():
    scores = {
        ("q1", "p1"): 0.2,
        ("q1", "n1"): 0.9,
        ("q1", "n2"): 0.1,
        ("q2", "p2"): 0.8,
        ("q2", "p3"): 0.3,
        ("q2", "n3"): 0.5,
    }
    result = RerankingEvaluator(SAMPLES).evaluate(LookupScorer(scores, Activation.SIGMOID))
    assert result.groups == 2
    assert result.map == pytest.approx(EXPECTED_MAP)
    assert result.mrr_at_10 == pytest.approx(EXPECTED_MRR)
    assert result.ndcg_at_10 == pytest.approx(EXPECTED_NDCG)
    assert result.primary == result.map


def test_reranking_with_bi_encoder_cosines():
    angles = {"q1": 0, "n1": 5, "p1": 20, "n2": 60, "q2": 90, "p2": 90, "n3": 100, "p3": 150}
    encoder = LookupEncoder({text: at_angle(a) for text, a in angles.items()})
    result = RerankingEvaluator(SAMPLES).evaluate(encoder)
    assert (result.map, result.mrr_at_10, result.ndcg_at_10) == pytest.approx(
        (EXPECTED_MAP, EXPECTED_MRR, EXPECTED_NDCG)
    )
    assert max(encoder.calls.values()) == 1  # every distinct text embedded once


def test_reranking_breaks_ties_at_random_not_by_input_order():
    sample = RerankingSample("q", positives=("p",), negatives=tuple(f"n{i}" for i in range(20)))
    flat = LookupScorer({("q", d): 0.5 for d in ("p", *sample.negatives)})
    first = RerankingEvaluator([sample], seed=0).evaluate(flat)
    assert first.map < 1.0
    assert RerankingEvaluator([sample], seed=0).evaluate(flat) == first


def test_reranking_refuses_other_models():
    with pytest.raises(TypeError, match="SentenceEncoder or a PairScorer"):
        RerankingEvaluator(SAMPLES).evaluate(object())
    with pytest.raises(ValueError, match="both a positive and a negative"):
        RerankingEvaluator(SAMPLES[2:])
