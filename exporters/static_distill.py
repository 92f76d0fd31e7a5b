"""Distill a static token table from a bi-encoder: model2vec's method, on the model as edgesbert exports it.

1. Every token of the vocabulary goes through the whole reference as a text of one token: the special
   tokens around it, the model's default prompt before it (if it has one), then the model's own pooling
   (mean, CLS, ...) and Dense layers, up to its final normalization (a token vector's length says how much
   it weighs). model2vec takes the transformer's mean hidden state, which ignores a model's CLS pooling,
   Dense layers and prompts.
2. The token vectors are centred on their mean and projected on their principal axes, after the first
   ``dropped_axes`` ones (all-but-the-top, Mu and Viswanath 2018: the top axes hold what every token shares,
   which drowns differences in a sum). model2vec keeps the first 256.
3. Each row is weighted by how informative its token is, SIF's ``a / (a + p)`` (Arora et al., 2017), with
   the token's probability ``p`` estimated from its rank in the vocabulary by Zipf's law, as model2vec does;
   tokens that text never produces (BERT's ``[unused12]``) take no rank.

Choices measured on all-MiniLM-L6-v2, STSb *dev* (1,500 pairs), 256 dimensions, against model2vec 0.9's
own distillation at 0.7900: the model's normalized embeddings as token vectors 0.7800, before normalization
0.7911; then dropping the top 2, 4, 8, 16 axes 0.7982, 0.8017, 0.8042, 0.8016 (so ``hidden size // 48``);
SIF ``a`` 3e-5, 1e-4, 3e-4: 0.7905, 0.7911, 0.7757; token frequencies counted on English text instead of
Zipf's law did not help (TREC questions and answers 0.7909, STSb train sentences 0.6900: a corpus's own
frequent content words lose their weight).

Special and unused tokens get zero rows: the runtime's tokenizer adds the special ones, where model2vec and
sentence-transformers' StaticEmbedding do not, so a zero row keeps the three equal. Each step is
deterministic: the same model gives the same table, byte for byte, on the same machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer

from edgesbert.errors import ExportError
from edgesbert.reference import BiEncoder

#: SIF's ``a``: a token of probability ``a`` gets weight 1/2 (model2vec's default, 1e-4)
SIF_COEFFICIENT = 1e-4
#: tokens that text never produces: no row, no rank (model2vec's default pattern)
UNUSED_TOKENS = re.compile(r"\[unused\d+\]")
#: tokens per forward pass; every input has the same few tokens, so nothing is padded
BATCH_SIZE = 512
#: token vectors per step of the covariance and projection (float64 copies stay small for big vocabularies)
CHUNK = 8192


@dataclass(frozen=True)
class Distilled:
    """A distilled table and the projection that made it, to map the reference's embeddings alike."""

    rows: np.ndarray  # float32 (vocabulary, dimensions): weighted token vectors; special tokens' rows zero
    mean: np.ndarray  # float64 (model dimension,): the token vectors' mean
    axes: np.ndarray  # float64 (dimensions, model dimension): the principal axes used, orthonormal rows

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """``embeddings`` of the reference in the table's space: centred as the tokens were, on its axes."""
        return ((embeddings - self.mean) @ self.axes.T).astype(np.float32)


def dropped_axes(hidden: int) -> int:
    """How many top principal axes to leave out for a model of ``hidden`` dimensions (see the module)."""
    return hidden // 48


def table_dimensions(hidden: int, wanted: int) -> int:
    """The table's width: ``wanted``, or what the model has left after the dropped axes."""
    return max(1, min(wanted, hidden - dropped_axes(hidden)))


def distill(reference: BiEncoder, tokenizer: Tokenizer, dimensions: int) -> Distilled:
    """The table of ``reference`` over the vocabulary of ``tokenizer`` (the export's ``tokenizer.json``)."""
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    skipped = np.zeros(size, dtype=bool)
    skipped[
        [i for i, token in tokenizer.get_added_tokens_decoder().items() if token.special and i < size]
    ] = True
    skipped[
        [i for token, i in tokenizer.get_vocab().items() if UNUSED_TOKENS.fullmatch(token) and i < size]
    ] = True
    ids = np.flatnonzero(~skipped)
    hidden = reference.embedding_dimension
    if len(ids) <= dimensions + dropped_axes(hidden):
        raise ExportError(
            f"the vocabulary has {len(ids)} ordinary tokens, too few for a static table of {dimensions} "
            "dimensions; choose fewer"
        )
    vectors = token_vectors(reference, tokenizer, ids)
    mean, axes = principal_axes(vectors, dropped_axes(hidden), dimensions)
    weights = sif_weights(len(ids))
    rows = np.zeros((size, dimensions), dtype=np.float32)
    for start in range(0, len(ids), CHUNK):
        part = slice(start, start + CHUNK)
        rows[ids[part]] = (vectors[part] - mean) @ axes.T * weights[part, None]
    return Distilled(rows, mean, axes)


def token_vectors(reference: BiEncoder, tokenizer: Tokenizer, ids: np.ndarray) -> np.ndarray:
    """float32 (len(ids), model dimension): each token's embedding by the reference, as a one-token text.

    Before the model's final normalization, if it has one.
    """
    before, after = special_tokens_around(tokenizer)
    prompt = tokenizer.encode(reference.prompt_text(), add_special_tokens=False).ids
    prefix, suffix = [*before, *prompt], after
    device = reference.device
    out = np.empty((len(ids), reference.embedding_dimension), dtype=np.float32)
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        rows = [[*prefix, int(i), *suffix] for i in batch]
        input_ids = torch.tensor(rows, dtype=torch.long, device=device)
        features = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        if "token_type_ids" in reference.input_names:
            features["token_type_ids"] = torch.zeros_like(input_ids)
        out[start : start + len(batch)] = before_normalization(reference, features)
    return out


def sentence_vectors(reference: BiEncoder, texts: list[str]) -> np.ndarray:
    """float32 (len(texts), model dimension): the reference's embeddings of ``texts``, before normalization.

    With the model's default prompt before each text: what a sum of its token vectors stands for.
    """
    prompt = reference.prompt_text()
    parts = [
        before_normalization(reference, reference.tokenize([prompt + t for t in texts[start : start + 64]]))
        for start in range(0, len(texts), 64)
    ]
    return np.concatenate(parts) if parts else np.empty((0, reference.embedding_dimension), np.float32)


def before_normalization(reference: BiEncoder, features: dict[str, torch.Tensor]) -> np.ndarray:
    """The reference's pooling and Dense layers over ``features`` (token ids, mask): float32 (batch, dim)."""
    network, mask = reference.network, features["attention_mask"]
    with torch.inference_mode():
        tokens = network.token_embeddings(features["input_ids"], mask, features.get("token_type_ids"))
        return network.dense(network.pool(tokens, mask)).float().cpu().numpy()


def special_tokens_around(tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text's own tokens ([CLS] ... [SEP], <s> ... </s>)."""
    plain = tokenizer.encode("a", add_special_tokens=False).ids
    full = tokenizer.encode("a", add_special_tokens=True).ids
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return full[:start], full[start + len(plain) :]
    raise ExportError("cannot find where the tokenizer puts a text's tokens among its special tokens")


def principal_axes(vectors: np.ndarray, skip: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``vectors`` and their principal axes ``skip`` to ``skip + count`` (rows, by variance).

    Each axis points so that its largest coordinate is positive, which makes the result deterministic.
    """
    mean = vectors.mean(axis=0, dtype=np.float64)
    scatter = np.zeros((vectors.shape[1], vectors.shape[1]))
    for start in range(0, len(vectors), CHUNK):
        centred = vectors[start : start + CHUNK] - mean
        scatter += centred.T @ centred
    variances, vecs = np.linalg.eigh(scatter / (len(vectors) - 1))
    axes = vecs[:, np.argsort(variances)[::-1][skip : skip + count]].T
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    return mean, axes * signs[:, None]


def sif_weights(count: int, coefficient: float = SIF_COEFFICIENT) -> np.ndarray:
    """SIF weights of ``count`` tokens in vocabulary order, their probabilities estimated by Zipf's law.

    Vocabularies list frequent tokens first, roughly: the token of rank r has probability proportional to
    1 / (r + 2) (rank 0 would be infinitely likely).
    """
    zipf = 1.0 / np.arange(2, count + 2)
    probability = zipf / zipf.sum()
    return coefficient / (coefficient + probability)
