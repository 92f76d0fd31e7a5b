"""The PyTorch reference models: what every exported graph is validated against.

``BiEncoder`` loads sentence-transformers folders, ``CrossEncoder`` loads Hugging Face
sequence-classification folders; both read safetensors weights and never run remote code.
Needs ``pip install "edgesbert[torch]"``.
"""

from __future__ import annotations

from edgesbert.errors import require

require("torch", "torch")
require("transformers", "torch")

from edgesbert.reference.bi_encoder import BiEncoder, EmbeddingNetwork  # noqa: E402
from edgesbert.reference.cross_encoder import ClassifierNetwork, CrossEncoder  # noqa: E402

__all__ = ["BiEncoder", "ClassifierNetwork", "CrossEncoder", "EmbeddingNetwork"]
