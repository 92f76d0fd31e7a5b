"""The desktop app on sentence-transformers + torch instead of the runtime: the bundle issue 19 compares.

The same window, indexer and search as examples/desktop, with an engine that runs the PyTorch models
through sentence-transformers (all-MiniLM-L6-v2 as packaged, the reranker of models/). PyInstaller's entry
script for the torch bundle (``python -m benchmarks.desktop --torch-pyinstaller PATH``, built by
benchmarks/desktop/bundle.py); not part of the app.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from examples.desktop import app, engine


class TorchEngine:
    """The surface of ``examples.desktop.engine.Engine`` on sentence-transformers' two model classes."""

    def __init__(self, model: Path, reranker: Path | None = None, cache_dir: Path | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.encoder = SentenceTransformer(str(model), device="cpu")
        self.reranker_folder = reranker
        self._reranker: Any = None
        self.model_id = f"sentence-transformers:{model.name}"
        self.dimension = int(self.encoder.get_sentence_embedding_dimension() or 0)
        self._lock = threading.Lock()

    @property
    def can_rerank(self) -> bool:
        return self.reranker_folder is not None

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            return self.encoder.encode(texts, normalize_embeddings=True, batch_size=32, convert_to_numpy=True)

    def embed_query(self, query: str) -> np.ndarray:
        return self.embed([query])[0]

    def rerank(self, query: str, texts: list[str]) -> np.ndarray:
        from sentence_transformers import CrossEncoder

        if self._reranker is None:
            self._reranker = CrossEncoder(str(self.reranker_folder), device="cpu")
        return np.asarray(self._reranker.predict([(query, t) for t in texts]))

    def close(self) -> None:
        """Nothing to release."""


if __name__ == "__main__":
    engine.Engine = TorchEngine  # type: ignore[misc,assignment]
    sys.exit(app.main())
