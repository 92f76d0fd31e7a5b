"""What encode, predict and rank accept as texts and pairs, and the messages for what they refuse."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from edgesbert.runtime.inputs import as_pairs, as_texts, invalid_text_error, naming_invalid_text

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


def test_a_set_is_refused_because_its_order_is_undefined():
    with pytest.raises(TypeError) as info:
        as_texts({"x", "y"})
    assert str(info.value) == (
        "sentences must be a string or a list of strings, got a set, whose order is undefined, so results "
        "could not be matched to it; pass a list, e.g. sorted(sentences)"
    )
    with pytest.raises(TypeError, match=r"got a frozenset, whose order is undefined.*sorted\(documents\)"):
        as_texts(frozenset({"x"}), "documents")


@pytest.mark.parametrize(
    ("bad", "kind"),
    [
        (None, "NoneType"),
        (42, "int"),
        (3.5, "float"),
        (b"bytes", "bytes"),
        ({"a": "b"}, "dict"),
        (bytearray(b"ab"), "bytearray"),
        (object(), "object"),
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


# --- numpy arrays, iterators and other iterables -------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [np.array(["a", "bb", ""]), np.array(["a", "bb", ""], dtype=object), np.array([np.str_("a"), "bb", ""])],
    ids=["unicode", "object", "np.str_"],
)
def test_a_numpy_array_of_strings_is_a_list_of_plain_strings(array):
    texts, single = as_texts(array)
    assert texts == ["a", "bb", ""]
    assert single is False
    assert all(type(text) is str for text in texts)


def test_numpy_scalars_and_np_str_items_are_strings():
    assert as_texts(np.str_("one")) == (["one"], True)
    assert as_texts([np.str_("a"), "b"]) == (["a", "b"], False)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([b"a", b"b"]), "sentences[0] is bytes, not a string; pass only strings"),
        (np.array([1.5, 2.5]), "sentences[0] is float, not a string; pass only strings"),
        (np.array(["a", None], dtype=object), "sentences[1] is NoneType, not a string; pass only strings"),
        (np.array([["a", "b"], ["c", "d"]]), "sentences[0] is list, not a string; pass only strings"),
    ],
    ids=["bytes", "float", "object-with-none", "2-d"],
)
def test_numpy_arrays_of_non_strings_are_refused_with_the_index(bad, message):
    with pytest.raises(TypeError) as info:
        as_texts(bad)
    assert str(info.value) == message


def test_an_empty_numpy_array_is_no_texts():
    assert as_texts(np.array([], dtype=str)) == ([], False)


def test_a_generator_is_read_once_into_a_list():
    generator = (text for text in ["a", "b"])
    assert as_texts(generator) == (["a", "b"], False)
    assert list(generator) == []


@pytest.mark.parametrize(
    "iterable",
    [iter(["a", "b"]), {"a": 1, "b": 2}.keys(), map(str.lower, ["A", "B"]), collections.deque(["a", "b"])],
    ids=["iterator", "dict-keys", "map", "deque"],
)
def test_other_iterables_of_strings_are_accepted_in_order(iterable):
    assert as_texts(iterable) == (["a", "b"], False)


def test_a_bad_item_of_a_generator_is_named_by_its_index():
    with pytest.raises(TypeError, match=r"^sentences\[2\] is int, not a string"):
        as_texts(x for x in ["a", "b", 3])
    with pytest.raises(TypeError, match=r"^sentences\[0\] is int, not a string"):
        as_texts(range(3))


@pytest.mark.parametrize(
    "pairs",
    [
        [["q1", "d1"], ["q2", "d2"]],
        np.array([["q1", "d1"], ["q2", "d2"]]),
        np.array([["q1", "d1"], ["q2", "d2"]], dtype=object),
        (pair for pair in [("q1", "d1"), ("q2", "d2")]),
        [np.array(["q1", "d1"]), np.array(["q2", "d2"])],
        iter([("q1", "d1"), ["q2", "d2"]]),
    ],
    ids=["list-of-lists", "array", "object-array", "generator", "list-of-arrays", "iterator"],
)
def test_pairs_from_lists_arrays_and_iterables(pairs):
    items, single = as_pairs(pairs)
    assert items == [("q1", "d1"), ("q2", "d2")]
    assert single is False
    assert all(type(text) is str for pair in items for text in pair)


def test_a_one_dimensional_array_of_two_strings_is_one_pair():
    assert as_pairs(np.array(["q", "d"])) == ([("q", "d")], True)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([["a", "b", "c"]]), "pairs[0] must be a pair of two strings, got ['a', 'b', 'c']"),
        (np.array([[1, 2], [3, 4]]), "pairs[0] must be a pair of two strings, got [1, 2]"),
        ({("a", "b")}, "pairs must be a list of (text, text) pairs, got a set, whose order is undefined"),
        ((p for p in [("a", "b"), ("c", None)]), "pairs[1] must be a pair of two strings, got ('c', None)"),
    ],
    ids=["three-columns", "numbers", "set", "generator-with-none"],
)
def test_bad_pair_containers_are_refused(bad, message):
    with pytest.raises(TypeError) as info:
        as_pairs(bad)
    assert str(info.value).startswith(message)


# --- text that is not valid Unicode --------------------------------------------------------------


def test_a_lone_surrogate_is_named_with_its_index_and_position():
    error = invalid_text_error(["fine", "also fine", "bad \ud800 here"], "sentences")
    assert isinstance(error, ValueError)
    assert str(error) == (
        "sentences[2] is not valid Unicode text: lone surrogate '\\ud800' at character 4; "
        "remove it, or fix the decoding that produced it"
    )


def test_the_first_invalid_text_is_named_and_pairs_name_their_side():
    assert "pairs[1][0] " in str(invalid_text_error([("a", "b"), ("\udc00", "\ud800")], "pairs"))
    assert str(invalid_text_error([("a", "b\udfff")], "pairs", single=True)).startswith("pairs[1] is not")
    assert str(invalid_text_error(["x\ud83d"], "query", single=True)).startswith(
        "query is not valid Unicode text: lone surrogate '\\ud83d' at character 1;"
    )


def test_valid_text_has_no_error():
    valid = ["", "\x00", "😀 emoji", "e\u0301", "\u202eRTL", ("a", "\U0010ffff")]
    assert invalid_text_error(valid, "x") is None


def test_naming_invalid_text_replaces_an_error_only_when_a_text_explains_it():
    expected = r"^sentences\[1\] is not valid Unicode"
    with (
        pytest.raises(ValueError, match=expected) as info,
        naming_invalid_text(["ok", "\ud800"], "sentences"),
    ):
        raise TypeError("TextEncodeInput must be Union[...]")
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(TypeError, match="unrelated"), naming_invalid_text(["ok"], "sentences"):
        raise TypeError("unrelated")
    with pytest.raises(KeyError), naming_invalid_text(["\ud800"], "sentences"):
        raise KeyError("not a tokenizer refusal")
