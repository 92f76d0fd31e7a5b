"""The torch-free runtime: run an exported model folder with tokenizers, numpy and one backend.

    from edgesbert.runtime import load
    model = load("exported/all-MiniLM-L6-v2")
    embeddings = model.encode(["A sentence.", "Another one."])

This package never imports torch, transformers, optimum, onnx or the exporter.
"""

from __future__ import annotations

from edgesbert.runtime.backends import Device, available_backends
from edgesbert.runtime.encoding import SentenceEncoder
from edgesbert.runtime.manifest import Manifest
from edgesbert.runtime.models import BiEncoder, CrossEncoder, load
from edgesbert.runtime.precision import OutputPrecision, quantize_embeddings
from edgesbert.runtime.ranking import PairScorer, RankResult

__all__ = [
    "BiEncoder",
    "CrossEncoder",
    "Device",
    "Manifest",
    "OutputPrecision",
    "PairScorer",
    "RankResult",
    "SentenceEncoder",
    "available_backends",
    "load",
    "quantize_embeddings",
]
