"""edgesbert: sentence-transformers-style bi-encoders and cross-encoders, exported to the edge.

Three packages: ``edgesbert.runtime`` (torch-free inference from an exported folder),
``edgesbert.reference`` (the PyTorch models, ``pip install "edgesbert[torch]"``) and
``edgesbert.exporters`` (``pip install "edgesbert[export]"``). Importing ``edgesbert`` loads nothing heavy.
"""

from __future__ import annotations

__version__ = "0.1.0"

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
