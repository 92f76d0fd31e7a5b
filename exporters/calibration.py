"""Where the texts for static int8 quantization come from: the shipped real sentences, or the user's own.

Standard library only, so that reading calibration texts stays fast and light.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import TypeAlias

from edgesbert.data import english_sentences
from edgesbert.errors import ExportError

#: A sentence, or a (query, document) pair for cross-encoders.
Text: TypeAlias = str | tuple[str, str]

#: File suffixes ``read_calibration`` reads.
SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl")

_DATA = Path(__file__).parent / "data"
_SUPPORTED = ", ".join(SUFFIXES)
#: how messages name the column option, for Python and command-line users alike
_COLUMN = "column= (--calibration-column)"


def builtin_calibration(pairs: bool, count: int) -> list[Text]:
    """Real sentences shipped with the package: STSb-train sentences, or TREC train (question, answer) pairs.

    Args:
        pairs: return (question, answer) pairs for a cross-encoder instead of single sentences.
        count: how many to return; 1000 of each kind ship, so a larger count returns all of them.

    Returns:
        At most ``count`` distinct texts: a fixed sample (seed 0), in file order.

    Raises:
        ExportError: ``count`` is below 1.
    """
    _check_count(count)
    return _sample(list(_builtin(pairs)), count, seed=0)


def read_calibration(
    source: str | Path | Sequence[str] | Sequence[tuple[str, str]] | None,
    *,
    pairs: bool,
    count: int = 256,
    column: str | None = None,
    seed: int = 0,
) -> list[Text]:
    """Read calibration texts from a file or a list, or take the built-in ones.

    Args:
        source: ``None`` for the built-in texts; a list of strings (of (query, document) tuples when
            ``pairs``), used as is; or a ``.txt`` (one text per line, ``query<TAB>document`` for pairs),
            ``.csv``/``.tsv`` (header row required) or ``.jsonl`` (one object per line) file.
        pairs: the model is a cross-encoder and needs (query, document) pairs.
        count: the most texts to return.
        column: the ``.csv``/``.tsv`` column or ``.jsonl`` field holding the texts; for pairs two names,
            ``"query,document"``. May be left out when there is exactly one (two for pairs).
        seed: seed of the sample drawn when there are more than ``count`` texts.

    Returns:
        At most ``count`` texts, in source order: all of them, or a deterministic sample.

    Raises:
        ExportError: the source cannot be read, or holds no usable texts of the right kind.
    """
    _check_count(count)
    if source is None or not isinstance(source, (str, PathLike)):
        if column is not None:
            raise ExportError(
                f"column={column!r} names a column of a calibration file, but no file was given; "
                "drop column= or pass a .csv, .tsv or .jsonl file"
            )
        texts = list(_builtin(pairs)) if source is None else _from_sequence(source, pairs)
    else:
        texts = _from_file(Path(source), pairs, column)
    return _sample(texts, count, seed)


@dataclass(frozen=True)
class CalibrationSource:
    """Where a static quantization step takes its texts from (see ``read_calibration``)."""

    source: str | Path | Sequence[Text] | None = None  # a file, a list, or None for the built-in set
    column: str | None = None
    samples: int = 256

    def texts(self, pairs: bool) -> list[Text]:
        """The texts; export_model reads them before any work, so a bad file fails fast."""
        return read_calibration(self.source, pairs=pairs, count=self.samples, column=self.column)  # type: ignore[arg-type]

    def describe(self) -> str:
        """What the manifest records: the file name, or where the texts came from."""
        if isinstance(self.source, str | PathLike):
            return str(self.source)
        return "built-in" if self.source is None else "list"


@lru_cache(maxsize=2)
def _builtin(pairs: bool) -> tuple[Text, ...]:
    if pairs:
        with open(_DATA / "trecqa-calibration.csv", encoding="utf-8", newline="") as f:
            return tuple(dict.fromkeys((row["qtext"], row["atext"]) for row in csv.DictReader(f)))
    return english_sentences()


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ExportError(f"count must be a whole number of at least 1, got {count!r}; e.g. count=256")


def _sample(texts: list[Text], count: int, seed: int) -> list[Text]:
    if len(texts) <= count:
        return texts
    keep = sorted(random.Random(seed).sample(range(len(texts)), count))
    return [texts[i] for i in keep]


def _from_sequence(items: object, pairs: bool) -> list[Text]:
    if isinstance(items, (bytes, bytearray)) or not isinstance(items, Sequence):
        raise ExportError(
            f"calibration source must be a file path, a list of texts or None, got {type(items).__name__}; "
            "pass a list"
        )
    if not items:
        raise ExportError(
            "the calibration list is empty; pass at least one text, or None for the built-in ones"
        )
    texts: list[Text] = []
    for i, item in enumerate(items):
        is_pair = isinstance(item, (tuple, list)) and len(item) == 2
        if pairs and isinstance(item, str):
            raise ExportError(
                f"calibration item {i} is a single text, but pairs=True needs (query, document) pairs; "
                "pass 2-tuples of strings, or pairs=False for a bi-encoder"
            )
        if not pairs and is_pair:
            raise ExportError(
                f"calibration item {i} is a pair, but pairs=False needs single texts; "
                "pass strings, or pairs=True for a cross-encoder"
            )
        if pairs and not (is_pair and all(isinstance(t, str) for t in item)):
            shown = f"({', '.join(type(t).__name__ for t in item)})" if is_pair else type(item).__name__
            raise ExportError(
                f"calibration item {i} is {shown}, not a (query, document) pair of two strings; "
                "pass 2-tuples of strings"
            )
        if not pairs and not isinstance(item, str):
            raise ExportError(
                f"calibration item {i} is {type(item).__name__}, not a string; pass only strings"
            )
        texts.append((item[0], item[1]) if pairs else item)
    return texts


def _from_file(path: Path, pairs: bool, column: str | None) -> list[Text]:
    if not path.exists():
        raise ExportError(
            f"calibration file {path} does not exist; pass an existing {_SUPPORTED} file, "
            "or None for the built-in texts"
        )
    if path.is_dir():
        raise ExportError(f"calibration file {path} is a directory; pass one {_SUPPORTED} file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        found = f"suffix {path.suffix!r}" if path.suffix else "no suffix"
        raise ExportError(
            f"calibration file {path} has {found}; supported: {_SUPPORTED}; rename or convert it"
        )
    if column is not None and suffix == ".txt":
        raise ExportError(
            f"column={column!r} applies to .csv, .tsv and .jsonl files, but calibration file {path} "
            "is read one text per line; drop column="
        )
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ExportError(
            f"cannot read calibration file {path}: {e.strerror or e}; check its permissions"
        ) from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ExportError(
            f"calibration file {path} is not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start}); "
            "re-save it as UTF-8"
        ) from None
    hint = _hint(suffix, pairs)
    if not text.strip():
        raise ExportError(f"calibration file {path} is empty; {hint}")
    if suffix == ".txt":
        texts = _parse_txt(text, path, pairs)
    elif suffix == ".jsonl":
        texts = _parse_jsonl(text, path, pairs, column)
    else:
        texts = _parse_csv(text, path, pairs, column, "\t" if suffix == ".tsv" else ",")
    if not texts:
        raise ExportError(f"calibration file {path} holds no usable texts, only blank ones; {hint}")
    return texts


def _hint(suffix: str, pairs: bool) -> str:
    if suffix == ".txt":
        return "write one query<TAB>document pair per line" if pairs else "write one text per line"
    if suffix == ".jsonl":
        example = '{"query": "...", "document": "..."}' if pairs else '{"text": "..."}'
        return f"write one JSON object per line, like {example}"
    return f"write a header row, then one row per {'pair' if pairs else 'text'}"


def _usable(values: list[str], pairs: bool) -> Text | None:
    """The text (or pair) made of ``values``, or None when one of them is blank."""
    if not all(v.strip() for v in values):
        return None
    return (values[0], values[1]) if pairs else values[0]


def _lines(text: str) -> list[str]:
    return [line.removesuffix("\r") for line in text.split("\n")]


def _parse_txt(text: str, path: Path, pairs: bool) -> list[Text]:
    texts: list[Text] = []
    for number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        values = line.split("\t") if pairs else [line]
        if len(values) != 2 and pairs:
            raise ExportError(
                f"line {number} of calibration file {path} has {len(values)} tab-separated fields, not 2; "
                "with pairs=True each line is query<TAB>document"
            )
        usable = _usable(values, pairs)
        if usable is not None:
            texts.append(usable)
    return texts


def _column_names(column: str, pairs: bool) -> list[str]:
    if not pairs:
        return [column.strip()]
    names = [name.strip() for name in column.split(",")]
    if len(names) != 2:
        raise ExportError(
            f"column={column!r} names {len(names)} columns, but pairs=True needs two, the query's "
            "and the document's: column='query,document'"
        )
    return names


def _default_columns(available: list[str], pairs: bool, where: str, what: str) -> list[str]:
    if len(available) == (2 if pairs else 1):
        return available
    listed = ", ".join(repr(name) for name in available) or "none"
    wanted = f"the two {what}s of each pair, like column='query,document'" if pairs else f"the text {what}"
    plural = "" if len(available) == 1 else "s"
    raise ExportError(
        f"{where} has {len(available)} {what}{plural} ({listed}); pass {_COLUMN} naming {wanted}"
    )


def _parse_csv(text: str, path: Path, pairs: bool, column: str | None, delimiter: str) -> list[Text]:
    kind = "TSV" if delimiter == "\t" else "CSV"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    texts: list[Text] = []
    rows = 0
    try:
        header = next((row for row in reader if row), [])
        available = [name.strip() for name in header]
        listed = ", ".join(repr(name) for name in available)
        names = (
            _default_columns(available, pairs, f"calibration file {path}", "column")
            if column is None
            else _column_names(column, pairs)
        )
        for name in names:
            if name not in available:
                raise ExportError(
                    f"calibration file {path} has no column {name!r} in its header row, which reads "
                    f"{listed}; the first row of a {kind} file must name its columns: add a header row "
                    f"if the file has none, or pass {_COLUMN} naming one of those"
                )
        index = [available.index(name) for name in names]
        for row in reader:
            if not row:
                continue
            rows += 1
            if len(row) != len(header):
                sep = "tabs" if delimiter == "\t" else "commas"
                raise ExportError(
                    f"line {reader.line_num} of calibration file {path} has {len(row)} fields, "
                    f"but the header has {len(header)}; quote fields that contain {sep}"
                )
            usable = _usable([row[i] for i in index], pairs)
            if usable is not None:
                texts.append(usable)
    except csv.Error as e:
        raise ExportError(
            f"calibration file {path} is not valid {kind} near line {reader.line_num} ({e}); "
            "check its quoting"
        ) from None
    if rows == 0:
        raise ExportError(
            f"calibration file {path} has a header row but no data rows; add one row per "
            f"{'pair' if pairs else 'text'}"
        )
    return texts


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _parse_jsonl(text: str, path: Path, pairs: bool, column: str | None) -> list[Text]:
    names = None if column is None else _column_names(column, pairs)
    texts: list[Text] = []
    for number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ExportError(
                f"line {number} of calibration file {path} is not valid JSON ({e.msg}: column {e.colno}); "
                f"{_hint('.jsonl', pairs)}"
            ) from None
        if not isinstance(record, dict):
            raise ExportError(
                f"line {number} of calibration file {path} is a JSON {_json_kind(record)}, not an object; "
                f"{_hint('.jsonl', pairs)}"
            )
        if names is None:
            where = f"line {number} of calibration file {path}"
            names = _default_columns(list(record), pairs, where, "field")
        for name in names:
            if name not in record:
                listed = ", ".join(repr(key) for key in record) or "none"
                raise ExportError(
                    f"line {number} of calibration file {path} has no field {name!r} (its fields: {listed}); "
                    f"pass {_COLUMN} naming the {'query and document fields' if pairs else 'text field'}, "
                    "present on every line"
                )
            if not isinstance(record[name], str):
                raise ExportError(
                    f"field {name!r} on line {number} of calibration file {path} is a JSON "
                    f"{_json_kind(record[name])}, not a string; calibration texts must be strings"
                )
        usable = _usable([record[name] for name in names], pairs)
        if usable is not None:
            texts.append(usable)
    return texts
