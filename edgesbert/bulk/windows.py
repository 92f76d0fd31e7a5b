"""Documents cut into windows of the model's own tokens: one output row per window (``--chunk-tokens``).

A retrieval pipeline wants each part of a long document as its own vector, with where it came from: the
output then has ``chunk`` (the window's number within its document, from 0) and ``start``/``stop`` (its
character span in the document) beside ``id``. Windows are cut as ``encode(long_texts="chunk")`` cuts them
(``edgesbert.runtime.chunking``); a document that fits one window is one row, the whole text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from edgesbert.runtime.chunking import Chunk, chunk_texts

if TYPE_CHECKING:
    from edgesbert.runtime.tokenizer import TextTokenizer


@dataclass(frozen=True)
class Windows:
    """How to cut documents: the model folder (its tokenizer), window and overlap in tokens, the prompt."""

    folder: Path
    tokens: int
    overlap: int = 0
    prompt_name: str | None = None

    def check(self) -> None:
        """Raise ValueError unless a window and its prompt fit the model (before any work)."""
        room = self._room
        if not 1 <= self.tokens <= room:
            raise ValueError(
                f"chunk_tokens must be in 1..{room} (this model takes {room} tokens besides its special "
                f"tokens and prompt), got {self.tokens}"
            )
        if not 0 <= self.overlap < self.tokens:
            raise ValueError(f"chunk_overlap must be in 0..{self.tokens - 1}, got {self.overlap}")

    def split(self, texts: list[str]) -> list[Chunk]:
        """The windows of ``texts``, in order (``Chunk.source``: the text's position in ``texts``)."""
        spans = [
            [(t.start or 0, t.stop or 0) for t in tokens]
            for tokens in self._tokenizer.tokens(texts, add_special_tokens=False)
        ]
        return chunk_texts(spans, [len(text) for text in texts], self.tokens, self.overlap)

    @cached_property
    def _tokenizer(self) -> TextTokenizer:
        from edgesbert.runtime.manifest import Manifest
        from edgesbert.runtime.tokenizer import TextTokenizer

        manifest = Manifest.load(self.folder)
        return TextTokenizer(self.folder, manifest.tokenizer, manifest.max_seq_length)

    @cached_property
    def _room(self) -> int:
        """Tokens a window may hold: the model's length less its special tokens and the prompt's."""
        from edgesbert.runtime.manifest import Manifest

        manifest = Manifest.load(self.folder)
        prompts = manifest.embedding.prompts if manifest.embedding else {}
        prompt = prompts.get(self.prompt_name, "") if self.prompt_name else ""
        prompt_tokens = len(self._tokenizer.tokens([prompt], add_special_tokens=False)[0]) if prompt else 0
        return manifest.max_seq_length - self._tokenizer.shortest - prompt_tokens
