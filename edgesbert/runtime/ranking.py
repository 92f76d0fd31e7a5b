"""``predict`` and ``rank`` written once, for the runtime and the PyTorch reference alike.

A subclass only says how to compute the logits of one batch of text pairs (``_logits``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from edgesbert.runtime.batching import BatchRunner, progress
from edgesbert.runtime.inputs import as_one_text, as_pairs, as_texts, naming_invalid_text
from edgesbert.runtime.manifest import Activation


@dataclass(frozen=True)
class RankResult:
    """One ranked document: its index in the input list, its score and, if asked for, its text."""

    corpus_id: int
    score: float
    text: str | None = None


def activate(logits: np.ndarray, activation: Activation) -> np.ndarray:
    """Apply a cross-encoder's activation to (n, labels) logits."""
    if activation is Activation.SIGMOID:
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    if activation is Activation.TANH:
        return np.tanh(logits)
    if activation is Activation.SOFTMAX:
        return softmax(logits)
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, computed stably."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


class PairScorer(BatchRunner, ABC):
    """A model that scores text pairs, with sentence-transformers' CrossEncoder semantics."""

    num_labels: int
    activation: Activation
    max_seq_length: int

    @abstractmethod
    def _logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """Score one batch: float32 logits (len(pairs), num_labels)."""

    def predict(
        self,
        pairs: tuple[str, str] | Iterable[Sequence[str]] | np.ndarray,
        *,
        batch_size: int = 32,
        activation_fn: Activation | str | None = None,
        apply_softmax: bool = False,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """Score one pair (returns a scalar or a label vector) or a list of pairs.

        Scores are the logits after ``activation_fn``, by default the model's own (sigmoid for one
        label by default; "identity" gives the raw logits); with several labels, ``apply_softmax`` turns
        each row into probabilities. Pairs longer than ``max_seq_length`` tokens are truncated, the
        longer text first.

        ``pairs`` is one pair (a tuple or list of two strings), or a list, tuple or other iterable of
        pairs (an iterator is read once), or an (n, 2) numpy array of strings. A text that is not valid
        Unicode raises a ValueError naming it and the character at fault.
        """
        items, single = as_pairs(pairs)
        try:
            activation = self.activation if activation_fn is None else Activation(activation_fn)
        except ValueError:
            names = [a.value for a in Activation]
            raise ValueError(f"activation_fn must be one of {names} or None, got {activation_fn!r}") from None
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        with naming_invalid_text(items, "pairs", single):
            logits = self._all_logits(items, batch_size, show_progress_bar)
        scores = activate(logits, activation)
        if apply_softmax and self.num_labels > 1:
            scores = softmax(scores)
        if self.num_labels == 1:
            scores = scores[:, 0]
        return scores[0] if single else scores

    def _all_logits(self, items: list[tuple[str, str]], batch_size: int, show_progress: bool) -> np.ndarray:
        """Logits of ``items`` in batches (``batch_indices``); float32 (len(items), num_labels)."""
        logits = np.empty((len(items), self.num_labels), dtype=np.float32)
        batches = self.batch_indices(self._lengths(items), batch_size)
        results = self._map_batches(self._logits, ([items[i] for i in index] for index in batches))
        for index, scores in zip(batches, progress(results, len(batches), show_progress), strict=True):
            logits[index] = scores
        return logits

    def rank(
        self,
        query: str,
        documents: Iterable[str],
        *,
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: bool = False,
    ) -> list[RankResult]:
        """Score ``query`` against every document and return them best first."""
        if self.num_labels != 1:
            raise ValueError(f"rank needs a model with one output label; this one has {self.num_labels}")
        query = as_one_text(query, "query")
        docs, _ = as_texts(documents, "documents")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        pairs = [(query, doc) for doc in docs]
        with naming_invalid_text(docs, "documents"):
            scores = self.predict(pairs, batch_size=batch_size, show_progress_bar=show_progress_bar)
        best = np.argsort(-scores, kind="stable")[:top_k]
        return [RankResult(int(i), float(scores[i]), docs[i] if return_documents else None) for i in best]
