"""The exporter, imported as ``edgesbert.exporters``: PyTorch model in, validated model folder out.

    from edgesbert.exporters import export_model
    export_model("sentence-transformers/all-MiniLM-L6-v2", "exported/all-MiniLM-L6-v2")

Needs ``pip install "edgesbert[export]"``.
"""

from __future__ import annotations

from edgesbert.errors import require

require("torch", "export")
require("onnx", "export")

from edgesbert.exporters.pipeline import export_model, load_reference  # noqa: E402
from edgesbert.exporters.plans import BACKENDS, QUANTIZATIONS, Quantization, onnx_steps  # noqa: E402
from edgesbert.exporters.validation import Tolerance  # noqa: E402

__all__ = [
    "BACKENDS",
    "QUANTIZATIONS",
    "Quantization",
    "Tolerance",
    "export_model",
    "load_reference",
    "onnx_steps",
]
