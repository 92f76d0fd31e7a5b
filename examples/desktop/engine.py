"""The two models of the app, loaded from exported folders with the torch-free runtime.

The int8 variant of each folder is used when the folder has one (one whose output does not depend on
the batch first; the reranker's int8 variant moves scores by at most ~4e-4 with its batch, which leaves
rankings of 50 paragraphs as they are). Both threads (indexing, search) share
the bi-encoder; a lock lets one of them run it at a time.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edgesbert.errors import EdgesbertError
from edgesbert.runtime import BiEncoder, CrossEncoder, load
from edgesbert.runtime.manifest import GraphVariant, Manifest, Precision


class ModelError(Exception):
    """A model folder that cannot be used; the message names it and says why."""


def _open(folder: Path, kind: type[BiEncoder] | type[CrossEncoder]) -> BiEncoder | CrossEncoder:
    """Load ``folder``'s int8 variant (else its default) with the runtime, as a ``kind``."""
    try:
        manifest = Manifest.load(folder)
        int8 = sorted((v for v in manifest.variants if v.precision is Precision.INT8), key=_batch_dependent)
        model = load(folder, variant=int8[0].name if int8 else None)
    except (OSError, ValueError, EdgesbertError) as e:
        raise ModelError(f"cannot load the model in {folder}: {e}") from e
    if not isinstance(model, kind):
        model.close()
        raise ModelError(f"{folder} holds a {manifest.kind.value}, not a {kind.__name__}")
    return model


def _batch_dependent(variant: GraphVariant) -> bool:
    return variant.batch_dependent


class Engine:
    """The bi-encoder (required) and the cross-encoder (optional, for reranking)."""

    def __init__(self, model: Path, reranker: Path | None = None) -> None:
        encoder = _open(model, BiEncoder)
        assert isinstance(encoder, BiEncoder)  # for mypy: _open checked it
        self.encoder = encoder
        self.reranker: CrossEncoder | None = None
        if reranker is not None:
            cross = _open(reranker, CrossEncoder)
            assert isinstance(cross, CrossEncoder)
            self.reranker = cross
        self.model_id = f"{model.resolve().name}:{self.encoder.variant.name}"
        self.dimension = int(self.encoder.get_sentence_embedding_dimension() or 0)
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 embeddings of ``texts`` (documents)."""
        with self._lock:
            return self.encoder.encode_document(texts, normalize_embeddings=True, batch_size=32)

    def embed_query(self, query: str) -> np.ndarray:
        """The unit-length embedding of one query, shape (dimension,)."""
        with self._lock:
            return self.encoder.encode_query([query], normalize_embeddings=True)[0]

    def rerank(self, query: str, texts: list[str]) -> np.ndarray:
        """The cross-encoder's score of each of ``texts`` for ``query``."""
        if self.reranker is None:
            raise ModelError("no reranker was loaded")
        return self.reranker.predict([(query, t) for t in texts])

    def close(self) -> None:
        """Release both models."""
        self.encoder.close()
        if self.reranker is not None:
            self.reranker.close()
