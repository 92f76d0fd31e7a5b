"""The two models of the app, loaded from exported folders with the torch-free runtime.

The int8 variant of each folder is used when the folder has one (one whose output does not depend on
the batch first; the reranker's int8 variant moves scores by at most ~4e-4 with its batch, which leaves
rankings of 50 paragraphs as they are), a static token table (``export --static``) only when asked for by
name (``--variant static``: numpy alone, far faster, less accurate). Both threads (indexing, search) share
the bi-encoder; a lock lets one of them run it at a time.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edgesbert.errors import EdgesbertError
from edgesbert.runtime import BiEncoder, CrossEncoder, load
from edgesbert.runtime.manifest import GraphVariant, Manifest, ModelKind, Precision


class ModelError(Exception):
    """A model folder that cannot be used; the message names it and says why."""


def _int8_variant(folder: Path, kind: ModelKind) -> str | None:
    """The folder's int8 variant (else None: its default); ModelError if it holds no ``kind``."""
    try:
        manifest = Manifest.load(folder)
    except (OSError, EdgesbertError) as e:
        raise ModelError(f"cannot load the model in {folder}: {e}") from e
    if manifest.kind is not kind:
        raise ModelError(f"{folder} holds a {manifest.kind.value}, not a {kind.value}")
    graphs = [v for v in manifest.variants if v.precision is Precision.INT8 and not v.static]
    int8 = sorted(graphs, key=_batch_dependent)
    return int8[0].name if int8 else None


def _open(
    folder: Path, kind: ModelKind, cache_dir: Path | None, variant: str | None = None
) -> BiEncoder | CrossEncoder:
    """Load ``folder``'s ``variant``, else its int8 variant, else its default, with the runtime."""
    variant = variant or _int8_variant(folder, kind)
    try:
        return load(folder, variant=variant, cache_dir=cache_dir)
    except (OSError, ValueError, EdgesbertError) as e:
        raise ModelError(f"cannot load the model in {folder}: {e}") from e


def _batch_dependent(variant: GraphVariant) -> bool:
    return variant.batch_dependent


class Engine:
    """The bi-encoder (required) and the cross-encoder (optional; loaded on the first rerank).

    ``cache_dir`` keeps OpenVINO's compiled graphs, which makes later starts load faster; ``variant`` names
    the bi-encoder's variant to run (e.g. "static"), instead of its int8 one.
    """

    def __init__(
        self,
        model: Path,
        reranker: Path | None = None,
        cache_dir: Path | None = None,
        variant: str | None = None,
    ) -> None:
        encoder = _open(model, ModelKind.BI_ENCODER, cache_dir, variant)
        assert isinstance(encoder, BiEncoder)  # for mypy: the manifest said so
        self.encoder = encoder
        if reranker is not None:
            _int8_variant(reranker, ModelKind.CROSS_ENCODER)  # a wrong folder is refused now, not later
        self.reranker_folder, self.cache_dir = reranker, cache_dir
        self._reranker: CrossEncoder | None = None
        self.model_id = f"{model.resolve().name}:{self.encoder.variant.name}"
        self.dimension = int(self.encoder.get_sentence_embedding_dimension() or 0)
        self._lock, self._rerank_lock = threading.Lock(), threading.Lock()

    @property
    def can_rerank(self) -> bool:
        """Whether a cross-encoder was given."""
        return self.reranker_folder is not None

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
        if self.reranker_folder is None:
            raise ModelError("no reranker was given")
        with self._rerank_lock:
            if self._reranker is None:
                cross = _open(self.reranker_folder, ModelKind.CROSS_ENCODER, self.cache_dir)
                assert isinstance(cross, CrossEncoder)
                self._reranker = cross
            return self._reranker.predict([(query, t) for t in texts])

    def close(self) -> None:
        """Release both models."""
        self.encoder.close()
        if self._reranker is not None:
            self._reranker.close()
