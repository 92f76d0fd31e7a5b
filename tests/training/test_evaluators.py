"""Every evaluator on hand-made vectors and scores whose metrics are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgesbert.runtime.manifest import Activation
from edgesbert.training.data import ScoredPair
from edgesbert.training.evaluators import (
    CrossEncoderClassificationEvaluator,
    CrossEncoderCorrelationEvaluator,
    MSEEvaluator,
    MSEResult,
    STSEvaluator,
    TranslationEvaluator,
    macro_f1,
)
from tests.training.fakes import LookupEncoder, LookupScorer, at_angle


def test_sts_correlates_cosines_with_gold():
    # cos(a_i, b_i) = cos(angle): 1, 0.5, 0, -0.5; gold ranks swap the last two.
    encoder = LookupEncoder(
        {"a": at_angle(0), "b0": at_angle(0), "b1": at_angle(60), "b2": at_angle(90), "b3": at_angle(120)}
    )
    gold = [4.0, 3.0, 1.0, 2.0]
    pairs = [ScoredPair("a", f"b{i}", score) for i, score in enumerate(gold)]
    result = STSEvaluator.from_pairs(pairs).evaluate(encoder)
    assert result.spearman == pytest.approx(1 - 6 * 2 / (4 * 15))  # two ranks off by one
    assert result.pearson == pytest.approx(np.corrcoef([1, 0.5, 0, -0.5], gold)[0, 1])
    assert result.primary == result.spearman
    assert result.metrics() == {"pearson": result.pearson, "spearman": result.spearman}


def test_mse_against_teacher_embeddings():
    student = LookupEncoder({"x": [1.0, 0.0], "y": [0.0, 2.0]})
    teacher = np.array([[0.0, 0.0], [0.0, 1.0]])
    result = MSEEvaluator(["x", "y"], teacher).evaluate(student)
    assert result == MSEResult(mse=pytest.approx(0.5))  # errors 1, 0, 0, 1
    assert result.primary == pytest.approx(-0.5)
    assert result.mse_x100 == pytest.approx(50.0)


def test_mse_from_teacher_embeds_sources_and_compares_targets():
    teacher = LookupEncoder({"hello": [1.0, 0.0]})
    student = LookupEncoder({"hallo": [1.0, 1.0]})
    evaluator = MSEEvaluator.from_teacher(teacher, ["hello"], ["hallo"])
    assert evaluator.evaluate(student).mse == pytest.approx(0.5)


def test_translation_accuracy_in_both_directions():
    # Sources at 0°, 60°, 90°; targets at 0°, 80°, 89°. Each source's nearest target is its own
    # (s1: t1 is 20° away, t2 29°), but t1's nearest source is s2 (10° away; s1 is 20°).
    encoder = LookupEncoder(
        {
            "s0": at_angle(0),
            "s1": at_angle(60),
            "s2": at_angle(90),
            "t0": at_angle(0),
            "t1": at_angle(80),
            "t2": at_angle(89),
        }
    )
    result = TranslationEvaluator(["s0", "s1", "s2"], ["t0", "t1", "t2"]).evaluate(encoder)
    assert result.source_to_target == pytest.approx(1.0)
    assert result.target_to_source == pytest.approx(2 / 3)
    assert result.primary == pytest.approx(5 / 6)


def test_cross_encoder_correlation():
    pairs = [("q", f"d{i}") for i in range(4)]
    scorer = LookupScorer(dict(zip(pairs, [0.1, 0.4, 0.35, 0.9], strict=True)))
    result = CrossEncoderCorrelationEvaluator(pairs, [0, 1, 2, 3]).evaluate(scorer)
    assert result.spearman == pytest.approx(0.8)
    assert result.pearson == pytest.approx(np.corrcoef([0.1, 0.4, 0.35, 0.9], [0, 1, 2, 3])[0, 1], rel=1e-6)


def test_cross_encoder_classification_with_several_labels():
    pairs = [("p", str(i)) for i in range(4)]
    logits = [[2, 0, 0], [0, 2, 0], [0, 2, 0], [0, 0, 2]]
    scorer = LookupScorer(dict(zip(pairs, logits, strict=True)))
    result = CrossEncoderClassificationEvaluator(pairs, [0, 1, 2, 2]).evaluate(scorer)
    # predicted 0, 1, 1, 2: accuracy 3/4; F1 per class: 1, 2/3, 2/3.
    assert result.accuracy == pytest.approx(0.75)
    assert result.macro_f1 == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    assert result.primary == result.accuracy


def test_cross_encoder_classification_with_one_label_thresholds_the_sigmoid():
    pairs = [("p", "a"), ("p", "b"), ("p", "c")]
    scorer = LookupScorer(dict(zip(pairs, [3.0, -1.0, 0.5], strict=True)), Activation.SIGMOID)
    assert CrossEncoderClassificationEvaluator(pairs, [1, 0, 0]).evaluate(scorer).accuracy == pytest.approx(
        2 / 3
    )
    strict = CrossEncoderClassificationEvaluator(pairs, [1, 0, 0], threshold=0.7)
    assert strict.evaluate(scorer).accuracy == pytest.approx(1.0)  # sigmoid(0.5) = 0.62


def test_macro_f1_counts_classes_of_gold_and_predictions():
    assert macro_f1(np.array([0, 0]), np.array([0, 1])) == pytest.approx((2 / 3 + 0) / 2)


def test_evaluators_refuse_uneven_or_empty_inputs():
    with pytest.raises(ValueError, match="equally long"):
        STSEvaluator(["a"], ["b", "c"], [1.0])
    with pytest.raises(ValueError, match="empty"):
        TranslationEvaluator([], [])
    scorer = LookupScorer({("a", "b"): [0.0, 1.0]})
    with pytest.raises(ValueError, match="one label"):
        CrossEncoderCorrelationEvaluator([("a", "b")], [1.0]).evaluate(scorer)


def test_angle_helper():
    assert at_angle(90)[1] == pytest.approx(1.0) and math.isclose(at_angle(90)[0], 0.0, abs_tol=1e-12)
