"""What an export writes into ``edgesbert.json``: the variants, the default one, provenance and checksums."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import torch

from edgesbert.errors import ExportError
from edgesbert.exporters.context import ExportContext
from edgesbert.reference import BiEncoder
from edgesbert.runtime.cpu import this_cpu
from edgesbert.runtime.manifest import (
    MANIFEST_FILE,
    SENTENCE_OUTPUT,
    ClassifierSpec,
    EmbeddingSpec,
    GraphVariant,
    Manifest,
    Precision,
    Provenance,
)
from edgesbert.runtime.verify import sha256_of


def default_variant(variants: Sequence[GraphVariant]) -> str:
    """The best validated CPU variant whose outputs do not depend on the batch.

    int8 (activations too, then weights only) before optimized fp32 before fp32, then by quality; fp16
    (a GPU format) and bf16 (an opt-in whose numbers follow the CPU) only when there is nothing else. A
    batch-dependent variant (dynamic int8) is never the default: a text embedded today must give the same
    vector tomorrow in another batch; nor is a graph with the tokenizer inside (it needs its backend's
    tokenizer ops). Where the chosen variant has a packed twin as steady as itself (``--packed``), the twin
    is the default: it computes no padding; ``edgesbert tune`` keeps the padded one on a CPU where packing
    is slower. A batch-dependent variant stands in the choice by its packed twin where only the twin is
    steady (OpenVINO int8: padded rows change length with the batch, packed rows do not; the TREC QA
    reranker's int8, 3.6e-4 padded, 0 packed on an Intel Xeon with VNNI). A static token table
    (``--static``) is never the default: its accuracy is lower by design.
    """

    def preference(variant: GraphVariant) -> tuple[int, float]:
        weights_only = variant.recipe.get("quantize") == "int8-weights"
        tier = {
            Precision.INT8: 2 if weights_only else 3,
            Precision.FP32: 1 if "optimize" in variant.recipe else 0,
        }
        quality = variant.validation.get("spearman", variant.validation.get("score_spearman", 0.0))
        return tier.get(variant.precision, -1), quality

    graphs = [v for v in variants if not v.static] or list(variants)  # a static table: asked for by name
    candidates = [v for v in graphs if not v.takes_text and not v.packed] or graphs

    def steadiest(variant: GraphVariant) -> GraphVariant:
        twin = packed_twin(variant, variants)
        if variant.batch_dependent and twin is not None and not twin.batch_dependent:
            return twin
        return variant

    options = [steadiest(v) for v in candidates]
    steady = [v for v in options if not v.batch_dependent] or options
    chosen = max(steady, key=preference)
    if chosen.packed:
        return chosen.name
    twin = packed_twin(chosen, variants)
    if twin is not None and (chosen.batch_dependent or not twin.batch_dependent):
        return twin.name
    return chosen.name


def packed_twin(variant: GraphVariant, variants: Sequence[GraphVariant]) -> GraphVariant | None:
    """The packed variant made as ``variant`` was (same backend, precision and quantization), if any."""

    def making(v: GraphVariant) -> tuple:
        return v.backend, v.precision, v.recipe.get("quantize"), "optimize" in v.recipe, v.takes_text

    return next((v for v in variants if v.packed and making(v) == making(variant)), None)


def build_manifest(ctx: ExportContext, with_checksums: bool = False) -> Manifest:
    """Describe the staging folder as it stands."""
    reference = ctx.reference
    if ctx.tokenizer is None:
        raise ExportError("the tokenizer must be written before the manifest")
    embedding = classifier = None
    if isinstance(reference, BiEncoder):
        layout = reference.layout
        embedding = EmbeddingSpec(
            dimension=reference.embedding_dimension,
            pooling=layout.pooling,
            pooling_in_graph=all(SENTENCE_OUTPUT in v.outputs for v in ctx.variants),
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
        tokenizer=ctx.tokenizer,
        variants=tuple(ctx.variants),
        provenance=Provenance(
            source_model=reference.source,
            exported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            versions=_versions(_VERSIONED),
            checksums=_checksums(ctx.folder) if with_checksums else {},
            cpu=this_cpu().key,
            cpu_name=this_cpu().name,
        ),
        default_variant=default_variant(ctx.variants),
        embedding=embedding,
        classifier=classifier,
    )


_VERSIONED = (
    "edgesbert",
    "torch",
    "transformers",
    "onnx",
    "onnxruntime",
    "tokenizers",
    "openvino",
    "nncf",
    "openvino-tokenizers",
    "onnxruntime-extensions",
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
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)
    return {p.relative_to(folder).as_posix(): sha256_of(p) for p in files}
