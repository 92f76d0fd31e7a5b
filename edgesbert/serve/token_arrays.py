"""Token arrays, as OpenAI's embeddings API takes them, turned back into the text they stand for.

The ids are read as ids of the served model's own tokenizer, as TEI and vLLM read them (a client's
tiktoken ids mean nothing in another vocabulary). They are decoded to text, which the model tokenizes
again: what its tokenizer made of a text decodes to a text it tokenizes to the same ids (every STSb test
sentence of 11 languages does, with all-MiniLM-L6-v2's tokenizer), so an array gets the runtime's
embedding of its text. The special tokens the tokenizer puts around each input, and padding, are dropped
before decoding: the model adds its own. Other special tokens (``[UNK]``, ``[MASK]``) are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer

from edgesbert.runtime.manifest import TokenizerSpec
from edgesbert.serve.errors import invalid


class TokenDecoder:
    """The texts that arrays of a model's token ids stand for."""

    def __init__(self, folder: Path, spec: TokenizerSpec) -> None:
        """Read the tokenizer of the model in ``folder``."""
        self._tokenizer = Tokenizer.from_file(str(folder / spec.file))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.vocabulary = self._tokenizer.get_vocab_size(with_added_tokens=True)
        framed = self._tokenizer.encode("a")  # the special tokens around every input
        added = {i for i, special in zip(framed.ids, framed.special_tokens_mask, strict=True) if special}
        self._dropped = frozenset({*added, spec.pad_token_id})

    def texts(self, arrays: Sequence[Sequence[int]], what: str) -> list[str]:
        """The text of each array; 422 naming the array for an id outside the vocabulary or no text at all."""
        kept = []
        for i, ids in enumerate(arrays):
            if not ids:
                raise invalid(f"{what}[{i}] is an empty token array; send token ids, or leave it out")
            if min(ids) < 0 or max(ids) >= self.vocabulary:
                j, bad = next((j, t) for j, t in enumerate(ids) if not 0 <= t < self.vocabulary)
                raise invalid(
                    f"{what}[{i}][{j}] is token id {bad}, outside this model's vocabulary "
                    f"(0..{self.vocabulary - 1}); token arrays hold ids of the served model's own tokenizer"
                )
            kept.append([t for t in ids if t not in self._dropped])
        texts = self._tokenizer.decode_batch(kept, skip_special_tokens=False)
        for i, text in enumerate(texts):
            if not text.strip():
                raise invalid(f"{what}[{i}] holds no text, only special or padding tokens")
        return texts
