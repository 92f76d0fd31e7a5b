"""Token ids of many texts at once, a word at a time from a cache: what a static variant spends its time on.

A static table sums its tokens' rows, so tokenizing is most of its work (all-MiniLM-L6-v2, STSb test:
about 70% of ``encode``). With a BERT WordPiece tokenizer (BertNormalizer, BertPreTokenizer, WordPiece), a
text's tokens are the tokens of its words one after another, where a word is a run between characters the
tokenizer turns into a plain split (spaces, tabs, line breaks, the other Unicode spaces): the normalizer
rewrites each character on its own, and the pre-tokenizer splits there. So each distinct word goes
through the tokenizer once, alone, and is remembered; the split characters are the ones found at load to
split ``a?b`` into the tokens of ``a`` and of ``b``. Other tokenizers (byte-level BPE, SentencePiece) mark
word boundaries inside their tokens and take the ordinary path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

#: the cache's most words; past it, it starts afresh (a corpus's vocabulary rarely comes near)
MOST_WORDS = 1 << 20


class WordIds:
    """A text's token ids without special tokens, from cached words, truncated as the tokenizer truncates."""

    def __init__(self, tokenizer: Tokenizer, splits: str) -> None:
        """``tokenizer`` without padding or truncation; ``splits`` the characters that separate words."""
        self._plain = tokenizer
        self._words = re.compile(f"[^{re.escape(splits)}]+")
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def for_tokenizer(cls, path: Path) -> WordIds | None:
        """The word cache for the tokenizer file at ``path``; None where its tokens do not add up by word."""
        spec = json.loads(path.read_text(encoding="utf-8"))
        kinds = tuple((spec.get(part) or {}).get("type") for part in ("normalizer", "pre_tokenizer", "model"))
        if kinds != ("BertNormalizer", "BertPreTokenizer", "WordPiece"):
            return None
        tokenizer = Tokenizer.from_file(str(path))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        splits = "".join(c for c in _space_like() if _splits(tokenizer, c))
        added = [t["content"] for t in spec.get("added_tokens", [])]
        if " " not in splits or any(c in token for token in added for c in splits):
            return None
        return cls(tokenizer, splits)

    def __call__(self, texts: list[str], limit: int) -> tuple[np.ndarray, np.ndarray]:
        """All the texts' token ids one after another (int64), and how many each has (at most ``limit``)."""
        cache, find = self._cache, self._words.findall
        if len(cache) > MOST_WORDS:
            cache.clear()
        words = [find(text) for text in texts]
        new = list({w for text in words for w in text if w not in cache})
        if new:
            encodings = self._plain.encode_batch_fast(new, add_special_tokens=False)
            for word, encoding in zip(new, encodings, strict=True):
                cache[word] = encoding.ids
        ids: list[int] = []
        counts = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(words):
            start = len(ids)
            for word in text:
                ids += cache[word]
            if len(ids) - start > limit:  # truncated at the end, as the tokenizer does
                del ids[start + limit :]
            counts[i] = len(ids) - start
        return np.array(ids, dtype=np.int64), counts


def _space_like() -> list[str]:
    """Characters a tokenizer may treat as spaces: Python's whitespace, which holds Unicode's separators.

    The last of them is U+3000, the ideographic space. (No ``unicodedata``: the desktop bundle leaves it out.)
    """
    return [c for c in map(chr, range(0x3001)) if c.isspace()]


def _splits(tokenizer: Tokenizer, char: str) -> bool:
    """Whether ``char`` between two words gives the tokens of each, with nothing of its own."""

    def ids(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    pairs = (("a", "b"), ("word", "Ünïcode"), ("x", ""))
    return all(ids(f"{a}{char}{b}") == ids(a) + ids(b) for a, b in pairs)
