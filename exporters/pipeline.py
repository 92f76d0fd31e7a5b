"""The export pipeline: reference in, validated model folder out.

It loads the reference, runs the plan's steps into a staging folder, validates every variant through
the runtime on real labeled data, writes the manifest, and swaps the folder in only when all of it
succeeded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from edgesbert.errors import EdgesbertError, ExportError, PartialExportError, ValidationFailedError
from edgesbert.exporters.calibration import CalibrationSource
from edgesbert.exporters.context import ExportContext, Intermediate, SourceFailedError, Step
from edgesbert.exporters.data_sets import RankingGroups, SentencePairs, stsb_pairs, trec_groups
from edgesbert.exporters.fits import check_fits
from edgesbert.exporters.int8_search import search, searchable, variant_files
from edgesbert.exporters.layout import copy_description
from edgesbert.exporters.manifest_writer import build_manifest
from edgesbert.exporters.memory import release_memory
from edgesbert.exporters.packed_graph import check_packable
from edgesbert.exporters.plans import BACKENDS, Quantization, with_packed, with_tokenizer
from edgesbert.exporters.progress import phase
from edgesbert.exporters.staging import staged_folder
from edgesbert.exporters.static_table import DIMENSIONS as STATIC_DIMENSIONS
from edgesbert.exporters.static_table import STATIC_NEEDS_BI_ENCODER, static_steps
from edgesbert.exporters.validation import (
    Tolerance,
    batch_figures,
    check,
    embedding_figures,
    score_figures,
    summary,
)
from edgesbert.offline import no_telemetry
from edgesbert.reference import BiEncoder, CrossEncoder
from edgesbert.resolve import resolve_model
from edgesbert.runtime import models as runtime
from edgesbert.runtime.manifest import (
    GraphVariant,
    Manifest,
    ModelKind,
    TokenizerSpec,
)

log = logging.getLogger("edgesbert.export")
TOKENIZER_FILE = "tokenizer.json"


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
    backend: str = "onnx",
    optimize: str | None = None,
    quantize: Sequence[str] = (),
    quantization: Quantization | None = None,
    kind: ModelKind | str | None = None,
    pooling_in_graph: bool = True,
    tolerance: Tolerance | None = None,
    validation_size: int = 512,
    static_shapes: Sequence[tuple[int, int]] = (),
    tokenizer_in_graph: bool = False,
    packed: bool = False,
    static: bool = False,
    static_dimensions: int = STATIC_DIMENSIONS,
    check_memory: bool = True,
) -> Manifest:
    """Export ``model`` into the folder ``output`` and return the manifest written there.

    Every variant is validated against the PyTorch reference on real labeled data before anything is
    written; if any step or validation fails, ``output`` is left exactly as it was.

    Args:
        model: a folder, a Hugging Face id (resolved offline first) or a loaded reference model.
        output: the model folder to create or replace (only an edgesbert folder is ever replaced).
        backend: which plan of steps to run (see ``plans.BACKENDS``).
        optimize: graph optimization level, "O1" to "O4".
        quantize: variants to add: "int8" (dynamic), "int8-static", "fp16".
        quantization: int8 preset and calibration options.
        kind: "bi-encoder" or "cross-encoder"; None detects it from the folder.
        pooling_in_graph: put pooling and normalization inside bi-encoder graphs.
        tolerance: how far variants may drift from the reference.
        validation_size: number of real sentence pairs (or query-document pairs) to validate on.
        static_shapes: (batch, sequence) shapes the graphs are to be compiled for (NPUs); the runtime pads
            inputs to the nearest one. Validation runs the graphs in these shapes.
        tokenizer_in_graph: add a string-in twin of each variant, its tokenizer merged in front
            (``--with-tokenizer``; ONNX: onnxruntime-extensions ops, OpenVINO: openvino-tokenizers).
        packed: add packed graphs, several texts per row (``--packed``; the BERT family, both kinds): fp32
            and a packed twin of each int8 variant; a packed twin of the default becomes the default.
        static: add the static variants ``static`` and ``static-int8`` (``--static``, bi-encoders): a token
            table distilled from the model, run with numpy alone; never the default.
        static_dimensions: the static table's width (fewer where the model has fewer).
        check_memory: refuse, before any work, a model whose export would need more memory than is
            available (``exporters/fits.py``; ``--no-memory-check`` turns it off).
    """
    if backend not in BACKENDS:
        raise ExportError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    if validation_size < 2:
        raise ExportError(f"validation_size must be at least 2, got {validation_size}")
    shapes = tuple((int(b), int(s)) for b, s in static_shapes)
    if any(b < 1 or s < 2 for b, s in shapes):
        raise ExportError(f"static shapes need batch >= 1 and sequence >= 2, got {list(shapes)}")
    if tokenizer_in_graph and shapes:
        raise ExportError(
            "--with-tokenizer and --static-shapes do not go together: string inputs have no shape"
        )
    steps = BACKENDS[backend](optimize, quantize, quantization)
    if packed:
        if shapes:
            raise ExportError(
                "--packed and --static-shapes do not go together: packed rows have their own shape"
            )
        steps = with_packed(steps, backend)  # traced beside the fp32 graph, while the weights are there
    if tokenizer_in_graph:
        steps = with_tokenizer(steps)
    if static:  # first: it needs the reference's weights, which the last trace frees
        steps = [*static_steps(static_dimensions), *steps]
    if isinstance(model, BiEncoder | CrossEncoder):
        reference = model
    else:
        if check_memory:  # before loading: a model that cannot fit fails now, not when the system kills it
            check_fits(resolve_model(model))
        with phase(f"loading {model}"):
            reference = load_reference(model, kind)
    if packed:
        check_packable(reference)
    if static and not isinstance(reference, BiEncoder):
        raise ExportError(STATIC_NEEDS_BI_ENCODER)
    if isinstance(reference, BiEncoder) and reference.layout.dense and not pooling_in_graph:
        raise ExportError("a model with Dense layers needs pooling inside the graph")
    for step in steps:  # read calibration text now: a bad file fails before any work
        if isinstance(calibration := getattr(step, "calibration", None), CalibrationSource):
            calibration.texts(pairs=isinstance(reference, CrossEncoder))
    data = stsb_pairs(validation_size) if isinstance(reference, BiEncoder) else trec_groups(validation_size)
    with staged_folder(output) as staging:
        ctx = ExportContext(reference, staging, pooling_in_graph, tolerance or Tolerance(), validation_size)
        ctx.owns_reference = reference is not model
        ctx.traces_left = 1 + packed
        ctx.tokenizer = write_tokenizer(reference, staging)
        copy_description(reference.folder, staging)
        with phase(f"running the PyTorch reference on {len(data)} validation texts"):
            longest = max((sequence for _, sequence in shapes), default=None)
            expected = reference_outputs(reference, data, longest)
        release_memory()
        with no_telemetry():  # OpenVINO's and NNCF's steps would report usage over the network
            failures = [failure for step in steps if (failure := produce(step, ctx, data, expected, shapes))]
        drop_intermediates(ctx)
        if not ctx.variants:
            raise ValidationFailedError(" ".join(failures))
        manifest = build_manifest(ctx, with_checksums=True)
        manifest.save(staging)
    if failures:
        left_out = ", ".join(map(repr, ctx.failed))
        raise PartialExportError(
            f"wrote {output} without {left_out}: {' '.join(failures)}", str(output), tuple(ctx.failed)
        )
    return manifest


def produce(
    step: Step,
    ctx: ExportContext,
    data: SentencePairs | RankingGroups,
    expected: np.ndarray,
    shapes: tuple[tuple[int, int], ...],
) -> str | None:
    """Run ``step`` and validate its variant (int8 steps through the accuracy-aware search).

    Returns None when the variant was kept, or why it was left out: it failed validation, or it needs a
    variant that did. A failed variant's files are removed, so the folder holds only validated ones.
    """
    try:
        if searchable(step):
            variant, figures = search(step, ctx, lambda v: measure(ctx, v, data, expected, shapes), run_step)
        else:
            variant = run_step(step, ctx)
            figures = measure(ctx, variant, data, expected, shapes, getattr(step, "reference_space", None))
            check(variant, figures, ctx.tolerance)
    except SourceFailedError as e:
        ctx.written.append(None)
        return f"Skipped {step_title(step)}: {e}"
    except ValidationFailedError as e:
        failed = ctx.variants.pop()
        ctx.failed.append(failed.name)
        ctx.written.append(None)
        if not any(v.file == failed.file for v in ctx.variants):  # bf16 shares the fp32 IR's file
            for file in variant_files(failed):
                (ctx.folder / file).unlink(missing_ok=True)
        log.warning("%s", e)
        return str(e)
    variant = replace(variant, static_shapes=shapes, validation=figures)
    ctx.variants[-1] = variant
    ctx.written.append(variant.name)
    log.info("validated %s: %s", variant.name, summary(figures))
    return None


def run_step(step: Step, ctx: ExportContext) -> GraphVariant:
    """Run one step; a failure inside a backend library becomes an ExportError that names the step.

    The variant it wrote joins ``ctx.variants`` (replacing the previous attempt of the same step, if the
    accuracy-aware search runs it again).
    """
    try:
        with phase(step_title(step)):
            variant = step(ctx)
    except EdgesbertError:
        raise
    except Exception as e:
        name = getattr(step, "__name__", None) or type(step).__name__
        raise ExportError(f"export step {name} failed: {type(e).__name__}: {e}") from e
    finally:
        release_memory()
    if ctx.variants and ctx.variants[-1].name == variant.name:
        ctx.variants[-1] = variant
    else:
        ctx.variants.append(variant)
    return variant


def step_title(step: Step) -> str:
    """What ``step`` is called while it runs."""
    if isinstance(step, Intermediate):
        return step_title(step.step)
    name = getattr(step, "__name__", None) or type(step).__name__
    return STEP_TITLES.get(name, name)


#: what each step is called while it runs
STEP_TITLES = {
    "onnx_fp32": "tracing the PyTorch model into an fp32 ONNX graph",
    "OptimizeGraph": "optimizing the ONNX graph",
    "Float16": "converting to fp16",
    "DynamicInt8": "quantizing to dynamic int8",
    "StaticInt8": "static int8 with onnxruntime",
    "OpenVinoIR": "converting to OpenVINO IR",
    "OpenVinoBf16": "describing the bf16 variant",
    "NncfInt8": "static int8 with NNCF",
    "NncfWeightsInt8": "compressing weights to int8 with NNCF",
    "NncfWeightsInt4": "compressing weights to int4 with NNCF",
    "Int4Weights": "quantizing weights to int4 with onnxruntime",
    "WithTokenizer": "merging the tokenizer into the graph",
    "PackedGraph": "tracing the PyTorch model into a packed fp32 ONNX graph",
    "OpenVinoPackedIR": "converting the packed graph to OpenVINO IR",
    "StaticTable": "distilling a static token table from the model",
    "StaticTableInt8": "quantizing the static token table to int8",
}


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


def reference_outputs(
    reference: BiEncoder | CrossEncoder, data: SentencePairs | RankingGroups, limit: int | None = None
) -> np.ndarray:
    """The reference's embeddings or scores on the validation data, computed once for all variants.

    ``limit``: the most tokens the graphs take (static shapes); the reference truncates there too, so that
    a variant is measured against what it can compute, not against text it never sees.
    """
    kept = reference.max_seq_length
    reference.max_seq_length = min(kept, limit or kept)
    try:
        if isinstance(data, SentencePairs):
            return reference.encode(data.sentences, batch_size=64)  # type: ignore[union-attr]
        return reference.predict(data.pairs, batch_size=64)  # type: ignore[union-attr]
    finally:
        reference.max_seq_length = kept


def measure(
    ctx: ExportContext,
    variant: GraphVariant,
    data: SentencePairs | RankingGroups,
    expected: np.ndarray,
    shapes: tuple[tuple[int, int], ...] = (),
    project: Callable[[np.ndarray, list[str]], np.ndarray] | None = None,
) -> dict[str, float]:
    """Run ``variant`` through the runtime on the validation data, in its static ``shapes`` if any.

    Returns its agreement with ``expected`` (mapped by ``project``, with the texts, where the variant's
    embeddings live in another space: a static table's), its speed there (texts per second, on this
    machine) and its batch effect.
    """
    if shapes:  # run as it will be: padded to its shapes, cut at the longest
        ctx.variants = [replace(v, static_shapes=shapes) if v == variant else v for v in ctx.variants]
    build_manifest(ctx).save(ctx.folder)  # provisional, so the runtime can open the folder
    model = runtime.load(ctx.folder, variant=variant.name)
    with phase(f"validating {variant.name} on {len(data)} texts"):
        start = time.perf_counter()
        if isinstance(data, SentencePairs) and isinstance(model, runtime.BiEncoder):
            actual = model.encode(data.sentences, batch_size=64)
            mapped = (lambda e: project(e, data.sentences)) if project else None
            figures = embedding_figures(expected, actual, data, mapped)
        elif isinstance(data, RankingGroups) and isinstance(model, runtime.CrossEncoder):
            figures = score_figures(expected, model.predict(data.pairs, batch_size=64), data)
        else:
            raise ExportError(f"variant {variant.name!r} does not match the kind of model exported")
        figures["texts_per_second"] = round(len(data) / (time.perf_counter() - start), 1)
        figures |= batch_figures(model, data)
    del model  # the session's weights, before the next step loads its own
    release_memory()
    return figures


def drop_intermediates(ctx: ExportContext) -> None:
    """Remove the files and entries of variants that only served later steps."""
    for variant in [v for v in ctx.variants if v.recipe.get("intermediate")]:
        path = ctx.folder / variant.file
        path.unlink()
        if path.parent != ctx.folder and not any(path.parent.iterdir()):
            path.parent.rmdir()
        ctx.variants.remove(variant)
