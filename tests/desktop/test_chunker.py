from __future__ import annotations

from pathlib import Path

import pytest

from examples.desktop.chunker import UnreadableFile, chunk_file, html_to_text, paragraphs


def test_paragraphs_split_at_blank_lines_and_collapse_whitespace():
    text = "First  line\ncontinues.\n\n\n  Second paragraph.  \n \nThird."
    assert paragraphs(text) == ["First line continues.", "Second paragraph.", "Third."]


def test_a_long_paragraph_is_cut_at_sentence_ends_and_loses_no_word():
    sentences = [f"Sentence number {i} says something about topic {i}." for i in range(60)]
    pieces = paragraphs(" ".join(sentences), max_chars=200)
    assert len(pieces) > 5
    assert all(len(p) <= 200 for p in pieces)
    assert all(p.endswith(".") for p in pieces)
    assert " ".join(pieces) == " ".join(sentences)


def test_one_sentence_longer_than_the_limit_is_cut_anywhere():
    pieces = paragraphs("x" * 450, max_chars=200)
    assert [len(p) for p in pieces] == [200, 200, 50]


def test_html_keeps_visible_text_of_block_elements_only():
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<h1>Heading</h1><p>One &amp; two</p><script>var x = 1;</script>"
        "<div>Three<br>Four</div></body></html>"
    )
    assert paragraphs(html_to_text(html)) == ["Heading", "One & two", "Three", "Four"]


def test_markdown_and_html_files_by_suffix(tmp_path: Path):
    (tmp_path / "a.md").write_text("# Title\n\nBody text.\n", encoding="utf-8")
    (tmp_path / "b.html").write_text("<p>Para one</p><p>Para two</p>", encoding="utf-8")
    assert chunk_file(tmp_path / "a.md") == ["# Title", "Body text."]
    assert chunk_file(tmp_path / "b.html") == ["Para one", "Para two"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"), ("caf\xe9".encode("latin-1"), "not UTF-8")],
)
def test_binary_and_non_utf8_files_are_refused_with_the_reason(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile, match=reason):
        chunk_file(path)
