"""What the README test's `make demo` wrote in this session, for fixtures that need the same export."""

from __future__ import annotations

from pathlib import Path

import pytest

#: the folders `make demo` writes under exported/: name -> folder, recorded once it has run in this session
DEMO_FOLDERS = pytest.StashKey[dict[str, Path]]()
#: the folders `make demo` writes, under exported/
DEMO_EXPORTS = ("all-MiniLM-L6-v2", "trecqa-reranker-minilm")
