"""``encode`` and ``similarity`` written once, for the runtime and the PyTorch reference alike.

A subclass only says how to embed one batch of texts (``_embed``); batching sorted by length, prompts,
truncation of dimensions, normalization, output precision and the progress bar live here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from edgesbert.runtime.batching import BatchRunner, progress
from edgesbert.runtime.chunking import LongTexts, chunk_texts, long_texts_mode, mean_of_chunks, too_long
from edgesbert.runtime.inputs import as_one_text, as_texts, naming_invalid_text
from edgesbert.runtime.manifest import SimilarityFunction
from edgesbert.runtime.precision import OutputPrecision, empty_embeddings, quantize_embeddings
from edgesbert.runtime.ranking import RankResult
from edgesbert.runtime.similarity import normalize
from edgesbert.runtime.similarity import similarity as _similarity
from edgesbert.runtime.similarity import similarity_pairwise as _similarity_pairwise

#: prompt names ``encode_query`` and ``encode_document`` look for, in order (sentence-transformers' own)
QUERY_PROMPTS = ("query",)
DOCUMENT_PROMPTS = ("document", "passage", "corpus")


class SentenceEncoder(BatchRunner, ABC):
    """A model that embeds sentences, with sentence-transformers' ``encode`` semantics."""

    prompts: Mapping[str, str]
    default_prompt_name: str | None
    similarity_fn_name: SimilarityFunction
    max_seq_length: int

    @property
    @abstractmethod
    def embedding_dimension(self) -> int:
        """Width of the embeddings the model produces (before ``truncate_dim``)."""

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embed one batch: float32 array (len(texts), embedding_dimension)."""

    def encode(
        self,
        sentences: str | Iterable[str],
        *,
        batch_size: int = 32,
        prompt_name: str | None = None,
        prompt: str | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        precision: OutputPrecision | str = OutputPrecision.FLOAT32,
        show_progress_bar: bool = False,
        long_texts: LongTexts | str = LongTexts.TRUNCATE,
        chunk_overlap: int = 0,
    ) -> np.ndarray:
        """Embed one sentence (returns a vector) or a list of sentences (returns a matrix).

        Args:
            sentences: a string, or a list, tuple, numpy array or other iterable of strings (an iterator
                is read once); an empty list gives an empty (0, dim) matrix. A text that is not valid
                Unicode raises a ValueError naming it and the character at fault.
            batch_size: texts per forward pass; texts are sorted by length to pad less.
            prompt_name: key of ``prompts`` whose text is put before every sentence.
            prompt: a prompt text, used instead of ``prompt_name``.
            normalize_embeddings: scale each embedding to unit length (after ``truncate_dim``).
            truncate_dim: keep only the first dimensions (Matryoshka models).
            precision: "float32", "int8", "uint8", "binary" or "ubinary".
            show_progress_bar: show a progress bar over batches.
            long_texts: what becomes of a text longer than ``max_seq_length`` tokens: "truncate" (its
                first tokens, as sentence-transformers does), "chunk" (windows of the model's own tokens,
                ``chunk_overlap`` shared between neighbours, averaged weighted by their tokens) or
                "error" (ValueError naming the text).
            chunk_overlap: tokens each chunk shares with the next (``long_texts="chunk"``).
        """
        texts, single = as_texts(sentences)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if truncate_dim is not None and not 0 < truncate_dim <= self.embedding_dimension:
            raise ValueError(f"truncate_dim must be in 1..{self.embedding_dimension}, got {truncate_dim}")
        precision = OutputPrecision(precision)
        prefix = self.prompt_text(prompt_name, prompt)
        dimension = truncate_dim or self.embedding_dimension
        if not texts:
            return empty_embeddings(dimension, precision)

        with naming_invalid_text(texts, "sentences", single):
            mode = long_texts_mode(long_texts)
            if mode is LongTexts.TRUNCATE:
                embeddings = self._embed_all([prefix + text for text in texts], batch_size, show_progress_bar)
            else:
                embeddings = self._embed_long(
                    texts, prefix, mode, chunk_overlap, batch_size, show_progress_bar
                )

        embeddings = embeddings[:, :dimension]
        if normalize_embeddings:
            embeddings = normalize(embeddings)
        embeddings = quantize_embeddings(embeddings, precision)
        return embeddings[0] if single else embeddings

    def encode_query(self, sentences: str | Iterable[str], **kwargs: Any) -> np.ndarray:
        """``encode`` with the model's ``query`` prompt, or none (not the default prompt) if it has none.

        As sentence-transformers' ``encode_query``; a ``prompt_name`` or ``prompt`` given here wins.
        """
        return self.encode(sentences, **self._with_prompt(QUERY_PROMPTS, kwargs))

    def encode_document(self, sentences: str | Iterable[str], **kwargs: Any) -> np.ndarray:
        """``encode`` with the model's ``document``, else ``passage``, else ``corpus`` prompt, else none.

        sentence-transformers 6 gives every model a blank ``document`` prompt, so there a model with only a
        ``passage`` prompt embeds documents without it; here the passage prompt is used, as in version 5.
        """
        return self.encode(sentences, **self._with_prompt(DOCUMENT_PROMPTS, kwargs))

    def get_sentence_embedding_dimension(self) -> int:
        """Width of the embeddings (sentence-transformers' names for ``embedding_dimension``)."""
        return self.embedding_dimension

    get_embedding_dimension = get_sentence_embedding_dimension

    def _with_prompt(self, names: tuple[str, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Pick the first prompt of ``names`` the model has (none if it has none), unless one is given."""
        if kwargs.get("prompt_name") is None and kwargs.get("prompt") is None:
            found = next((name for name in names if name in self.prompts), None)
            kwargs = {**kwargs, "prompt_name": found} if found else {**kwargs, "prompt": ""}
        return kwargs

    def _embed_long(
        self,
        texts: list[str],
        prefix: str,
        mode: LongTexts,
        overlap: int,
        batch_size: int,
        progress_bar: bool,
    ) -> np.ndarray:
        """Embed ``texts`` whole where they fit the window, else in chunks (or raise, for ``error``)."""
        spans = self._token_spans(texts)
        window = self.max_seq_length - self._special_tokens() - len(self._token_spans([prefix])[0])
        if mode is LongTexts.ERROR:
            error = too_long(spans, window, "sentences")
            if error is not None:
                raise error
            return self._embed_all([prefix + text for text in texts], batch_size, progress_bar)
        chunks = chunk_texts(spans, [len(text) for text in texts], window, overlap)
        pieces = [prefix + texts[c.source][c.start : c.stop] for c in chunks]
        vectors = mean_of_chunks(self._embed_all(pieces, batch_size, progress_bar), chunks, len(texts))
        return normalize(vectors) if self._normalizes else vectors

    def _token_spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Each text's tokens (no special tokens) as character spans: where long texts are cut."""
        raise NotImplementedError(f"{type(self).__name__} cannot cut long texts; use long_texts='truncate'")

    def _special_tokens(self) -> int:
        """How many special tokens the tokenizer adds to one text."""
        raise NotImplementedError(f"{type(self).__name__} cannot cut long texts; use long_texts='truncate'")

    @property
    def _normalizes(self) -> bool:
        """The model's embeddings have unit length (so a mean of chunks is scaled back to it)."""
        return False

    def _embed_all(self, texts: list[str], batch_size: int, show_progress_bar: bool) -> np.ndarray:
        """Embed ``texts`` in batches (``batch_indices``); float32 (len(texts), embedding_dimension)."""
        embeddings = np.empty((len(texts), self.embedding_dimension), dtype=np.float32)
        batches = self.batch_indices(self._lengths(texts), batch_size)
        results = self._map_batches(self._embed, ([texts[i] for i in index] for index in batches))
        for index, vectors in zip(batches, progress(results, len(batches), show_progress_bar), strict=True):
            embeddings[index] = vectors
        return embeddings

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Matrix of similarities between rows of ``a`` and rows of ``b``, with the model's function."""
        return _similarity(a, b, self.similarity_fn_name)

    def similarity_pairwise(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Similarity of ``a[i]`` and ``b[i]`` for each row, with the model's function."""
        return _similarity_pairwise(a, b, self.similarity_fn_name)

    def rank(
        self,
        query: str,
        documents: Iterable[str],
        *,
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        prompt_name: str | None = None,
        show_progress_bar: bool = False,
    ) -> list[RankResult]:
        """Documents ordered by the model's similarity to ``query``, best first (semantic search).

        ``prompt_name`` applies to the query; documents get the model's default prompt, if any. This embeds
        the documents on every call: for a corpus searched more than once, ``encode`` it once and use
        ``edgesbert.util.semantic_search``.
        """
        query = as_one_text(query, "query")
        docs, _ = as_texts(documents, "documents")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        query_embedding = self.encode([query], prompt_name=prompt_name)
        with naming_invalid_text(docs, "documents"):
            corpus = self.encode(docs, batch_size=batch_size, show_progress_bar=show_progress_bar)
            scores = self.similarity(query_embedding, corpus)[0]
        best = np.argsort(-scores, kind="stable")[:top_k]
        return [RankResult(int(i), float(scores[i]), docs[i] if return_documents else None) for i in best]

    def prompt_text(self, prompt_name: str | None = None, prompt: str | None = None) -> str:
        """The text ``encode`` puts before each sentence: ``prompt``, else the named prompt, else the default.

        An unknown ``prompt_name`` raises ValueError listing the model's prompts.
        """
        if prompt is not None:
            return as_one_text(prompt, "prompt")
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return ""
        if name not in self.prompts:
            known = ", ".join(sorted(self.prompts)) or "none"
            raise ValueError(f"prompt_name {name!r} is not one of this model's prompts ({known})")
        return self.prompts[name]
