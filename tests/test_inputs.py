"""What encode, predict and rank accept as texts and pairs, and the messages for what they refuse."""

from __future__ import annotations

import pytest

from edgesbert.runtime.inputs import as_pairs, as_texts

# --- as_texts ------------------------------------------------------------------------------------


def test_a_single_string_is_one_text():
    assert as_texts("hello") == (["hello"], True)
    assert as_texts("") == ([""], True)


@pytest.mark.parametrize("sentences", [["a", "b", "c"], ("a", "b", "c")], ids=["list", "tuple"])
def test_list_and_tuple_are_lists_of_texts(sentences):
    texts, single = as_texts(sentences)
    assert texts == ["a", "b", "c"]
    assert type(texts) is list
    assert single is False


def test_a_list_of_one_is_not_single():
    assert as_texts(["only"]) == (["only"], False)


def test_empty_list_is_no_texts():
    assert as_texts([]) == ([], False)
    assert as_texts(()) == ([], False)


def test_the_returned_list_is_a_copy():
    sentences = ["a", "b"]
    texts, _ = as_texts(sentences)
    texts.append("c")
    assert sentences == ["a", "b"]


def test_a_set_is_accepted():
    texts, single = as_texts({"x"})
    assert (texts, single) == (["x"], False)


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        (None, "NoneType"),
        (42, "int"),
        (3.5, "float"),
        (b"bytes", "bytes"),
        ({"a": "b"}, "dict"),
        ((s for s in ["a"]), "generator"),
    ],
)
def test_non_sequences_are_refused(bad, kind):
    with pytest.raises(TypeError) as info:
        as_texts(bad)
    assert str(info.value) == f"sentences must be a string or a list of strings, got {kind}"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["ok", None], "sentences[1] is NoneType, not a string; pass only strings"),
        ([3, "ok"], "sentences[0] is int, not a string; pass only strings"),
        (("a", "b", b"c"), "sentences[2] is bytes, not a string; pass only strings"),
        ([["nested"]], "sentences[0] is list, not a string; pass only strings"),
    ],
)
def test_non_string_items_are_refused_with_their_index(bad, message):
    with pytest.raises(TypeError) as info:
        as_texts(bad)
    assert str(info.value) == message


def test_the_argument_name_is_used_in_messages():
    with pytest.raises(TypeError, match=r"^documents must be a string or a list of strings, got NoneType$"):
        as_texts(None, "documents")
    with pytest.raises(TypeError, match=r"^documents\[1\] is float, not a string"):
        as_texts(["a", 1.0], what="documents")


# --- as_pairs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", [("query", "doc"), ["query", "doc"]], ids=["tuple", "list"])
def test_a_single_pair(pair):
    assert as_pairs(pair) == ([("query", "doc")], True)


def test_a_list_of_pairs():
    pairs, single = as_pairs([("q1", "d1"), ["q2", "d2"], ("", "")])
    assert pairs == [("q1", "d1"), ("q2", "d2"), ("", "")]
    assert all(type(pair) is tuple for pair in pairs)
    assert single is False


def test_a_tuple_of_pairs_and_a_list_of_one_pair():
    assert as_pairs((("q", "d"), ("q", "e"))) == ([("q", "d"), ("q", "e")], False)
    assert as_pairs([("q", "d")]) == ([("q", "d")], False)


def test_no_pairs():
    assert as_pairs([]) == ([], False)


@pytest.mark.parametrize(
    ("bad", "kind"), [(None, "NoneType"), ("query", "str"), (7, "int"), ({"q": "d"}, "dict")]
)
def test_non_lists_of_pairs_are_refused(bad, kind):
    with pytest.raises(TypeError) as info:
        as_pairs(bad)
    assert str(info.value) == f"pairs must be a list of (text, text) pairs, got {kind}"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([("only one",)], "pairs[0] must be a pair of two strings, got ('only one',)"),
        ([("a", "b"), ("a", "b", "c")], "pairs[1] must be a pair of two strings, got ('a', 'b', 'c')"),
        ([("a", "b"), ("a", None)], "pairs[1] must be a pair of two strings, got ('a', None)"),
        ([("a", 1)], "pairs[0] must be a pair of two strings, got ('a', 1)"),
        ([None], "pairs[0] must be a pair of two strings, got None"),
        (["ab", "cd", "ef"], "pairs[0] must be a pair of two strings, got 'ab'"),
        ([("a", "b"), "ab"], "pairs[1] must be a pair of two strings, got 'ab'"),
        ([()], "pairs[0] must be a pair of two strings, got ()"),
    ],
)
def test_wrong_pair_shapes_are_refused_with_their_index(bad, message):
    with pytest.raises(TypeError) as info:
        as_pairs(bad)
    assert str(info.value) == message


def test_a_long_bad_pair_is_shown_cut_to_80_characters():
    bad = ("x" * 200,)
    with pytest.raises(TypeError) as info:
        as_pairs([bad])
    prefix = "pairs[0] must be a pair of two strings, got "
    assert str(info.value) == prefix + repr(bad)[:80]


def test_a_single_pair_with_a_none_names_the_none():
    with pytest.raises(TypeError, match="None"):
        as_pairs(("query", None))
