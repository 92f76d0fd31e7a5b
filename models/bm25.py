r"""Okapi BM25 as a pair scorer, the lexical baseline of the TREC QA reranker.

Tokens: lower-cased runs of letters and digits (``\w+``), no stop words, no stemming. A document's
score for a query is ``sum over query tokens t of idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b *
len / avglen))`` with ``idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))`` (Lucene's non-negative idf),
where N, df and avglen come from a fixed collection of documents. Repeated query tokens count once
per occurrence, as in the usual ``rank_bm25``-style sum.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

from edgesbert.runtime.manifest import Activation
from edgesbert.runtime.ranking import PairScorer

TOKEN = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return TOKEN.findall(text.lower())


class BM25(PairScorer):
    """Scores (query, document) pairs with BM25 statistics of ``collection``; a one-label PairScorer."""

    num_labels = 1
    activation = Activation.IDENTITY
    max_seq_length = 1_000_000

    def __init__(self, collection: Iterable[str], k1: float = 1.5, b: float = 0.75) -> None:
        documents = [tokenize(text) for text in dict.fromkeys(collection)]
        if not documents:
            raise ValueError("BM25 needs a non-empty collection")
        self.k1, self.b = k1, b
        self.documents = len(documents)
        self.average_length = sum(len(d) for d in documents) / len(documents)
        self.document_frequency = Counter(token for d in documents for token in set(d))

    def idf(self, token: str) -> float:
        """ln(1 + (N - df + 0.5) / (df + 0.5))."""
        df = self.document_frequency.get(token, 0)
        return math.log(1 + (self.documents - df + 0.5) / (df + 0.5))

    def score(self, query: str, document: str) -> float:
        """The BM25 score of ``document`` for ``query``."""
        tokens = tokenize(document)
        counts = Counter(tokens)
        norm = self.k1 * (1 - self.b + self.b * len(tokens) / self.average_length)
        total = 0.0
        for token in tokenize(query):
            tf = counts.get(token, 0)
            if tf:
                total += self.idf(token) * tf * (self.k1 + 1) / (tf + norm)
        return total

    def _logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        return np.array([[self.score(q, d)] for q, d in pairs], dtype=np.float32)
