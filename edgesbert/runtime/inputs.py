"""Checks on what users pass to encode, predict and rank, with messages that say what to fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def as_texts(sentences: Any, what: str = "sentences") -> tuple[list[str], bool]:
    """Return ``sentences`` as a list of strings and whether a single string was given."""
    if isinstance(sentences, str):
        return [sentences], True
    if sentences is None or isinstance(sentences, bytes) or not isinstance(sentences, Sequence | set):
        raise TypeError(f"{what} must be a string or a list of strings, got {type(sentences).__name__}")
    texts = list(sentences)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] is {type(text).__name__}, not a string; pass only strings")
    return texts, False


def as_pairs(pairs: Any) -> tuple[list[tuple[str, str]], bool]:
    """Return ``pairs`` as a list of (text, text) tuples and whether a single pair was given."""
    if _is_pair(pairs):
        return [(pairs[0], pairs[1])], True
    if (
        isinstance(pairs, Sequence)
        and len(pairs) == 2
        and any(isinstance(v, str) for v in pairs)
        and not any(isinstance(v, list | tuple) for v in pairs)
    ):  # one pair with a non-string member
        bad = next(i for i, v in enumerate(pairs) if not isinstance(v, str))
        raise TypeError(f"pair[{bad}] is {type(pairs[bad]).__name__}, not a string; a pair holds two strings")
    if pairs is None or isinstance(pairs, str) or not isinstance(pairs, Sequence):
        raise TypeError(f"pairs must be a list of (text, text) pairs, got {type(pairs).__name__}")
    out = []
    for i, pair in enumerate(pairs):
        if not _is_pair(pair):
            raise TypeError(f"pairs[{i}] must be a pair of two strings, got {pair!r:.80}")
        out.append((pair[0], pair[1]))
    return out, False


def _is_pair(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, str) for v in value)
    )
