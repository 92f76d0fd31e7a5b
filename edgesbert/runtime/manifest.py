"""The model-folder contract: ``edgesbert.json``, written by the exporter and read by the runtime.

A model folder holds ``tokenizer.json``, one or more graph files and this manifest. The manifest says
everything the runtime needs (and nothing in Python import paths): what kind of model it is, which graph
variants are present and how to feed them, how to pool and compare embeddings or how to turn logits
into scores, and where the model came from, with checksums and the validation figures measured at
export time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from edgesbert.errors import ManifestError

#: The version of this format, in every manifest's ``schema_version``; the runtime refuses any other.
SCHEMA_VERSION = 1
#: The manifest's file name in a model folder.
MANIFEST_FILE = "edgesbert.json"
#: The graph output that holds pooled (and normalized) sentence embeddings; a bi-encoder graph without it
#: outputs token embeddings first, which the runtime pools.
SENTENCE_OUTPUT = "sentence_embedding"
#: The inputs of a graph with its tokenizer inside (``export --with-tokenizer``): a batch of strings, and
#: for a cross-encoder the second text of each pair.
TEXT_INPUTS = ("text", "text_pair")
#: The backend of a static variant (``export --static``): a distilled token table, run with numpy alone
#: (``runtime/backends/static.py``); lower accuracy by design, so never a default nor a tuned choice.
STATIC_BACKEND = "static"


class ModelKind(str, Enum):
    """What the model does: embed texts, or score text pairs."""

    #: embeds each text on its own (``encode``); the manifest has an ``embedding`` section
    BI_ENCODER = "bi-encoder"
    #: scores each text pair together (``predict``, ``rank``); the manifest has a ``classifier`` section
    CROSS_ENCODER = "cross-encoder"


class Pooling(str, Enum):
    """How token embeddings become one sentence embedding (sentence-transformers' names)."""

    #: the average of the attended tokens' embeddings (padding left out)
    MEAN = "mean"
    #: the first attended token's embedding ([CLS] or ``<s>``)
    CLS = "cls"
    #: per dimension, the largest value over the attended tokens
    MAX = "max"
    #: the sum of the attended tokens' embeddings divided by the square root of their count
    MEAN_SQRT_LEN = "mean_sqrt_len_tokens"
    #: the last attended token's embedding (decoder-style models)
    LAST_TOKEN = "lasttoken"


class SimilarityFunction(str, Enum):
    """How two embeddings are compared; distances are negated so that higher is always closer."""

    #: cosine of the angle between the two, in [-1, 1]
    COSINE = "cosine"
    #: dot product (the cosine, for normalized embeddings)
    DOT = "dot"
    #: the Euclidean (L2) distance, negated
    EUCLIDEAN = "euclidean"
    #: the Manhattan (L1) distance, negated
    MANHATTAN = "manhattan"


class Activation(str, Enum):
    """What turns a cross-encoder's logits into scores."""

    #: 1 / (1 + exp(-logit)) per logit: scores in (0, 1); the default for one label
    SIGMOID = "sigmoid"
    #: the logits as they are; the default for several labels
    IDENTITY = "identity"
    #: softmax over the labels: each pair's scores sum to 1
    SOFTMAX = "softmax"
    #: tanh per logit: scores in (-1, 1)
    TANH = "tanh"


class Precision(str, Enum):
    """Numeric precision of a graph variant's weights and arithmetic."""

    #: 32-bit float weights and arithmetic, as in PyTorch
    FP32 = "fp32"
    #: 16-bit float weights (fp16 arithmetic where the device has it), float32 inputs and outputs;
    #: a GPU format
    FP16 = "fp16"
    #: 8-bit integer weights; activations too (recipe ``quantize``: int8-dynamic, int8-static) or
    #: float ones (int8-weights)
    INT8 = "int8"
    BF16 = "bf16"  # fp32 weights, bf16 arithmetic on CPUs that have it (OpenVINO; fp32 elsewhere)
    INT4 = "int4"  # 4-bit weights in groups (the embedding table in int8), float activations


E = TypeVar("E", bound=Enum)

#: A variant is batch-dependent when, in its validation, a text's embedding alone and beside a long text
#: had a cosine below this, or a pair's score moved by more than ``BATCH_MAX_SCORE_DIFF``.
BATCH_MIN_COSINE = 0.99999
#: A cross-encoder variant is batch-dependent when a pair's score, scored alone and beside the longest
#: pair, moved by more than this (``validation.batch_max_score_diff``).
BATCH_MAX_SCORE_DIFF = 1e-5


@dataclass(frozen=True)
class GraphVariant:
    """One graph file of the folder and how to run it."""

    #: what the variant is called, unique in the folder ("fp32", "O2-int8", "openvino-int8", ...);
    #: ``load(variant=...)`` and ``default_variant`` name it
    name: str
    #: the graph file, relative to the folder ("onnx/model.onnx"; an OpenVINO IR's .xml, its .bin
    #: beside it; a static table's .safetensors)
    file: str
    #: the runtime backend that runs it, a module of ``runtime/backends``: "onnxruntime", "openvino"
    #: or "static"
    backend: str
    #: numeric precision of its weights and arithmetic
    precision: Precision
    #: the graph's input names, in order: token inputs (input_ids, attention_mask, token_type_ids),
    #: ``TEXT_INPUTS`` or ``packing.PACKED_INPUTS``
    inputs: tuple[str, ...]
    #: the graph's output names; the runtime reads ``sentence_embedding`` where present, else the first
    #: (token embeddings, logits or a packed graph's segment_embedding)
    outputs: tuple[str, ...]
    #: SHA-256 of the graph file, hex; its weights file (IR .bin, ONNX over 2 GB: ``<file>_data``) is
    #: checksummed in ``provenance.checksums``
    sha256: str
    #: (batch, sequence) shapes to compile for, e.g. for NPUs; inputs are padded to the nearest one.
    #: Empty: the graph runs any shape.
    static_shapes: tuple[tuple[int, int], ...] = ()
    #: figures measured at export against the PyTorch reference, by name: e.g. mean_cosine, spearman,
    #: score_spearman, samples, texts_per_second (on the export machine), batch_min_cosine
    validation: Mapping[str, float] = field(default_factory=dict)
    #: how the exporter made it, e.g. {"optimize": "O2", "quantize": "int8-dynamic", "per_channel": True}
    recipe: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    #: a packed graph's longest row, in tokens (several texts per row, see ``runtime/packing.py``); 0: padded
    row_length: int = 0
    #: the width of this variant's embeddings where it differs from the model's (a static table reduced
    #: to fewer dimensions); 0: ``embedding.dimension``
    dimension: int = 0

    @property
    def static(self) -> bool:
        """Whether this is a static variant: a token table, not a graph (``STATIC_BACKEND``)."""
        return self.backend == STATIC_BACKEND

    @property
    def takes_text(self) -> bool:
        """Whether the graph tokenizes itself: strings in (``TEXT_INPUTS``), no token ids."""
        return self.inputs[:1] == TEXT_INPUTS[:1]

    @property
    def packed(self) -> bool:
        """Whether the graph takes packed rows of texts (``packing.PACKED_INPUTS``), not padded ones."""
        return self.row_length > 0

    @property
    def batch_dependent(self) -> bool:
        """Whether its output for one text changes with the other texts of its batch (as validated).

        Dynamic int8 graphs quantize activations with one scale per batch, so the same text embedded
        alone or beside a longer one gives slightly different vectors; such a variant is never the default.
        """
        figures = self.validation
        if "batch_min_cosine" not in figures and "batch_max_score_diff" not in figures:
            return self.recipe.get("quantize") == "int8-dynamic"  # exported before the effect was measured
        return (
            figures.get("batch_min_cosine", 1.0) < BATCH_MIN_COSINE
            or figures.get("batch_max_score_diff", 0.0) > BATCH_MAX_SCORE_DIFF
        )


@dataclass(frozen=True)
class EmbeddingSpec:
    """How a bi-encoder's graph output becomes the embeddings ``encode`` returns."""

    #: how many numbers an embedding has (after any dense layers); a variant's ``dimension`` may be fewer
    dimension: int
    #: how token embeddings become one sentence embedding, in the graph or in the runtime
    pooling: Pooling
    pooling_in_graph: bool  # in every variant's graph; the runtime pools a graph with no sentence_embedding
    #: whether sentence embeddings are scaled to unit L2 length after pooling (in the graph where it pools)
    normalize: bool
    #: how ``similarity`` compares two embeddings (sentence-transformers' ``similarity_fn_name``)
    similarity: SimilarityFunction = SimilarityFunction.COSINE
    #: prompt name -> the text ``encode`` puts before each sentence for that ``prompt_name``,
    #: e.g. {"query": "query: "}
    prompts: Mapping[str, str] = field(default_factory=dict)
    #: the prompt ``encode`` uses when given none; null: no prompt
    default_prompt_name: str | None = None


@dataclass(frozen=True)
class ClassifierSpec:
    """How a cross-encoder's logits become the scores ``predict`` returns."""

    #: logits per pair: 1 for a relevance score, more for classes (e.g. 3 for NLI)
    num_labels: int
    #: what ``predict`` applies to the logits to make scores
    activation: Activation
    #: the name of each logit, in order (the model config's ``id2label``); empty where unknown
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenizerSpec:
    """The tokenizer file and the padding it needs."""

    #: the Hugging Face ``tokenizers`` file, relative to the folder ("tokenizer.json"); the runtime sets its
    #: truncation and padding
    file: str
    #: the padding token's text, e.g. "[PAD]"
    pad_token: str
    #: the padding token's id, which pads ``input_ids`` (and packed rows, static shapes)
    pad_token_id: int
    #: which end of a sequence padding goes to: "right" or "left"
    padding_side: str = "right"


@dataclass(frozen=True)
class Provenance:
    """Where the model came from and what the export measured."""

    #: the model the export read, as given to ``edgesbert export``: a Hugging Face id or a local folder
    source_model: str
    #: when the export wrote the manifest: UTC, ISO 8601 to the second ("2025-01-31T12:00:00+00:00")
    exported_at: str
    #: package -> the version the export ran with (edgesbert, torch, transformers, onnxruntime,
    #: openvino, ...; packages not installed left out)
    versions: Mapping[str, str] = field(default_factory=dict)
    #: path relative to the folder -> SHA-256, hex, of every file the export wrote but the manifest (graphs
    #: and their weights files, tokenizer, configs); ``edgesbert verify`` and ``load()`` check them
    checksums: Mapping[str, str] = field(default_factory=dict)
    #: the CPU kind the variants were validated and the default chosen on (``runtime.cpu.Cpu.key``; its
    #: name in ``cpu_name``); "" in folders exported before it was recorded: an unknown CPU
    cpu: str = ""
    #: that CPU's model name as the system reports it, for messages; "": not recorded
    cpu_name: str = ""


@dataclass(frozen=True)
class Manifest:
    """The whole contract of a model folder; see the module docstring."""

    #: what the model does; it decides which of ``embedding`` and ``classifier`` is read
    kind: ModelKind
    #: the longest input the graphs take, in tokens (special tokens included); longer texts are
    #: truncated (a variant's ``static_shapes`` may lower it)
    max_seq_length: int
    #: the tokenizer file and its padding
    tokenizer: TokenizerSpec
    #: the graph variants in the folder, each validated at export; at least one
    variants: tuple[GraphVariant, ...]
    #: where the model came from: source, versions, checksums, the CPU it was validated on
    provenance: Provenance
    #: the variant ``load()`` runs when none is named: the best validated one whose outputs do not depend
    #: on the batch (a tuned choice or, on another CPU kind, a portable one may replace it)
    default_variant: str
    #: a bi-encoder's pooling, normalization, similarity and prompts; null for a cross-encoder
    embedding: EmbeddingSpec | None = None
    #: a cross-encoder's labels and activation; null for a bi-encoder
    classifier: ClassifierSpec | None = None
    #: the format version the manifest was written in (``SCHEMA_VERSION``)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        names = [v.name for v in self.variants]
        if not names:
            raise ManifestError("a manifest needs at least one graph variant")
        if len(set(names)) != len(names):
            raise ManifestError(f"variant names must be unique, got {names}")
        if self.default_variant not in names:
            raise ManifestError(f"default_variant {self.default_variant!r} is not one of {names}")
        if self.kind is ModelKind.BI_ENCODER and self.embedding is None:
            raise ManifestError("a bi-encoder manifest needs an 'embedding' section")
        if self.kind is ModelKind.CROSS_ENCODER and self.classifier is None:
            raise ManifestError("a cross-encoder manifest needs a 'classifier' section")

    def variant(self, name: str | None = None) -> GraphVariant:
        """Return the variant called ``name``, or the default one."""
        wanted = name or self.default_variant
        for variant in self.variants:
            if variant.name == wanted:
                return variant
        raise ManifestError(
            f"this model folder has no variant {wanted!r}; it has {[v.name for v in self.variants]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form, enums as their values."""
        return plain(asdict(self))

    def save(self, folder: str | Path) -> Path:
        """Write the manifest into ``folder`` and return its path."""
        path = Path(folder) / MANIFEST_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = MANIFEST_FILE) -> Manifest:
        """Parse and validate; errors name ``source`` and the offending field."""
        return _parse(_Fields(data, source, ""))

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        """Read ``folder/edgesbert.json``."""
        path = Path(folder) / MANIFEST_FILE
        if not path.is_file():
            raise ManifestError(
                f"{path} not found: {folder} is not an edgesbert model folder; "
                "create one with `edgesbert export MODEL --output FOLDER`"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ManifestError(f"{path} is not valid JSON ({e}); re-export the model") from e
        return cls.from_dict(data, str(path))


def plain(value: Any) -> Any:
    """``value`` as JSON holds it: enums as their values, tuples as lists, mappings as dicts."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class _Fields:
    """Typed access to one JSON object, with errors that name the file and the field path."""

    def __init__(self, data: Any, source: str, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ManifestError(f"{source}: field {path or '(top level)'!r} must be an object")
        self.data, self.source, self.path = data, source, path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, message: str) -> ManifestError:
        return ManifestError(f"{self.source}: field {self._name(key)!r} {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "is missing")
            return default
        value = self.data[key]
        if value is None and default is None:
            return None
        # bool is an int in Python; a manifest "true" where a number belongs is still an error.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
            raise self.fail(key, f"must be {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    def enum(self, key: str, enum: type[E], default: Any = ...) -> E:
        raw = self.get(key, str, default if default is ... else default.value)
        try:
            return enum(raw)
        except ValueError:
            raise self.fail(key, f"must be one of {[m.value for m in enum]}, got {raw!r}") from None

    def obj(self, key: str) -> _Fields:
        return _Fields(self.get(key, dict), self.source, self._name(key))

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...]:
        items = self.get(key, list, default)
        if not all(isinstance(item, str) for item in items):
            raise self.fail(key, "must be a list of strings")
        return tuple(items)

    def string_map(self, key: str) -> dict[str, str]:
        items = self.get(key, dict, {})
        if not all(isinstance(v, str) for v in items.values()):
            raise self.fail(key, "must map names to strings")
        return dict(items)


def _parse(top: _Fields) -> Manifest:
    version = top.get("schema_version", int)
    if version != SCHEMA_VERSION:
        raise top.fail(
            "schema_version",
            f"is {version}, but this edgesbert reads schema version {SCHEMA_VERSION}; "
            "upgrade edgesbert or re-export the model with this version",
        )
    variants = top.get("variants", list)
    kind = top.enum("kind", ModelKind)
    try:
        return Manifest(
            kind=kind,
            max_seq_length=_positive(top, "max_seq_length"),
            tokenizer=_tokenizer(top.obj("tokenizer")),
            variants=tuple(
                _variant(_Fields(v, top.source, f"variants[{i}]")) for i, v in enumerate(variants)
            ),
            provenance=_provenance(top.obj("provenance")),
            default_variant=top.get("default_variant", str),
            embedding=_embedding(top.obj("embedding")) if kind is ModelKind.BI_ENCODER else None,
            classifier=_classifier(top.obj("classifier")) if kind is ModelKind.CROSS_ENCODER else None,
        )
    except ManifestError as e:
        if str(e).startswith(top.source):
            raise
        raise ManifestError(f"{top.source}: {e}") from None


def _positive(fields: _Fields, key: str) -> int:
    value: int = fields.get(key, int)
    if value <= 0:
        raise fields.fail(key, f"must be a positive integer, got {value}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _tokenizer(f: _Fields) -> TokenizerSpec:
    return TokenizerSpec(
        file=f.get("file", str),
        pad_token=f.get("pad_token", str),
        pad_token_id=f.get("pad_token_id", int),
        padding_side=f.get("padding_side", str, "right"),
    )


def _variant(f: _Fields) -> GraphVariant:
    shapes = f.get("static_shapes", list, [])
    for shape in shapes:
        if not isinstance(shape, list) or len(shape) != 2 or not all(_is_int(n) and n > 0 for n in shape):
            raise f.fail(
                "static_shapes", f"must be [batch, sequence] pairs of positive integers, got {shape!r}"
            )
    row_length = f.get("row_length", int, 0)
    if row_length < 0:
        raise f.fail("row_length", f"must be 0 (padded) or a packed graph's longest row, got {row_length}")
    dimension = f.get("dimension", int, 0)
    if dimension < 0:
        raise f.fail(
            "dimension", f"must be 0 (the model's) or the variant's embedding width, got {dimension}"
        )
    validation = f.get("validation", dict, {})
    if not all(_is_number(v) for v in validation.values()):
        raise f.fail("validation", "must map figure names to numbers")
    recipe = f.get("recipe", dict, {})
    if not all(isinstance(v, str | int | float | bool) for v in recipe.values()):
        raise f.fail("recipe", "must map names to strings, numbers or booleans")
    return GraphVariant(
        name=f.get("name", str),
        file=f.get("file", str),
        backend=f.get("backend", str),
        precision=f.enum("precision", Precision),
        inputs=f.strings("inputs"),
        outputs=f.strings("outputs"),
        sha256=f.get("sha256", str),
        static_shapes=tuple((shape[0], shape[1]) for shape in shapes),
        row_length=row_length,
        dimension=dimension,
        validation=validation,
        recipe=recipe,
    )


def _embedding(f: _Fields) -> EmbeddingSpec:
    return EmbeddingSpec(
        dimension=_positive(f, "dimension"),
        pooling=f.enum("pooling", Pooling),
        pooling_in_graph=f.get("pooling_in_graph", bool),
        normalize=f.get("normalize", bool),
        similarity=f.enum("similarity", SimilarityFunction, SimilarityFunction.COSINE),
        prompts=f.string_map("prompts"),
        default_prompt_name=f.get("default_prompt_name", str, None),
    )


def _classifier(f: _Fields) -> ClassifierSpec:
    return ClassifierSpec(
        num_labels=_positive(f, "num_labels"),
        activation=f.enum("activation", Activation),
        labels=f.strings("labels", []),
    )


def _provenance(f: _Fields) -> Provenance:
    return Provenance(
        source_model=f.get("source_model", str),
        exported_at=f.get("exported_at", str),
        versions=f.string_map("versions"),
        checksums=f.string_map("checksums"),
        cpu=f.get("cpu", str, ""),
        cpu_name=f.get("cpu_name", str, ""),
    )
