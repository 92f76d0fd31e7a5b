"""Models with hand-made outputs: an encoder that looks vectors up, a pair scorer that looks logits up."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from edgesbert.runtime.encoding import SentenceEncoder
from edgesbert.runtime.manifest import Activation, SimilarityFunction
from edgesbert.runtime.ranking import PairScorer


def at_angle(degrees: float) -> list[float]:
    """A unit vector in the plane, ``degrees`` from the x axis."""
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


class LookupEncoder(SentenceEncoder):
    """Embeds each text as the vector it is given; counts how often each text was embedded."""

    prompts: Mapping[str, str] = {}
    default_prompt_name = None
    similarity_fn_name = SimilarityFunction.COSINE
    max_seq_length = 128

    def __init__(self, vectors: Mapping[str, Sequence[float]]) -> None:
        self.vectors = {text: np.asarray(v, dtype=np.float32) for text, v in vectors.items()}
        self.calls: dict[str, int] = {}

    @property
    def embedding_dimension(self) -> int:
        return len(next(iter(self.vectors.values())))

    def _embed(self, texts: list[str]) -> np.ndarray:
        for text in texts:
            self.calls[text] = self.calls.get(text, 0) + 1
        return np.stack([self.vectors[text] for text in texts])


class LookupScorer(PairScorer):
    """Scores each pair with the logits it is given."""

    max_seq_length = 128

    def __init__(
        self,
        logits: Mapping[tuple[str, str], float | Sequence[float]],
        activation: Activation = Activation.IDENTITY,
    ) -> None:
        self.logits = {pair: np.atleast_1d(np.asarray(v, dtype=np.float32)) for pair, v in logits.items()}
        self.num_labels = len(next(iter(self.logits.values())))
        self.activation = activation

    def _logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        return np.stack([self.logits[pair] for pair in pairs])
