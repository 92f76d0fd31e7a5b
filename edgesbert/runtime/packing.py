"""Packed batches: several texts side by side in each row, so that no token the graph computes is padding.

A packed graph (``edgesbert export --packed``) takes, per row of ``L`` tokens, the texts' ``input_ids`` one
after another, ``position_ids`` that restart at 0 for each text, and ``segment_ids`` telling which text of
the row a token belongs to (1, 2, ...; 0 for the unused tail of a row), and for a cross-encoder whose model
takes them, each pair's ``token_type_ids``. It lets tokens attend only within their own text and pools each
text on its own, so a text's output does not depend on its neighbours, and returns ``segment_embedding``
(rows, texts per row, dim) or, for a cross-encoder, ``segment_logits`` (rows, pairs per row, labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: the inputs of a packed graph, in order
PACKED_INPUTS = ("input_ids", "position_ids", "segment_ids")
#: what a cross-encoder's packed graph takes too, where its model does
TOKEN_TYPES = "token_type_ids"
#: its output: one vector per text of each row (a cross-encoder's: one row of logits per pair)
SEGMENT_OUTPUT = "segment_embedding"
SEGMENT_LOGITS = "segment_logits"
#: transformers (config.json's model_type) the exporter can pack: their attention takes a per-row block mask
#: and their positions come from position_ids; checked equal to padded graphs in tests/test_packing.py (MPNet
#: on real tokenizers only: its embeddings take id 1 for padding, a word of the tiny test vocabulary).
#: DeBERTa-v2 (relative positions: shifting a text along the row changes none), ModernBERT (its local layers
#: get their window within each text) and Qwen3 (a causal block mask, pooled at each text's last token) are
#: traced through their own ways of taking a mask (exporters/packed_graph.py).
PACKABLE = (
    "bert", "distilbert", "roberta", "xlm-roberta", "camembert", "mpnet", "electra",
    "deberta-v2", "modernbert", "qwen3",
)  # fmt: skip


def packing_note(model_type: str, packed: Sequence[str], row_length: int) -> str:
    """What ``edgesbert info`` says of packing in a folder with ``packed`` variants, of ``model_type``."""
    if packed:
        return f"{', '.join(packed)}: texts side by side in rows (up to {row_length} tokens), no padding"
    if model_type in PACKABLE:
        return "none: padded batches (export --packed adds packed variants)"
    return f"none: {model_type} models cannot be packed yet, padded batches only"


@dataclass(frozen=True)
class PackedBatch:
    """A packed graph's inputs and, per text, where its vector comes out."""

    inputs: dict[str, np.ndarray]
    row: np.ndarray  # (texts,) the row of each text
    segment: np.ndarray  # (texts,) its place in that row, from 0

    def vectors(self, output: np.ndarray) -> np.ndarray:
        """The graph's (rows, segments, dim) output as one vector per text, in the texts' order."""
        return output[self.row, self.segment]


def pack(
    token_ids: Sequence[Sequence[int] | np.ndarray],
    pad_token_id: int,
    token_types: Sequence[Sequence[int] | np.ndarray] | None = None,
    *,
    row_length: int = 0,
    align: int = 1,
) -> PackedBatch:
    """Pack texts' token ids (and their token types, if given) into rows, first fit, longest first.

    Rows are as long as the longest text: shorter texts share rows, and no row is longer than the padded
    batch's would be. (Longer rows pack a little tighter but every token attends over the whole row: on
    all-MiniLM-L6-v2, random batches of 32 ran 1.97x padded in rows of the longest text, 1.56x in rows of
    128; batches sorted by length 1.09x against 0.79x.) With ``row_length``, rows are exactly that long (a
    longer text's: the next multiple of it), however few texts there are: OpenVINO's attention sums a row
    in an order that depends on its length, and int8 graphs turn that last-bit difference into up to 2e-4
    of cosine, so a text is computed alike only in rows of one length, alone or in any batch. With ``align``,
    texts start at multiples of it (a backend's ``text_alignment``): each takes its length rounded up to one,
    the last of a row what is left.
    """
    if not token_ids:
        raise ValueError("nothing to pack: no texts")
    sizes = [len(ids) for ids in token_ids]
    length = whole_row(max(sizes), row_length) if row_length else max(sizes)
    free: list[int] = []  # tokens left in each row
    row = np.empty(len(token_ids), dtype=np.int64)
    segment = np.empty(len(token_ids), dtype=np.int64)
    start = np.empty(len(token_ids), dtype=np.int64)
    filled: list[int] = []  # texts in each row so far
    for i in sorted(range(len(token_ids)), key=lambda i: -len(token_ids[i])):
        size = len(token_ids[i])
        r = next((r for r, left in enumerate(free) if left >= size), len(free))
        if r == len(free):
            free.append(length)
            filled.append(0)
        row[i], segment[i], start[i] = r, filled[r], length - free[r]
        free[r] = max(free[r] - -(-size // align) * align, 0)  # the next text starts aligned, or nowhere
        filled[r] += 1
    shape = (len(free), length)
    input_ids = np.full(shape, pad_token_id, dtype=np.int64)
    position_ids = np.zeros(shape, dtype=np.int64)
    segment_ids = np.zeros(shape, dtype=np.int64)
    for i, ids in enumerate(token_ids):
        span = slice(start[i], start[i] + len(ids))
        input_ids[row[i], span] = ids
        position_ids[row[i], span] = np.arange(len(ids))
        segment_ids[row[i], span] = segment[i] + 1
    inputs = {"input_ids": input_ids, "position_ids": position_ids, "segment_ids": segment_ids}
    if token_types is not None:
        types = np.zeros(shape, dtype=np.int64)
        for i, values in enumerate(token_types):
            types[row[i], start[i] : start[i] + len(values)] = values
        inputs[TOKEN_TYPES] = types
    return PackedBatch(inputs, row, segment)


def whole_row(tokens: int, row_tokens: int) -> int:
    """The length of the row a text of ``tokens`` gets: ``row_tokens``, or the next multiple of it."""
    return max(1, -(-tokens // row_tokens)) * row_tokens


def packed_passes(lengths: Sequence[int], row_tokens: int, rows: int, runs: int = 1) -> list[np.ndarray]:
    """The texts of each pass of a packed graph, by index: up to ``rows`` rows of ``row_tokens`` tokens.

    Texts are placed longest first, each in the fullest row it fits (best fit), so short texts fill the
    gaps longer ones leave and almost no token is padding. A text of ``row_tokens`` or more gets a row of
    its own, ``pack`` makes it the next multiple of ``row_tokens`` long, and no pass mixes rows of two
    lengths: every text is computed in a row of the length it would get alone, whatever its batch. Rows
    go to passes longest first, so passes have a few shapes only, and each length's rows in at least
    ``runs`` passes of as many rows (where there are that many), so that runs side by side all get work.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    filled: list[list[int]] = []  # the texts of each row
    by_free: list[list[int]] = [[] for _ in range(row_tokens)]  # rows by the tokens they have left
    for i in order.tolist():
        size = lengths[i]
        free = next((f for f in range(size, row_tokens) if by_free[f]), None) if size < row_tokens else None
        if free is None:  # a new row (a text of a row's length or more: its own)
            filled.append([i])
            if size < row_tokens:
                by_free[row_tokens - size].append(len(filled) - 1)
            continue
        r = by_free[free].pop()
        filled[r].append(i)
        by_free[free - size].append(r)
    by_length: dict[int, list[list[int]]] = {}  # rows by the length pack gives them, longest first
    for row in filled:
        by_length.setdefault(whole_row(lengths[row[0]], row_tokens), []).append(row)
    plan = []
    for group in by_length.values():
        passes = max(-(-len(group) // rows), min(runs, len(group)))
        per_pass = -(-len(group) // passes)
        plan += [
            np.array([i for row in group[start : start + per_pass] for i in row], dtype=np.int64)
            for start in range(0, len(group), per_pass)
        ]
    return plan


def pack_features(
    features: dict[str, np.ndarray],
    pad_token_id: int,
    token_types: bool = False,
    *,
    row_length: int = 0,
    align: int = 1,
) -> PackedBatch:
    """Pack a tokenizer's padded batch (``input_ids``, ``attention_mask``, ...), its padding left out."""
    types = unpadded(features, TOKEN_TYPES) if token_types else None
    return pack(unpadded(features), pad_token_id, types, row_length=row_length, align=align)


def unpadded(features: dict[str, np.ndarray], name: str = "input_ids") -> list[np.ndarray]:
    """Each text's ``name`` values from a padded batch, where its ``attention_mask`` is 1."""
    mask = features["attention_mask"].astype(bool)
    return [values[real] for values, real in zip(features[name], mask, strict=True)]
