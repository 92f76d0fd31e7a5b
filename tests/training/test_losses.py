"""Every loss against a value computed by hand on a two-example batch, and against sentence-transformers."""

from __future__ import annotations

import math

import pytest
import torch

from edgesbert.training.losses import (
    BinaryCrossEntropyLoss,
    CoSENTLoss,
    CosineSimilarityLoss,
    CrossEntropyLoss,
    MatryoshkaLoss,
    MSELoss,
    MultipleNegativesRankingLoss,
)

R = 1 / math.sqrt(2)


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def log1pexp(x: float) -> float:
    return math.log1p(math.exp(x))


# anchors a1 = (1, 0), a2 = (0, 1); positives p1 = (1, 0), p2 = (1, 1): cos(a, p) = [[1, R], [0, R]].
ANCHORS, POSITIVES = t([1, 0], [0, 1]), t([1, 0], [2, 2])
# sentence1 and sentence2 of two pairs whose cosines are 0.5 and 0.8.
LEFT, RIGHT = t([1, 0], [1, 0]), t([0.5, math.sqrt(0.75)], [0.8, 0.6])


def test_mnrl_in_batch_negatives():
    # Row 1: logits 20 * [1, R], target 0; row 2: logits 20 * [0, R], target 1.
    expected = (log1pexp(20 * R - 20) + log1pexp(0 - 20 * R)) / 2
    loss = MultipleNegativesRankingLoss()([ANCHORS, POSITIVES], None)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_mnrl_with_hard_negatives():
    negatives = t([0, 1], [-1, 0])  # documents: p1, p2, n1, n2
    # cos(a1, docs) = [1, R, 0, -1] (target 0); cos(a2, docs) = [0, R, 1, 0] (target 1).
    row1 = -20 + math.log(math.exp(20) + math.exp(20 * R) + math.exp(0) + math.exp(-20))
    row2 = -20 * R + math.log(math.exp(0) + math.exp(20 * R) + math.exp(20) + math.exp(0))
    loss = MultipleNegativesRankingLoss()([ANCHORS, POSITIVES, negatives], None)
    assert loss.item() == pytest.approx((row1 + row2) / 2, rel=1e-5)


def test_mnrl_symmetric_adds_the_positive_to_anchor_direction():
    forward = (log1pexp(20 * R - 20) + log1pexp(0 - 20 * R)) / 2
    # cos(p1, anchors) = [1, 0] (target 0); cos(p2, anchors) = [R, R] (target 1): log 2.
    backward = (log1pexp(0 - 20) + math.log(2)) / 2
    loss = MultipleNegativesRankingLoss(symmetric=True)([ANCHORS, POSITIVES], None)
    assert loss.item() == pytest.approx((forward + backward) / 2, rel=1e-5)


def test_mnrl_scale():
    expected = (log1pexp(R - 1) + log1pexp(-R)) / 2
    assert MultipleNegativesRankingLoss(scale=1.0)([ANCHORS, POSITIVES], None).item() == pytest.approx(
        expected
    )


def test_cosent():
    # Pair 1 (label 1) should score above pair 2 (label 0): one term, 20 * (cos_2 - cos_1) = 6.
    loss = CoSENTLoss()([LEFT, RIGHT], t(1, 0))
    assert loss.item() == pytest.approx(log1pexp(6.0), rel=1e-5)
    # Ordered correctly: the term is 20 * (0.5 - 0.8) = -6; equal labels: no term, loss log(1) = 0.
    assert CoSENTLoss()([LEFT, RIGHT], t(0, 1)).item() == pytest.approx(log1pexp(-6.0), abs=1e-6)
    assert CoSENTLoss()([LEFT, RIGHT], t(1, 1)).item() == pytest.approx(0.0, abs=1e-7)


def test_cosine_similarity_loss():
    loss = CosineSimilarityLoss()([LEFT, RIGHT], t(1, 0))
    assert loss.item() == pytest.approx(((0.5 - 1) ** 2 + 0.8**2) / 2, rel=1e-5)


def test_mse_loss_pulls_every_column_to_the_label_vector():
    source, translation = t([1, 0], [0, 1]), t([1, 1], [0, 0])
    teacher = t([1, 0], [1, 1])
    # source: errors (0, 0), (-1, 0) -> 1/4; translation: (0, 1), (-1, -1) -> 3/4; mean 1/2.
    assert MSELoss()([source, translation], teacher).item() == pytest.approx(0.5)


def test_matryoshka_weights_each_width():
    # Width 1, normalized: every coordinate becomes 1, cosines [1, 1] -> MSE vs [1, 0] is 1/2.
    # Width 2: cosines [0.5, 0.8] -> 0.445.
    loss = MatryoshkaLoss(CosineSimilarityLoss(), dims=[1, 2], weights=[1.0, 0.5])
    assert loss([LEFT, RIGHT], t(1, 0)).item() == pytest.approx(0.5 + 0.5 * 0.445, rel=1e-5)


def test_matryoshka_cuts_and_normalizes_teacher_vectors():
    student, teacher = t([3, 4], [0, 2]), t([6, 8], [0, 1])
    # Width 1: student (1), (0) normalized stays (0); teacher (1), (0): errors 0. Width 2: unit rows -> 0.
    assert MatryoshkaLoss(MSELoss(), dims=[1, 2])([student], teacher).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="exceed"):
        MatryoshkaLoss(MSELoss(), dims=[3])([student], teacher)


def test_binary_cross_entropy_for_hard_and_soft_labels():
    sigmoid2 = 1 / (1 + math.exp(-2))
    expected = (math.log(2) - (0.25 * math.log(sigmoid2) + 0.75 * math.log(1 - sigmoid2))) / 2
    loss = BinaryCrossEntropyLoss()(t([0.0], [2.0]), t(1.0, 0.25))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    weighted = BinaryCrossEntropyLoss(pos_weight=3.0)(t([0.0]), t(1.0))
    assert weighted.item() == pytest.approx(3 * math.log(2), rel=1e-5)


def test_cross_entropy_over_labels():
    logits = t([1, 0, 0], [0, 0, 0])
    expected = (-math.log(math.e / (math.e + 2)) + math.log(3)) / 2
    assert CrossEntropyLoss()(logits, torch.tensor([0, 2])).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("loss", "embeddings", "labels", "message"),
    [
        (MultipleNegativesRankingLoss(), [ANCHORS], None, "anchor, positive"),
        (CoSENTLoss(), [LEFT, RIGHT], None, "needs a label"),
        (CosineSimilarityLoss(), [LEFT, RIGHT, RIGHT], t(1, 0), "2 texts"),
        (MSELoss(), [LEFT], t([1, 0, 0], [0, 1, 0]), "width 2"),
    ],
)
def test_bi_encoder_loss_errors(loss, embeddings, labels, message):
    with pytest.raises(ValueError, match=message):
        loss(embeddings, labels)


def test_cross_encoder_loss_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BinaryCrossEntropyLoss()(t([0.0], [1.0]), t(2.0, 0.0))
    with pytest.raises(ValueError, match="one label"):
        BinaryCrossEntropyLoss()(t([0.0, 1.0]), t(1.0))
    with pytest.raises(ValueError, match="integer"):
        CrossEntropyLoss()(t([0.0, 1.0]), t(1.0))
    with pytest.raises(ValueError, match=r"0\.\.1"):
        CrossEntropyLoss()(t([0.0, 1.0]), torch.tensor([2]))
    with pytest.raises(ValueError, match="scale"):
        MultipleNegativesRankingLoss(scale=0)
    with pytest.raises(ValueError, match="weights"):
        MatryoshkaLoss(MSELoss(), dims=[1, 2], weights=[1.0])


def test_losses_agree_with_sentence_transformers():
    st_losses = pytest.importorskip("sentence_transformers.sentence_transformer.losses")
    generator = torch.Generator().manual_seed(0)
    columns = [torch.randn(6, 8, generator=generator) for _ in range(3)]
    labels = torch.rand(6, generator=generator)
    placeholder = torch.nn.Identity()  # the losses below only need embeddings

    def theirs(cls, embeddings, labels, **kwargs):
        return cls(placeholder, **kwargs).compute_loss_from_embeddings(embeddings, labels).item()

    symmetric = {"directions": ("query_to_doc", "doc_to_query"), "partition_mode": "per_direction"}
    pairs = [
        (
            MultipleNegativesRankingLoss()(columns, None),
            theirs(st_losses.MultipleNegativesRankingLoss, columns, None),
        ),
        (
            MultipleNegativesRankingLoss(symmetric=True)(columns[:2], None),
            theirs(st_losses.MultipleNegativesRankingLoss, columns[:2], None, **symmetric),
        ),
        (CoSENTLoss()(columns[:2], labels), theirs(st_losses.CoSENTLoss, columns[:2], labels)),
        (
            CosineSimilarityLoss()(columns[:2], labels),
            theirs(st_losses.CosineSimilarityLoss, columns[:2], labels),
        ),
    ]
    for ours, expected in pairs:
        assert ours.item() == pytest.approx(expected, rel=1e-5)
