"""Checks on what users pass to encode, predict and rank, with messages that say what to fix.

Texts come as a string, or as a list, tuple, numpy array or any other iterable of strings (an iterator is
read once). Sets are refused: their order is undefined, so the rows of a result could not be matched to
them. Text that is not valid Unicode (a lone surrogate, which UTF-8 cannot hold) is looked for only after
the tokenizer refused a batch, so good input pays nothing for the check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

#: One text, or one (text, text) pair, as the tokenizer takes them.
Text = str | tuple[str, str]

_SURROGATE = re.compile("[\ud800-\udfff]")


def as_texts(sentences: Any, what: str = "sentences") -> tuple[list[str], bool]:
    """Return ``sentences`` as a new list of strings and whether a single string was given."""
    if isinstance(sentences, np.ndarray):
        sentences = sentences.tolist()  # numpy strings become str; a 2-D array becomes nested lists
    if isinstance(sentences, str):
        return [sentences], True
    texts = _as_list(sentences, what, "a string or a list of strings")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"{what}[{i}] is {type(text).__name__}, not a string; pass only strings")
    return texts, False


def as_pairs(pairs: Any) -> tuple[list[tuple[str, str]], bool]:
    """Return ``pairs`` as a list of (text, text) tuples and whether a single pair was given.

    Pairs come as a list (or other iterable) of two-string lists or tuples, or as an (n, 2) array.
    """
    if isinstance(pairs, np.ndarray):
        pairs = pairs.tolist()
    if _is_pair(pairs):
        return [(pairs[0], pairs[1])], True
    if (
        isinstance(pairs, Sequence)
        and len(pairs) == 2
        and any(isinstance(v, str) for v in pairs)
        and not any(isinstance(v, list | tuple) for v in pairs)
    ):  # one pair with a non-string member
        bad = next(i for i, v in enumerate(pairs) if not isinstance(v, str))
        kind = type(pairs[bad]).__name__
        raise TypeError(f"pairs[{bad}] is {kind}, not a string; a pair holds two strings")
    out = []
    for i, pair in enumerate(_as_list(pairs, "pairs", "a list of (text, text) pairs")):
        if isinstance(pair, np.ndarray):
            pair = pair.tolist()
        if not _is_pair(pair):
            raise TypeError(f"pairs[{i}] must be a pair of two strings, got {pair!r:.80}")
        out.append((pair[0], pair[1]))
    return out, False


def as_one_text(value: Any, what: str) -> str:
    """Return ``value`` if it is a string of valid Unicode (one text, such as a query, is checked at once)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    invalid = invalid_text_error([value], what, single=True)
    if invalid is not None:
        raise invalid
    return value


@contextmanager
def naming_invalid_text(items: Sequence[Text], what: str, single: bool = False) -> Iterator[None]:
    """Turn a refusal of ``items`` by the tokenizer into a ValueError naming the text at fault.

    ``tokenizers`` refuses a whole batch when one text holds a lone surrogate, without saying which; the
    texts are searched only then. Any other error, or one no text explains, passes through unchanged.

    Args:
        items: the texts or pairs as the caller received them.
        what: the argument's name, for the message (``sentences[3]``, ``pairs[3][1]``).
        single: one text or pair was given, not a list of them (``sentences``, ``pairs[1]``).
    """
    try:
        yield
    except (TypeError, ValueError) as error:
        invalid = invalid_text_error(items, what, single)
        if invalid is None:
            raise
        raise invalid from error


def invalid_text_error(items: Sequence[Text], what: str, single: bool = False) -> ValueError | None:
    """A ValueError naming the first text of ``items`` that is not valid Unicode, or None if all are."""
    for i, item in enumerate(items):
        for j, text in enumerate((item,) if isinstance(item, str) else item):
            found = _SURROGATE.search(text)
            if found is not None:
                place = ("" if single else f"[{i}]") + ("" if isinstance(item, str) else f"[{j}]")
                return ValueError(
                    f"{what}{place} is not valid Unicode text: lone surrogate {found.group()!a} at "
                    f"character {found.start()}; remove it, or fix the decoding that produced it"
                )
    return None


def _as_list(values: Any, what: str, expected: str) -> list[Any]:
    """``values`` read into a new list; strings, bytes, mappings, sets and non-iterables are refused."""
    if isinstance(values, set | frozenset):
        raise TypeError(
            f"{what} must be {expected}, got a {type(values).__name__}, whose order is undefined, so results "
            f"could not be matched to it; pass a list, e.g. sorted({what})"
        )
    if isinstance(values, str | bytes | bytearray | memoryview | Mapping) or not hasattr(values, "__iter__"):
        raise TypeError(f"{what} must be {expected}, got {type(values).__name__}")
    return list(values)


def _is_pair(value: Any) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(isinstance(v, str) for v in value)
    )
