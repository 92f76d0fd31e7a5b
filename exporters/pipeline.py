"""The export pipeline: reference in, validated model folder out.

It loads the reference, runs the export steps into a staging folder, validates every variant through
the runtime, writes the manifest, and swaps the folder in only when all of it succeeded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from edgesbert.errors import ExportError
from edgesbert.exporters.data_sets import validation_pairs, validation_sentences
from edgesbert.exporters.onnx_graph import TokenEmbeddings, export_onnx
from edgesbert.exporters.staging import staged_folder
from edgesbert.exporters.validation import Tolerance, check, embedding_figures, score_figures
from edgesbert.reference import BiEncoder, CrossEncoder
from edgesbert.resolve import resolve_model
from edgesbert.runtime import models as runtime
from edgesbert.runtime.manifest import (
    MANIFEST_FILE,
    ClassifierSpec,
    EmbeddingSpec,
    GraphVariant,
    Manifest,
    ModelKind,
    Precision,
    Provenance,
    TokenizerSpec,
)

log = logging.getLogger("edgesbert.export")
TOKENIZER_FILE = "tokenizer.json"


@dataclass
class ExportContext:
    """What the steps share: the reference model, the staging folder and the validation data."""

    reference: BiEncoder | CrossEncoder
    folder: Path
    pooling_in_graph: bool = True
    tolerance: Tolerance = field(default_factory=Tolerance)
    validation_size: int = 512
    variants: list[GraphVariant] = field(default_factory=list)

    @property
    def kind(self) -> ModelKind:
        """Bi-encoder or cross-encoder."""
        return ModelKind.BI_ENCODER if isinstance(self.reference, BiEncoder) else ModelKind.CROSS_ENCODER


#: A step writes one graph variant into the context's folder and describes it.
Step = Callable[[ExportContext], GraphVariant]


def onnx_fp32(ctx: ExportContext) -> GraphVariant:
    """Trace the reference into ``model.onnx``: pooling and normalization inside for bi-encoders."""
    reference = ctx.reference
    if isinstance(reference, BiEncoder):
        sample: list = ["A short one.", "A somewhat longer sentence, so that the batch has padding."]
        network = reference.network if ctx.pooling_in_graph else TokenEmbeddings(reference.network)
        output = "sentence_embedding" if ctx.pooling_in_graph else "token_embeddings"
    else:
        sample = [("A query.", "A short answer."), ("A longer query here?", "An answer with more words.")]
        network, output = reference.network, "logits"
    features = reference.tokenize(sample)
    path = ctx.folder / "model.onnx"
    export_onnx(network, features, output, path)
    return GraphVariant(
        name="fp32",
        file=path.name,
        backend="onnxruntime",
        precision=Precision.FP32,
        inputs=tuple(features),
        outputs=(output,),
        sha256=runtime.sha256_of(path),
    )


#: Named step lists; ``edgesbert export --backend NAME`` runs ``PRESETS[NAME]``.
PRESETS: dict[str, tuple[Step, ...]] = {"onnx": (onnx_fp32,)}


def detect_kind(folder: Path) -> ModelKind:
    """A sentence-transformers folder is a bi-encoder; a sequence classifier is a cross-encoder."""
    if (folder / "modules.json").is_file() or (folder / "sentence_bert_config.json").is_file():
        return ModelKind.BI_ENCODER
    config_file = folder / "config.json"
    if config_file.is_file():
        architectures = json.loads(config_file.read_text()).get("architectures") or []
        if any(a.endswith("ForSequenceClassification") for a in architectures):
            return ModelKind.CROSS_ENCODER
    return ModelKind.BI_ENCODER


def load_reference(model: str | Path, kind: ModelKind | str | None = None) -> BiEncoder | CrossEncoder:
    """Load the PyTorch reference for ``model``, with eager attention (the graph exporters trace best)."""
    folder = resolve_model(model)
    kind = ModelKind(kind) if kind else detect_kind(folder)
    if kind is ModelKind.BI_ENCODER:
        reference: BiEncoder | CrossEncoder = BiEncoder(folder, attn_implementation="eager")
    else:
        reference = CrossEncoder(folder, attn_implementation="eager")
    reference.source = str(model)
    return reference


def export_model(
    model: str | Path | BiEncoder | CrossEncoder,
    output: str | Path,
    *,
    preset: str = "onnx",
    kind: ModelKind | str | None = None,
    pooling_in_graph: bool = True,
    tolerance: Tolerance | None = None,
    validation_size: int = 512,
) -> Manifest:
    """Export ``model`` into the folder ``output`` and return the manifest written there.

    Every variant is validated against the PyTorch reference on real sentences before anything is
    written; if any step or validation fails, ``output`` is left exactly as it was.

    Args:
        model: a folder, a Hugging Face id (resolved offline first) or a loaded reference model.
        output: the model folder to create or replace (only an edgesbert folder is ever replaced).
        preset: which named list of steps to run (see ``PRESETS``).
        kind: "bi-encoder" or "cross-encoder"; None detects it from the folder.
        pooling_in_graph: put pooling and normalization inside bi-encoder graphs.
        tolerance: how far variants may drift from the reference.
        validation_size: number of real sentences (or pairs) to validate on.
    """
    if preset not in PRESETS:
        raise ExportError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if validation_size < 2:
        raise ExportError(f"validation_size must be at least 2, got {validation_size}")
    reference = model if isinstance(model, BiEncoder | CrossEncoder) else load_reference(model, kind)
    if isinstance(reference, BiEncoder) and reference.layout.dense and not pooling_in_graph:
        raise ExportError("a model with Dense layers needs pooling inside the graph")
    with staged_folder(output) as staging:
        ctx = ExportContext(reference, staging, pooling_in_graph, tolerance or Tolerance(), validation_size)
        tokenizer = write_tokenizer(reference, staging)
        expected = reference_outputs(ctx)
        for step in PRESETS[preset]:
            variant = step(ctx)
            ctx.variants.append(variant)
            figures = validate(ctx, tokenizer, variant, expected)
            ctx.variants[-1] = replace(variant, validation=figures)
            log.info("validated %s: %s", variant.name, figures)
        manifest = build_manifest(ctx, tokenizer, with_checksums=True)
        manifest.save(staging)
    return manifest


def write_tokenizer(reference: BiEncoder | CrossEncoder, folder: Path) -> TokenizerSpec:
    """Save the fast tokenizer as a bare ``tokenizer.json``; the runtime sets truncation and padding."""
    hf = reference.tokenizer
    tokenizer = Tokenizer.from_str(hf.backend_tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    tokenizer.save(str(folder / TOKENIZER_FILE))
    if hf.pad_token is None:
        raise ExportError(f"the tokenizer of {reference.source} has no padding token; set one and retry")
    return TokenizerSpec(TOKENIZER_FILE, str(hf.pad_token), int(hf.pad_token_id), str(hf.padding_side))


def reference_outputs(ctx: ExportContext) -> np.ndarray:
    """The reference's embeddings or scores on the validation data, computed once for all variants."""
    if isinstance(ctx.reference, BiEncoder):
        return ctx.reference.encode(validation_sentences(ctx.validation_size), batch_size=64)
    return ctx.reference.predict(validation_pairs(ctx.validation_size), batch_size=64)


def validate(
    ctx: ExportContext, tokenizer: TokenizerSpec, variant: GraphVariant, expected: np.ndarray
) -> dict[str, float]:
    """Run ``variant`` through the runtime on the validation data and compare with ``expected``."""
    build_manifest(ctx, tokenizer).save(ctx.folder)  # provisional, so the runtime can open the folder
    model = runtime.load(ctx.folder, variant=variant.name)
    if isinstance(model, runtime.BiEncoder):
        actual = model.encode(validation_sentences(ctx.validation_size), batch_size=64)
        figures = embedding_figures(expected, actual)
    else:
        actual = model.predict(validation_pairs(ctx.validation_size), batch_size=64)
        figures = score_figures(expected, actual)
    check(variant.name, figures, ctx.tolerance)
    return figures


def build_manifest(ctx: ExportContext, tokenizer: TokenizerSpec, with_checksums: bool = False) -> Manifest:
    """Describe the staging folder as it stands."""
    reference = ctx.reference
    embedding = classifier = None
    if isinstance(reference, BiEncoder):
        layout = reference.layout
        embedding = EmbeddingSpec(
            dimension=reference.embedding_dimension,
            pooling=layout.pooling,
            pooling_in_graph=ctx.pooling_in_graph,
            normalize=layout.normalize,
            similarity=reference.similarity_fn_name,
            prompts=dict(reference.prompts),
            default_prompt_name=reference.default_prompt_name,
        )
    else:
        classifier = ClassifierSpec(reference.num_labels, reference.activation, reference.labels)
    return Manifest(
        kind=ctx.kind,
        max_seq_length=reference.max_seq_length,
        tokenizer=tokenizer,
        variants=tuple(ctx.variants),
        provenance=Provenance(
            source_model=reference.source,
            exported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            versions=_versions(("edgesbert", "torch", "transformers", "onnx", "onnxruntime", "tokenizers")),
            checksums=_checksums(ctx.folder) if with_checksums else {},
        ),
        default_variant=ctx.variants[0].name,
        embedding=embedding,
        classifier=classifier,
    )


def _versions(packages: Sequence[str]) -> dict[str, str]:
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    found["torch"] = torch.__version__
    return found


def _checksums(folder: Path) -> dict[str, str]:
    return {
        p.name: runtime.sha256_of(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST_FILE
    }
