"""Text files (txt, md, html) read and cut into paragraphs; binary or unreadable files refused by name."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm"})
#: a paragraph longer than this is cut at sentence ends (the model reads 256 tokens at most)
MAX_CHARS = 1000
_BLOCK_TAGS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section"})
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title"})


class UnreadableFile(Exception):
    """A file that cannot be indexed; the message says why (binary, not UTF-8, permission...)."""


class _HtmlText(HTMLParser):
    """The visible text of an HTML page, with a blank line after each block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The visible text of ``html``, paragraphs separated by blank lines."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def read_text(path: Path) -> str:
    """The text of ``path``; raises UnreadableFile for a binary, non-UTF-8 or unreadable file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UnreadableFile(e.strerror or type(e).__name__) from e
    if b"\x00" in data[:8192]:
        raise UnreadableFile("binary file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UnreadableFile(f"not UTF-8 text (byte {e.start})") from e
    return html_to_text(text) if path.suffix.lower() in {".html", ".htm"} else text


def paragraphs(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """The paragraphs of ``text`` (split at blank lines, whitespace collapsed), long ones cut at sentences."""
    found = []
    for block in re.split(r"\n\s*\n", text):
        paragraph = " ".join(block.split())
        found.extend(_cut(paragraph, max_chars) if len(paragraph) > max_chars else [paragraph])
    return [p for p in found if p]


def _cut(paragraph: str, max_chars: int) -> list[str]:
    """``paragraph`` in pieces of at most ``max_chars`` (a single longer sentence is cut anywhere)."""
    pieces: list[str] = []
    current = ""
    for sentence in re.split(r"(?<=[.!?])\s+", paragraph):
        for start in range(0, len(sentence), max_chars):
            part = sentence[start : start + max_chars]
            if current and len(current) + 1 + len(part) > max_chars:
                pieces.append(current)
                current = part
            else:
                current = f"{current} {part}".strip()
    return [*pieces, current] if current else pieces


def chunk_file(path: Path) -> list[str]:
    """The paragraphs of the text file ``path``; raises UnreadableFile if it cannot be read as text."""
    return paragraphs(read_text(path))
