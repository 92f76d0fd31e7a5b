"""A WordPiece (BERT-style) tokenizer as an ONNX graph: strings in, ``input_ids``/``attention_mask``/... out.

Built from onnxruntime-extensions' string ops and standard ONNX ops, batched, with truncation and padding.
Its normalization is computed from the model's own ``tokenizer.json`` (every character through the
`tokenizers` normalizer), not taken from the extension's ``BertTokenizer`` op, which strips accents,
lower-cases and splits punctuation differently (on STSb test: 1-2.4k of 2,758 Japanese, Polish and Russian
sentences tokenized differently, and it tokenizes one text per run).

The graph splits each text into characters, maps every character the normalizer rewrites (accents, case,
control characters, whitespace) through one table, joins them again, puts spaces around punctuation and CJK
characters (the pre-tokenizer's splits), and replaces a word holding a character the vocabulary lacks by one
unknown character, so that it becomes a single ``[UNK]`` as in `tokenizers` (the extension's WordPiece keeps
the pieces it matched before the unknown one). Then WordPiece, ids, and [CLS] A [SEP] (B [SEP]) rows.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

from edgesbert.errors import ExportError
from edgesbert.runtime.manifest import TEXT_INPUTS

if TYPE_CHECKING:
    from tokenizers.normalizers import Normalizer

CONTRIB = "ai.onnx.contrib"  # onnxruntime-extensions' op domain
OUTPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: the rewrite of a word the vocabulary cannot spell: a private-use character, in no vocabulary
UNKNOWN_WORD = "\ue000"
ONE_CHARACTER = "([\\s\\S])"  # RE2; a capture group, so that the split keeps what it matched
#: joins characters so that one normalizer call rewrites thousands: BertNormalizer keeps it and rewrites each
#: character on its own; a chunk that does not split back into one output per character is redone singly
_JOIN = "|"
_CHUNK = 4096
#: the normalizer's JSON -> its character table and isolated code points (every code point walked once per
#: process: a few seconds, and an export writes a twin per variant)
_REWRITES: dict[str, tuple[dict[str, str], list[int]]] = {}


def _char_class(codepoints: list[int], negate: bool = False) -> str:
    """An RE2 character class of ``codepoints``, as ranges."""
    points = sorted(set(codepoints))
    parts, start = [], 0
    for i, cp in enumerate(points):
        if i == 0 or points[i - 1] != cp - 1:
            start = cp
        if i + 1 == len(points) or points[i + 1] != cp + 1:
            parts.append(f"\\x{{{start:x}}}" + (f"-\\x{{{cp:x}}}" if cp != start else ""))
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def _is_punctuation(char: str) -> bool:
    """BERT's punctuation: Unicode P* and the ASCII symbols (``$``, ``+``, ``^``, ...)."""
    cp = ord(char)
    ascii_symbol = 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
    return ascii_symbol or unicodedata.category(char).startswith("P")


class _Spec:
    """What the graph needs from a ``tokenizer.json``, checked to be the BERT WordPiece layout."""

    def __init__(self, path: Path) -> None:
        config = json.loads(path.read_text(encoding="utf-8"))
        model, normalizer = config.get("model") or {}, config.get("normalizer") or {}
        pre_tokenizer = (config.get("pre_tokenizer") or {}).get("type")
        if model.get("type") != "WordPiece" or normalizer.get("type") not in (None, "BertNormalizer"):
            raise ExportError(
                "--with-tokenizer for ONNX supports WordPiece tokenizers with a BertNormalizer (BERT, "
                f"MiniLM, MPNet style); this model's is {model.get('type')} with {normalizer.get('type')}: "
                "export with --backend openvino instead, whose tokenizer converter covers more kinds"
            )
        if pre_tokenizer not in ("BertPreTokenizer", None):
            raise ExportError(f"--with-tokenizer for ONNX needs a BertPreTokenizer, not {pre_tokenizer}")
        self.normalizer_json = json.dumps(normalizer or None, sort_keys=True)
        self.tokenizer = Tokenizer.from_file(str(path))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.vocab: dict[str, int] = model["vocab"]
        self.unk = model["unk_token"]
        self.prefix = model.get("continuing_subword_prefix", "##")
        self.max_word = int(model.get("max_input_chars_per_word", 100))
        self.cls, self.sep = self.tokenizer.encode("").ids
        if self.tokenizer.encode("", "").ids != [self.cls, self.sep, self.sep]:
            raise ExportError("--with-tokenizer for ONNX needs BERT's [CLS] A [SEP] B [SEP] template")
        pad = (config.get("padding") or {}).get("pad_id")
        self.pad = int(pad if pad is not None else self.vocab.get("[PAD]", 0))

    def normalization(self) -> tuple[dict[str, str], str, str]:
        """The character table, the pattern of characters to isolate, and the pattern of unknown words.

        Table: every character the normalizer rewrites, to what it writes; isolated: punctuation and the
        characters the normalizer pads with spaces (CJK); unknown: a word with a character that is no
        token of the vocabulary, alone or as a continuation.
        """
        if self.normalizer_json not in _REWRITES:
            _REWRITES[self.normalizer_json] = _rewrites(self.tokenizer.normalizer)
        table, isolated = _REWRITES[self.normalizer_json]
        known = [ord(t) for token in self.vocab for t in [token.removeprefix(self.prefix)] if len(t) == 1]
        unknown = "[^ ]*" + _char_class([*known, ord(" ")], negate=True) + "[^ ]*"
        return dict(table), "(" + _char_class(isolated) + ")", unknown


def _rewrites(normalizer: Normalizer | None) -> tuple[dict[str, str], list[int]]:
    """Every character the normalizer rewrites, to what it writes; and the code points to isolate."""
    chars = [chr(cp) for cp in range(sys.maxunicode + 1) if not 0xD800 <= cp <= 0xDFFF]
    outputs = _normalized_each(normalizer, chars) if normalizer else chars
    changed = {char: out for char, out in zip(chars, outputs, strict=True) if out != char}
    isolated = {char for char, out in changed.items() if out == f" {char} "}
    isolated.update(filter(_is_punctuation, chars[:128]))  # BERT's ASCII symbols too ($, +, ^, ...)
    isolated.update(char for char in chars if unicodedata.category(char)[0] == "P")
    table = {  # in code point order; a space the normalizer keeps is one the pre-tokenizer splits on
        char: changed.get(char, " ")
        for char in chars
        if (char in changed or char.isspace()) and char not in isolated
    }
    return table, sorted(map(ord, isolated))


def _normalized_each(normalizer: Normalizer, chars: list[str]) -> list[str]:
    """``normalizer.normalize_str(char)`` of each of ``chars``, a chunk of them joined per call."""
    outputs: list[str] = []
    for start in range(0, len(chars), _CHUNK):
        chunk = chars[start : start + _CHUNK]
        parts = normalizer.normalize_str(_JOIN.join(chunk)).split(_JOIN)
        if len(parts) != len(chunk):  # a rewrite wrote _JOIN (or it is in the chunk)
            parts = [normalizer.normalize_str(char) for char in chunk]
        outputs.extend(parts)
    return outputs


class _Graph:
    """Nodes, constants and fresh names for one graph."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"tok_{hint}_{self._count}"

    def const(self, value: np.ndarray | int | str | list, hint: str = "c") -> str:
        """A constant: int64, or a string as a (1,) tensor (how the extension's ops take patterns)."""
        if isinstance(value, str):
            return self.const_strings([value])
        name = self.name(hint)
        self.constants.append(numpy_helper.from_array(np.array(value, dtype=np.int64), name))
        return name

    def const_strings(self, values: list[str]) -> str:
        """A constant 1-D string tensor."""
        name = self.name("s")
        self.constants.append(numpy_helper.from_array(np.array(values, dtype=object), name))
        return name

    def op(self, op_type: str, *inputs: str, domain: str = "", **attrs: Any) -> str:
        """Add a node with one output; return the output's name."""
        return self.ops(op_type, *inputs, outputs=1, domain=domain, **attrs)[0]

    def ops(self, op_type: str, *inputs: str, outputs: int, domain: str = "", **attrs: Any) -> list[str]:
        """Add a node with ``outputs`` outputs; return their names."""
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, domain=domain, **attrs))
        return names


def tokenizer_graph(tokenizer_file: Path, max_length: int, pairs: bool = False) -> onnx.ModelProto:
    """The tokenizer of ``tokenizer_file`` as a graph over ``text`` (and ``text_pair``).

    Outputs int64 ``input_ids``, ``attention_mask`` and ``token_type_ids``, (batch, longest), padded right,
    each row truncated to ``max_length`` tokens as `tokenizers` truncates (longest first, for pairs).
    """
    spec = _Spec(tokenizer_file)
    g = _Graph()
    text = TEXT_INPUTS[0]
    if pairs:
        text = g.op("Concat", TEXT_INPUTS[0], TEXT_INPUTS[1], axis=0)  # one pass for both sides
    table, isolated, unknown = spec.normalization()
    text = _normalize(g, text, table)
    text = g.op("StringRegexReplace", text, g.const(isolated), g.const(" \\1 "), domain=CONTRIB)
    text = g.op("StringRegexReplace", text, g.const(unknown), g.const(UNKNOWN_WORD), domain=CONTRIB)
    vocab = json.dumps(spec.vocab, ensure_ascii=False)
    tokens, _, begins, limits = g.ops(
        "WordpieceTokenizer",
        text,
        g.const(np.zeros(0, np.int64), "rows"),
        outputs=4,
        domain=CONTRIB,
        vocab=vocab,
        suffix_indicator=spec.prefix,
        unknown_token=spec.unk,
        max_input_chars_per_word=spec.max_word,
    )
    keys = list(spec.vocab)
    ids = g.op(
        "LabelEncoder",
        tokens,
        domain="ai.onnx.ml",
        keys_strings=keys,
        values_int64s=[spec.vocab[k] for k in keys],
        default_int64=spec.vocab[spec.unk],
    )
    ids = g.op("Concat", ids, g.const([spec.pad]), axis=0)  # never empty, so Gather always has a source
    lengths = g.op("Sub", limits, begins)
    if pairs:
        half = g.op("Div", g.op("Shape", begins), g.const(2))
        halves = g.op("Concat", half, half, axis=0)
        first, second = g.ops("Split", lengths, halves, outputs=2, axis=0)
        starts = g.ops("Split", begins, halves, outputs=2, axis=0)
        spans = list(zip(starts, _longest_first(g, first, second, max_length - 3), strict=True))
    else:
        spans = [(begins, g.op("Min", lengths, g.const(max_length - 2)))]
    outputs = _assemble(g, ids, spans, spec)
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.STRING, ["batch"]) for n in TEXT_INPUTS[: 1 + pairs]
    ]
    graph_outputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"]) for name in OUTPUTS
    ]
    for name, value in zip(OUTPUTS, outputs, strict=True):
        g.nodes.append(helper.make_node("Identity", [value], [name]))
    graph = helper.make_graph(g.nodes, "tokenizer", inputs, graph_outputs, g.constants)
    opsets = [
        helper.make_opsetid("", 17),
        helper.make_opsetid("ai.onnx.ml", 2),
        helper.make_opsetid(CONTRIB, 1),
    ]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def _normalize(g: _Graph, text: str, table: dict[str, str]) -> str:
    """Each character of each text through ``table`` (characters not in it stay as they are)."""
    pattern = g.const(ONE_CHARACTER)
    chars, _, _, rows = g.ops(
        "StringRegexSplitWithOffsets", text, pattern, pattern, outputs=4, domain=CONTRIB
    )
    keys = list(table)
    mapped = g.op(
        "LabelEncoder",
        chars,
        domain="ai.onnx.ml",
        keys_strings=keys,
        values_strings=[table[k] for k in keys],
        default_string="",
    )
    hit = g.op(
        "LabelEncoder",
        chars,
        domain="ai.onnx.ml",
        keys_strings=keys,
        values_int64s=[1] * len(keys),
        default_int64=0,
    )
    mapped = g.op("Where", g.op("Cast", hit, to=TensorProto.BOOL), mapped, chars)
    # back to one string per text: gather (batch, longest) characters, "" past each text's end, and join
    mapped = g.op("Concat", mapped, g.const_strings([""]), axis=0)
    begins = g.op("Slice", rows, g.const([0]), g.const([-1]))
    lengths = g.op("Sub", g.op("Slice", rows, g.const([1]), g.const([2**62])), begins)
    axis1 = g.const([1])
    position = g.op(
        "Unsqueeze",
        g.op("Range", g.const(0), g.op("ReduceMax", lengths, keepdims=0), g.const(1)),
        g.const([0]),
    )
    index = g.op("Add", g.op("Unsqueeze", begins, axis1), position)
    past = g.op("Sub", g.op("Size", mapped), g.const(1))  # the "" appended above
    index = g.op("Where", g.op("Less", position, g.op("Unsqueeze", lengths, axis1)), index, past)
    return g.op(
        "StringJoin", g.op("Gather", mapped, index), g.const_strings([""]), g.const([1]), domain=CONTRIB
    )


def _longest_first(g: _Graph, first: str, second: str, budget: int) -> tuple[str, str]:
    """Token counts each side keeps, as `tokenizers`' ``longest_first`` truncation computes them."""
    m = g.const(budget)
    short = g.op("Min", first, second)
    long_kept = g.op("Where", g.op("Greater", short, m), short, g.op("Max", short, g.op("Sub", m, short)))
    both = g.op("Greater", g.op("Add", short, long_kept), m)
    short_kept = g.op("Where", both, g.const(budget // 2), short)
    long_kept = g.op("Where", both, g.const(budget // 2 + budget % 2), long_kept)
    swap = g.op("Greater", first, second)
    first_kept = g.op("Where", swap, long_kept, short_kept)
    second_kept = g.op("Where", swap, short_kept, long_kept)
    over = g.op("Greater", g.op("Add", first, second), m)
    return (
        g.op("Where", over, g.op("Min", first, first_kept), first),
        g.op("Where", over, g.op("Min", second, second_kept), second),
    )


def _assemble(g: _Graph, ids: str, spans: list[tuple[str, str]], spec: _Spec) -> list[str]:
    """[CLS] A [SEP] (B [SEP]) per row from (row start, tokens kept) spans; padded ids, mask and types."""
    one, axis1 = g.const(1), g.const([1])
    ends: list[tuple[str, str]] = []
    offset = one  # side 0 starts after [CLS]
    for _, kept in spans:
        ends.append((offset, g.op("Add", offset, kept)))  # (first position, position of its [SEP])
        offset = g.op("Add", ends[-1][1], one)
    width = g.op("Unsqueeze", offset, axis1)  # (batch, 1): tokens in each row
    limit = g.op("ReduceMax", offset, keepdims=0)
    position = g.op("Unsqueeze", g.op("Range", g.const(0), limit, one), g.const([0]))  # (1, longest)
    mask = g.op("Less", position, width)
    result = g.op("Where", mask, g.const(spec.pad), g.const(spec.pad))  # (batch, longest) of padding
    types = g.op("Mul", g.op("Cast", mask, to=TensorProto.INT64), g.const(0))
    last = g.op("Sub", g.op("Size", ids), one)
    for side, ((start, _), (first, sep)) in enumerate(zip(spans, ends, strict=True)):
        first = first if first == one else g.op("Unsqueeze", first, axis1)
        sep = g.op("Unsqueeze", sep, axis1)
        inside = g.op("And", g.op("GreaterOrEqual", position, first), g.op("Less", position, sep))
        source = g.op("Sub", g.op("Add", g.op("Unsqueeze", start, axis1), position), first)
        picked = g.op("Gather", ids, g.op("Clip", source, g.const(0), last))
        result = g.op("Where", inside, picked, result)
        result = g.op("Where", g.op("Equal", position, sep), g.const(spec.sep), result)
        if side == 1:
            second = g.op("And", g.op("GreaterOrEqual", position, first), g.op("LessOrEqual", position, sep))
            types = g.op("Where", second, one, types)
    result = g.op("Where", g.op("Equal", position, g.const(0)), g.const(spec.cls), result)
    return [result, g.op("Cast", mask, to=TensorProto.INT64), types]
