"""An HTTP server on the runtime that speaks text-embeddings-inference's, OpenAI's and Cohere's APIs.

    edgesbert serve exported/all-MiniLM-L6-v2        # or, in Python:
    from edgesbert.serve import ServerSettings, ModelSource, create_app

Concurrent requests are merged into batches by a token budget (``batching``); each API's routes live in
one module of ``routes``. Needs the ``serve`` extra: pip install "edgesbert[serve]".
"""

from __future__ import annotations

from edgesbert.errors import require

require("fastapi", "serve")
require("uvicorn", "serve")

from edgesbert.serve.app import create_app  # noqa: E402
from edgesbert.serve.server import serve  # noqa: E402
from edgesbert.serve.settings import ModelSource, ServerSettings  # noqa: E402

__all__ = ["ModelSource", "ServerSettings", "create_app", "serve"]
