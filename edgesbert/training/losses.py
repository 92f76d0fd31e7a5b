"""Training losses with sentence-transformers' formulas, computed from embeddings or logits.

Bi-encoder losses take one (batch, dim) embedding tensor per text column and the batch's labels;
cross-encoder losses take the (batch, num_labels) logits and the labels. None of them embeds text:
the training task runs the model, so a loss is a plain formula that tests can check by hand.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``out[i, j] = cos(a[i], b[j])``."""
    return F.normalize(a, p=2, dim=-1) @ F.normalize(b, p=2, dim=-1).T


def _require_labels(labels: torch.Tensor | None, batch_size: int, name: str) -> torch.Tensor:
    if labels is None:
        raise ValueError(f"{name} needs a label on every example")
    if labels.shape[0] != batch_size:
        raise ValueError(f"{name} expects {batch_size} labels, got shape {tuple(labels.shape)}")
    return labels


def _require_columns(embeddings: Sequence[torch.Tensor], count: int, name: str) -> None:
    if len(embeddings) != count:
        raise ValueError(f"{name} needs examples of {count} texts, got {len(embeddings)}")


class BiEncoderLoss(nn.Module, ABC):
    """A loss on sentence embeddings: one (batch, dim) tensor per text column."""

    @abstractmethod
    def forward(self, embeddings: Sequence[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        """Return the scalar loss of one batch."""


class MultipleNegativesRankingLoss(BiEncoderLoss):
    """In-batch negatives (InfoNCE): each anchor must pick its own positive among all batch documents.

    Columns: (anchor, positive, hard negative 1, ...); no labels. With anchors ``a``, documents
    ``d`` = every positive then every hard negative, the loss is the cross-entropy of the rows of
    ``scale * cos(a, d)`` against targets 0..batch-1. ``symmetric`` averages it with the reverse
    direction (each positive must pick its anchor among the anchors), as sentence-transformers'
    MultipleNegativesSymmetricRankingLoss and MNRL with ``directions=("query_to_doc",
    "doc_to_query")``, ``partition_mode="per_direction"`` do.
    """

    def __init__(self, scale: float = 20.0, symmetric: bool = False) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale
        self.symmetric = symmetric

    def forward(self, embeddings: Sequence[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        """Return the mean cross-entropy over the batch's anchors."""
        if len(embeddings) < 2:
            raise ValueError(
                f"MultipleNegativesRankingLoss needs (anchor, positive, ...), got {len(embeddings)}"
            )
        anchors, positives = embeddings[0], embeddings[1]
        documents = torch.cat(list(embeddings[1:]))
        targets = torch.arange(anchors.shape[0], device=anchors.device)
        forward = F.cross_entropy(self.scale * cosine_matrix(anchors, documents), targets)
        if not self.symmetric:
            return forward
        backward = F.cross_entropy(self.scale * cosine_matrix(positives, anchors), targets)
        return (forward + backward) / 2


class CoSENTLoss(BiEncoderLoss):
    """CoSENT: every pair (i, j) with label_i < label_j should have cos_i < cos_j.

    Columns: (sentence1, sentence2); label: a similarity (any scale, only its order counts).
    ``loss = log(1 + sum over label_i < label_j of exp(scale * (cos_i - cos_j)))``.
    """

    def __init__(self, scale: float = 20.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.scale = scale

    def forward(self, embeddings: Sequence[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        """Return the CoSENT loss of the batch."""
        _require_columns(embeddings, 2, "CoSENTLoss")
        labels = _require_labels(labels, embeddings[0].shape[0], "CoSENTLoss").float()
        scores = self.scale * F.cosine_similarity(embeddings[0], embeddings[1], dim=-1)
        differences = scores[:, None] - scores[None, :]  # [i, j] = s_i - s_j
        ordered = labels[:, None] < labels[None, :]  # pairs where i should score below j
        terms = differences[ordered]
        return torch.logsumexp(torch.cat([terms.new_zeros(1), terms]), dim=0)


class CosineSimilarityLoss(BiEncoderLoss):
    """Mean squared error between cos(sentence1, sentence2) and the label (a similarity in 0..1)."""

    def forward(self, embeddings: Sequence[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        """Return the MSE of the cosines against the labels."""
        _require_columns(embeddings, 2, "CosineSimilarityLoss")
        labels = _require_labels(labels, embeddings[0].shape[0], "CosineSimilarityLoss").float()
        cosines = F.cosine_similarity(embeddings[0], embeddings[1], dim=-1)
        return F.mse_loss(cosines, labels.view(-1))


class MSELoss(BiEncoderLoss):
    """Distillation: every column's embedding should equal the label vector (the teacher's embedding).

    The loss is the mean over columns of each column's mean squared error, so for the usual
    (source, translation) examples both the source and its translation are pulled to the teacher's
    embedding of the source.
    """

    def forward(self, embeddings: Sequence[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        """Return the mean over columns of MSE(embedding, label vector)."""
        if not embeddings:
            raise ValueError("MSELoss needs at least one text column")
        batch, width = embeddings[0].shape
        targets = _require_labels(labels, batch, "MSELoss")
        if targets.ndim != 2 or targets.shape[1] != width:
            raise ValueError(
                f"MSELoss needs label vectors of width {width}, got shape {tuple(targets.shape)}"
            )
        return torch.stack([F.mse_loss(column, targets.to(column.dtype)) for column in embeddings]).mean()


class MatryoshkaLoss(BiEncoderLoss):
    """Applies ``loss`` to the embeddings cut to each of ``dims`` (and L2-normalized), weighted and summed.

    As in sentence-transformers, the cut embeddings are normalized. Label vectors as wide as the
    embeddings (distillation targets) are cut and normalized too, so that student and teacher are
    compared in the same space; sentence-transformers cuts them without normalizing.
    """

    def __init__(
        self, loss: BiEncoderLoss, dims: Sequence[int], weights: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        if not dims or any(d < 1 for d in dims):
            raise ValueError(f"dims must be a non-empty list of positive widths, got {list(dims)}")
        weights = [1.0] * len(dims) if weights is None else list(weights)
        if len(weights) != len(dims):
            raise ValueError(f"got {len(weights)} weights for {len(dims)} dims")
        self.loss = loss
        self.dims = tuple(int(d) for d in dims)
        self.weights = tuple(float(w) for w in weights)

    def forward(self, embeddings: Sequence[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        """Return the weighted sum of the inner loss at every width."""
        width = embeddings[0].shape[-1]
        if max(self.dims) > width:
            raise ValueError(f"MatryoshkaLoss dims {self.dims} exceed the embedding width {width}")
        vector_labels = labels is not None and labels.ndim == 2 and labels.shape[1] == width
        total = embeddings[0].new_zeros(())
        for dim, weight in zip(self.dims, self.weights, strict=True):
            cut = [F.normalize(e[:, :dim], p=2, dim=-1) for e in embeddings]
            cut_labels = (
                F.normalize(labels[:, :dim], p=2, dim=-1) if vector_labels and labels is not None else labels
            )
            total = total + weight * self.loss(cut, cut_labels)
        return total


class CrossEncoderLoss(nn.Module, ABC):
    """A loss on a cross-encoder's (batch, num_labels) logits."""

    @abstractmethod
    def forward(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Return the scalar loss of one batch."""


class BinaryCrossEntropyLoss(CrossEncoderLoss):
    """Binary cross-entropy on one logit per pair; labels are 0/1 or soft scores in [0, 1].

    For STS, label a pair with its score / 5. ``pos_weight`` weighs the positive term (e.g. the
    ratio of negatives to positives for unbalanced reranking data).
    """

    def __init__(self, pos_weight: float | None = None) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def forward(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Return the mean binary cross-entropy with logits."""
        if logits.ndim != 2 or logits.shape[1] != 1:
            raise ValueError(
                f"BinaryCrossEntropyLoss needs a model with one label, got logits {tuple(logits.shape)}"
            )
        targets = _require_labels(labels, logits.shape[0], "BinaryCrossEntropyLoss").float().view(-1)
        if bool(((targets < 0) | (targets > 1)).any()):
            raise ValueError(
                "BinaryCrossEntropyLoss needs labels in [0, 1]; scale scores first (e.g. STS / 5)"
            )
        pos_weight = None if self.pos_weight is None else logits.new_tensor(self.pos_weight)
        return F.binary_cross_entropy_with_logits(logits.view(-1), targets, pos_weight=pos_weight)


class CrossEntropyLoss(CrossEncoderLoss):
    """Cross-entropy over several labels; each example's label is a class index 0..num_labels-1."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Return the mean cross-entropy."""
        if logits.ndim != 2 or logits.shape[1] < 2:
            raise ValueError(
                f"CrossEntropyLoss needs a model with several labels, got logits {tuple(logits.shape)}"
            )
        targets = _require_labels(labels, logits.shape[0], "CrossEntropyLoss")
        if targets.is_floating_point():
            raise ValueError("CrossEntropyLoss needs integer class labels")
        if bool(((targets < 0) | (targets >= logits.shape[1])).any()):
            raise ValueError(f"CrossEntropyLoss labels must be in 0..{logits.shape[1] - 1}")
        return F.cross_entropy(logits, targets)
