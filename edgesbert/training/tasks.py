"""What differs between training a bi-encoder and a cross-encoder: how a batch becomes a loss, and saving.

The trainer's loop is written once against ``TrainingTask``; a task holds the model, its loss,
turns a batch of examples into a loss value, evaluates the model and saves it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from edgesbert.training.data import Example, label_tensor, text_columns
from edgesbert.training.losses import BiEncoderLoss, CrossEncoderLoss
from edgesbert.training.save import save_bi_encoder, save_cross_encoder

if TYPE_CHECKING:
    from edgesbert.reference import BiEncoder, CrossEncoder
    from edgesbert.training.evaluators import EvaluationResult, Evaluator


class TrainingTask(ABC):
    """A model, its loss, and how one batch of examples becomes a loss value."""

    @property
    @abstractmethod
    def model(self) -> Any:
        """The model evaluators receive (a ``SentenceEncoder`` or a ``PairScorer``)."""

    @property
    @abstractmethod
    def network(self) -> nn.Module:
        """The torch module whose parameters are trained."""

    @property
    @abstractmethod
    def loss(self) -> nn.Module:
        """The loss; trained along with the network if it has parameters."""

    @abstractmethod
    def batch_loss(self, batch: Sequence[Example]) -> torch.Tensor:
        """Run the network on ``batch`` and return the scalar loss."""

    @abstractmethod
    def save(self, folder: str | Path) -> Path:
        """Save the model as it is now into ``folder`` (replaced if it exists); return the folder."""

    def evaluate(self, evaluator: Evaluator) -> EvaluationResult:
        """Run ``evaluator`` on the model in eval mode (no dropout), then restore the previous mode."""
        was_training = self.network.training
        self.network.eval()
        try:
            return evaluator.evaluate(self.model)
        finally:
            self.network.train(was_training)


class BiEncoderTask(TrainingTask):
    """Train a ``BiEncoder``: every text column is embedded separately and the loss reads the embeddings."""

    def __init__(self, model: BiEncoder, loss: BiEncoderLoss) -> None:
        if not isinstance(loss, BiEncoderLoss):
            raise TypeError(f"a bi-encoder trains with a BiEncoderLoss, got {type(loss).__name__}")
        self._model = model
        self._loss = loss.to(model.device)

    @property
    def model(self) -> BiEncoder:
        """The bi-encoder being trained."""
        return self._model

    @property
    def network(self) -> nn.Module:
        """Transformer, pooling, dense layers and normalization."""
        return self._model.network

    @property
    def loss(self) -> BiEncoderLoss:
        """The loss on the embeddings."""
        return self._loss

    def batch_loss(self, batch: Sequence[Example]) -> torch.Tensor:
        """Embed each column of ``batch`` and apply the loss."""
        embeddings = [self.network(**self._model.tokenize(column)) for column in text_columns(batch)]
        return self._loss(embeddings, label_tensor(batch, self._model.device))

    def save(self, folder: str | Path) -> Path:
        """Save as a sentence-transformers folder."""
        return save_bi_encoder(self._model, folder)


class CrossEncoderTask(TrainingTask):
    """Train a ``CrossEncoder``: each example is a (text, text) pair scored in one pass."""

    def __init__(self, model: CrossEncoder, loss: CrossEncoderLoss) -> None:
        if not isinstance(loss, CrossEncoderLoss):
            raise TypeError(f"a cross-encoder trains with a CrossEncoderLoss, got {type(loss).__name__}")
        self._model = model
        self._loss = loss.to(model.device)

    @property
    def model(self) -> CrossEncoder:
        """The cross-encoder being trained."""
        return self._model

    @property
    def network(self) -> nn.Module:
        """The sequence-classification transformer."""
        return self._model.network

    @property
    def loss(self) -> CrossEncoderLoss:
        """The loss on the logits."""
        return self._loss

    def batch_loss(self, batch: Sequence[Example]) -> torch.Tensor:
        """Score the pairs of ``batch`` and apply the loss to the logits."""
        columns = text_columns(batch)
        if len(columns) != 2:
            raise ValueError(f"cross-encoder examples are (text, text) pairs, got {len(columns)} texts")
        logits = self.network(**self._model.tokenize(list(zip(columns[0], columns[1], strict=True))))
        return self._loss(logits, label_tensor(batch, self._model.device))

    def save(self, folder: str | Path) -> Path:
        """Save as a Hugging Face sequence-classification folder."""
        return save_cross_encoder(self._model, folder)
