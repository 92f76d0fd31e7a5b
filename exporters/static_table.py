"""Steps: a static variant (``export --static``), a distilled token table in float32 and in int8.

Each is a folder of model2vec's layout, which model2vec's ``StaticModel.from_pretrained`` reads:
``model.safetensors`` (``embeddings``; for int8 also ``weights``, one scale per row), ``tokenizer.json``
(truncating where the model's graphs do) and ``config.json``. The float32 folder is also a
sentence-transformers model (``modules.json``: StaticEmbedding, then Normalize), so
``SentenceTransformer("FOLDER/static")`` loads it; sentence-transformers' StaticEmbedding cannot run int8
rows. The runtime reads the table with numpy (``runtime/backends/static.py``).

A cross-encoder has no static variant: it scores a pair with attention across both texts, which a sum of
token vectors cannot imitate. Distil the bi-encoder that retrieves for it instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from edgesbert.errors import ExportError
from edgesbert.exporters.context import ExportContext
from edgesbert.exporters.static_distill import (
    SIF_COEFFICIENT,
    Distilled,
    distill,
    dropped_axes,
    sentence_vectors,
    table_dimensions,
)
from edgesbert.reference import BiEncoder
from edgesbert.runtime.backends.static import SCALES, TABLE
from edgesbert.runtime.manifest import SENTENCE_OUTPUT, STATIC_BACKEND, GraphVariant, Precision
from edgesbert.runtime.safetensors_numpy import read_safetensors, write_safetensors
from edgesbert.runtime.verify import sha256_of

#: dimensions of the table: model2vec's default (fewer where the model has fewer left)
DIMENSIONS = 256
FLOAT_FOLDER, INT8_FOLDER = "static", "static-int8"
STATIC_NEEDS_BI_ENCODER = (
    "--static needs a bi-encoder: a cross-encoder scores a pair with attention across both texts, which a "
    "sum of token vectors cannot imitate; export the bi-encoder that retrieves for it with --static instead"
)
TABLE_FILE = "model.safetensors"
#: sentence-transformers' modules of the float32 folder: the table at the folder's root, then Normalize
ST_MODULES = [
    {"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"},
    {"idx": 1, "name": "1", "path": "1_Normalize", "type": "sentence_transformers.models.Normalize"},
]


@dataclass
class Distillation:
    """What the two steps share: the table's width and, once made, the table and its reference."""

    dimensions: int = DIMENSIONS
    table: Distilled | None = field(default=None, repr=False)
    reference: BiEncoder | None = field(default=None, repr=False)
    _mapped: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def project(self, texts: list[str]) -> np.ndarray:
        """The reference's embeddings of ``texts`` in the table's space, to validate the table against.

        The reference's output before its final normalization, centred and projected as the token vectors
        were: what the table's sum of token rows stands for.
        """
        if self.table is None or self.reference is None:
            raise ExportError("the static table must be distilled before it is validated")
        key = hash(tuple(texts))
        if key not in self._mapped:  # both steps validate on the same texts
            self._mapped[key] = self.table.project(sentence_vectors(self.reference, texts))
        return self._mapped[key]


@dataclass(frozen=True)
class StaticTable:
    """Distil the float32 table of the reference into ``static/``."""

    distillation: Distillation = field(default_factory=Distillation)

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Distil, write the folder and describe it."""
        reference = ctx.reference
        if not isinstance(reference, BiEncoder):
            raise ExportError(STATIC_NEEDS_BI_ENCODER)
        tokenizer = Tokenizer.from_file(str(ctx.tokenizer_path()))
        hidden = reference.embedding_dimension
        dimensions = table_dimensions(hidden, self.distillation.dimensions)
        table = distill(reference, tokenizer, dimensions)
        self.distillation.table, self.distillation.reference = table, reference
        write_folder(ctx, FLOAT_FOLDER, {TABLE: table.rows}, tokenizer, sentence_transformers=True)
        recipe: dict[str, str | int | float | bool] = {
            "distill": "the model's embedding of each token, before normalization",
            "dimensions": dimensions,
            "dropped_axes": dropped_axes(hidden),
            "weighting": f"sif-zipf a={SIF_COEFFICIENT:g}",
            "prompt": reference.default_prompt_name or "",
        }
        return _variant(ctx, FLOAT_FOLDER, Precision.FP32, dimensions, recipe)

    def reference_space(self, embeddings: np.ndarray, texts: list[str]) -> np.ndarray:
        """The reference's embeddings of ``texts`` as the table sees them (see ``Distillation.project``)."""
        return self.distillation.project(texts)


@dataclass(frozen=True)
class StaticTableInt8:
    """The float32 table in int8, one scale per row (model2vec's ``weights``), into ``static-int8/``."""

    distillation: Distillation

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Quantize the float32 table written before, write the folder and describe it."""
        source = ctx.variant(FLOAT_FOLDER)
        rows = np.asarray(read_safetensors(ctx.folder / source.file)[TABLE], dtype=np.float32)
        scales = np.abs(rows).max(axis=1) / 127.0
        codes = np.round(rows / np.where(scales > 0, scales, 1.0)[:, None]).astype(np.int8)
        tokenizer = Tokenizer.from_file(str(ctx.tokenizer_path()))
        write_folder(ctx, INT8_FOLDER, {TABLE: codes, SCALES: scales.astype(np.float32)}, tokenizer)
        recipe = {**source.recipe, "quantize": "int8, one scale per row"}
        return _variant(ctx, INT8_FOLDER, Precision.INT8, source.dimension, recipe)

    def reference_space(self, embeddings: np.ndarray, texts: list[str]) -> np.ndarray:
        """The reference's embeddings of ``texts`` as the table sees them (see ``Distillation.project``)."""
        return self.distillation.project(texts)


def static_steps(dimensions: int = DIMENSIONS) -> list[StaticTable | StaticTableInt8]:
    """The float32 and int8 static variants, sharing one distillation."""
    if dimensions < 1:
        raise ExportError(f"a static table needs at least 1 dimension, got {dimensions}")
    distillation = Distillation(dimensions)
    return [StaticTable(distillation), StaticTableInt8(distillation)]


def write_folder(
    ctx: ExportContext,
    name: str,
    tensors: dict[str, np.ndarray],
    tokenizer: Tokenizer,
    *,
    sentence_transformers: bool = False,
) -> None:
    """Write the model2vec folder ``name``: table, tokenizer, config (and sentence-transformers' files)."""
    reference = ctx.reference
    if not isinstance(reference, BiEncoder):  # export_model refuses --static for a cross-encoder first
        raise ExportError(STATIC_NEEDS_BI_ENCODER)
    folder = ctx.path(f"{name}/{TABLE_FILE}").parent
    write_safetensors(folder / TABLE_FILE, tensors)
    # model2vec and StaticEmbedding tokenize without special tokens; truncate where the graphs do
    content_tokens = reference.max_seq_length - tokenizer.num_special_tokens_to_add(False)
    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_padding()
    copy.enable_truncation(max_length=max(content_tokens, 1))
    copy.save(str(folder / "tokenizer.json"))
    table = tensors[TABLE]
    config = {
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "tokenizer_name": reference.source,
        "apply_pca": int(table.shape[1]),
        "sif_coefficient": SIF_COEFFICIENT,
        "hidden_dim": int(table.shape[1]),
        "seq_length": content_tokens,
        "max_length": content_tokens,
        "normalize": True,
        "embedding_dtype": str(table.dtype),
    }
    _write_json(folder / "config.json", config)
    if sentence_transformers:
        _write_json(folder / "modules.json", ST_MODULES)
        _write_json(
            folder / "config_sentence_transformers.json",
            {
                "prompts": dict(reference.prompts),
                "default_prompt_name": reference.default_prompt_name,
                "similarity_fn_name": reference.similarity_fn_name.value,
            },
        )


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _variant(
    ctx: ExportContext,
    folder: str,
    precision: Precision,
    dimension: int,
    recipe: Mapping[str, str | int | float | bool],
) -> GraphVariant:
    file = f"{folder}/{TABLE_FILE}"
    return GraphVariant(
        name=folder,
        file=file,
        backend=STATIC_BACKEND,
        precision=precision,
        inputs=("input_ids", "attention_mask"),
        outputs=(SENTENCE_OUTPUT,),
        sha256=sha256_of(ctx.folder / file),
        dimension=dimension,
        recipe=recipe,
    )
