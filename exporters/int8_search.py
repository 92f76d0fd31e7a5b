"""Accuracy-aware int8: when a quantized variant loses too much, retry with what the libraries offer.

An int8 step first runs its own recipe (the one measured best on all-MiniLM-L6-v2). While the variant it
makes misses the target (``target``: a quarter of the Spearman loss the tolerance allows, 0.25 pt by
default, and a twentieth of its cosine loss, mean cosine 0.995; score Spearman 0.995 for cross-encoders),
the search tries the step's other recipes (SmoothQuant on the MatMuls for NNCF, its transformer default),
then the better of them with the MatMuls whose input activations int8 holds worst on the calibration
texts kept float, more of them each time. It stops at the first variant within the target; otherwise it
keeps the most faithful one within the tolerance (mean cosine first: on 512 pairs, Spearman moves by
0.1 pt from one int8 recipe to the next at equal fidelity). Only when none is within the tolerance does the
variant fail, with the best figures reached. What it kept float, why, and the speed it cost go into the
variant's recipe in the manifest.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeGuard

import numpy as np

from edgesbert.errors import ValidationFailedError
from edgesbert.exporters.context import ExportContext, Step
from edgesbert.exporters.ort_quantize import weights_apart
from edgesbert.exporters.progress import phase
from edgesbert.exporters.validation import Miss, Tolerance, misses, quality, summary
from edgesbert.runtime.manifest import GraphVariant

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

log = logging.getLogger("edgesbert.export")
#: the search stops at a variant that loses at most these shares of what the tolerance allows
TARGET_SPEARMAN_SHARE = 0.25
TARGET_COSINE_SHARE = 0.05
#: shares of the ranked MatMuls kept float, one retry each
KEEP_FLOAT_SHARES = (0.1, 0.25, 0.5)
#: calibration texts the sensitivity of each MatMul is measured on
SENSITIVITY_TEXTS = 32
#: the manifest lists this many of the MatMuls kept float by name
NAMED = 8


@dataclass(frozen=True)
class Int8Recipe:
    """How an int8 step quantizes: SmoothQuant or not, and which MatMuls stay float."""

    smooth_quant: float | None = None  # SmoothQuant alpha for the MatMuls (NNCF); None: off
    keep_float: tuple[str, ...] = ()  # MatMul nodes left in float, the most sensitive first

    def describe(self) -> dict[str, str | int | float | bool]:
        """The recipe's entries in the manifest."""
        described: dict[str, str | int | float | bool] = {}
        if self.keep_float:
            named = ", ".join(self.keep_float[:NAMED])
            more = len(self.keep_float) - NAMED
            described["kept_float_matmuls"] = len(self.keep_float)
            described["kept_float_names"] = named + (f" and {more} more" if more > 0 else "")
        return described


class Int8Step(Protocol):
    """An int8 step the search can retry: it carries a recipe and says which ones it can also run."""

    recipe: Int8Recipe
    packed: bool  # it quantizes the packed graph, ranked on packed rows

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Write and describe the variant."""
        ...

    def alternatives(self) -> Sequence[Int8Recipe]:
        """Recipes to try after its own, before keeping layers float."""
        ...

    def calibration_texts(self, ctx: ExportContext) -> list:
        """The texts it calibrates on (the sensitivity is measured on them too)."""
        ...

    def already_float(self, ctx: ExportContext) -> frozenset[str]:
        """MatMuls its own recipe keeps float, left out of the ranking."""
        ...


@dataclass
class Attempt:
    """One recipe's variant, its validation figures and what they miss."""

    recipe: Int8Recipe
    variant: GraphVariant
    figures: dict[str, float]
    missed: list[Miss]
    stash: Path | None = None  # where its files wait while later recipes are tried


def searchable(step: Step) -> TypeGuard[Int8Step]:
    """Whether ``step`` is an int8 step the search can retry."""
    return hasattr(step, "recipe") and hasattr(step, "alternatives")


def target(tolerance: Tolerance) -> Tolerance:
    """The tolerance the search aims for: a share of each loss the tolerance allows."""
    return replace(
        tolerance,
        max_spearman_drop=tolerance.max_spearman_drop * TARGET_SPEARMAN_SHARE,
        min_mean_cosine=1 - (1 - tolerance.min_mean_cosine) * TARGET_COSINE_SHARE,
        min_score_spearman=1 - (1 - tolerance.min_score_spearman) * TARGET_SPEARMAN_SHARE,
    )


def search(
    step: Int8Step,
    ctx: ExportContext,
    measure: Callable[[GraphVariant], dict[str, float]],
    run: Callable[[Step, ExportContext], GraphVariant],
) -> tuple[GraphVariant, dict[str, float]]:
    """Run ``step``, and other recipes of it while its variant misses the target; return the one kept.

    Raises:
        ValidationFailedError: no recipe made a variant within the tolerance (its files are removed).
    """
    aim = target(ctx.tolerance)
    attempts: list[Attempt] = []
    for recipe in _recipes(step, ctx, attempts):
        variant = run(replace(step, recipe=recipe), ctx)  # type: ignore[type-var]
        figures = measure(variant)
        attempts.append(Attempt(recipe, variant, figures, misses(variant, figures, ctx.tolerance)))
        log.info("%s, recipe %d (%s): %s", variant.name, len(attempts), _label(recipe), summary(figures))
        if not misses(variant, figures, aim):
            break
        attempts[-1].stash = _stash(ctx.folder, variant, len(attempts))
    passed = [a for a in attempts if not a.missed]
    best = max(passed or attempts, key=lambda a: quality(a.figures))
    if best.stash is not None:
        _unstash(best.stash, ctx.folder, best.variant)
    shutil.rmtree(ctx.folder / ".attempts", ignore_errors=True)
    if not passed:
        _remove(ctx.folder, best.variant)
        raise ValidationFailedError(_failure(best, len(attempts)))
    return _described(best, attempts), best.figures


def _recipes(step: Int8Step, ctx: ExportContext, attempts: list[Attempt]) -> Iterator[Int8Recipe]:
    """The step's own recipe and its alternatives, then the best of them with ever more MatMuls float."""
    yield step.recipe
    yield from step.alternatives()
    passed = [a for a in attempts if not a.missed]
    base = max(passed or attempts, key=lambda a: quality(a.figures)).recipe
    with phase("ranking the MatMuls by int8 error on the calibration texts"):
        texts = step.calibration_texts(ctx)[:SENSITIVITY_TEXTS]
        graph = ctx.variant("packed" if step.packed else "fp32")  # the ONNX graph the step's came from
        batches = [ctx.graph_feed(graph, texts[i : i + 8]) for i in range(0, len(texts), 8)]
        ranked = sensitivity(ctx.folder / graph.file, batches)
    ranked = [(name, error) for name, error in ranked if name not in step.already_float(ctx)]
    kept = 0
    for share in KEEP_FLOAT_SHARES:
        count = max(1, round(share * len(ranked)))
        if count > kept:
            kept = count
            yield replace(base, keep_float=tuple(name for name, _ in ranked[:count]))


def _label(recipe: Int8Recipe) -> str:
    parts = [f"SmoothQuant {recipe.smooth_quant}"] if recipe.smooth_quant else []
    if recipe.keep_float:
        parts.append(f"{len(recipe.keep_float)} MatMuls kept float")
    return ", ".join(parts) or "the step's own recipe"


def _described(best: Attempt, attempts: list[Attempt]) -> GraphVariant:
    """The kept variant, its recipe telling what the search did."""
    recipe = {**best.variant.recipe, **best.recipe.describe(), "recipes_tried": len(attempts)}
    if best.recipe.keep_float:
        recipe["kept_float_why"] = "largest int8 error of their input activations on the calibration texts"
    first, mine = attempts[0].figures, best.figures
    if best is not attempts[0] and "texts_per_second" in first and "texts_per_second" in mine:
        recipe["speed_vs_first_recipe"] = round(mine["texts_per_second"] / first["texts_per_second"], 3)
    return replace(best.variant, recipe=recipe)


def _failure(best: Attempt, tried: int) -> str:
    return (
        f"variant {best.variant.name!r} disagrees with the PyTorch reference after {tried} recipe"
        f"{'s' if tried > 1 else ''}: {'; '.join(map(str, best.missed))}. Best reached "
        f"({_label(best.recipe)}): {summary(best.figures)}. It was left out. To accept this drift, "
        f"export again with {' '.join(m.loosened() for m in best.missed)}"
    )


def variant_files(variant: GraphVariant) -> list[str]:
    """The files of ``variant``: its graph, and an OpenVINO graph's weights."""
    files = [variant.file]
    if variant.file.endswith(".xml"):
        files.append(variant.file.removesuffix(".xml") + ".bin")
    return files


def _stash(folder: Path, variant: GraphVariant, number: int) -> Path:
    stash = folder / ".attempts" / str(number)
    for file in variant_files(variant):
        (stash / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).replace(stash / file)
    return stash


def _unstash(stash: Path, folder: Path, variant: GraphVariant) -> None:
    for file in variant_files(variant):
        (stash / file).replace(folder / file)


def _remove(folder: Path, variant: GraphVariant) -> None:
    for file in variant_files(variant):
        (folder / file).unlink(missing_ok=True)


def sensitivity(graph: Path, batches: Sequence[dict[str, np.ndarray]]) -> list[tuple[str, float]]:
    """The fp32 ONNX graph's weight MatMuls, by how badly int8 holds their input activations, worst first.

    Each MatMul's input is quantized as static int8 does it (one uint8 scale and zero point over all
    ``batches`` of tokenized texts, from its min and max), and the error is measured against the float
    values of real tokens (padding, or a packed row's unused tail, left out): the relative mean squared
    error. Outlier channels (after LayerNorm) and long tails (after GELU) make it large, and with it the
    int8 drift of the whole model.
    """
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgesbert.sensitivity.") as scratch:
        apart = weights_apart(graph, Path(scratch))  # the session maps the weights, no second copy
        model = onnx.load(str(apart), load_external_data=False)
        weights = {t.name for t in model.graph.initializer if len(t.dims) == 2}
        matmuls = {
            node.name: node.input[0]
            for node in model.graph.node
            if node.op_type == "MatMul" and node.input[1] in weights
        }
        activations = list(dict.fromkeys(matmuls.values()))
        model.graph.output.extend(onnx.ValueInfoProto(name=name) for name in activations)
        onnx.save_model(model, str(apart))  # the weights stay in the file beside it
        session = ort.InferenceSession(str(apart), providers=["CPUExecutionProvider"])
        errors = _input_errors(session, activations, batches)
        del session  # before its weights file goes
    return sorted(((name, float(errors[x])) for name, x in matmuls.items()), key=lambda p: -p[1])


def _input_errors(
    session: InferenceSession, activations: list[str], batches: Sequence[dict[str, np.ndarray]]
) -> dict[str, float]:
    """Each activation's relative mean squared error under one static uint8 range over ``batches``."""
    inputs = [i.name for i in session.get_inputs()]

    def run(batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        outputs = session.run(activations, {name: batch[name] for name in inputs})
        real = (batch["segment_ids"] > 0) if "segment_ids" in batch else batch["attention_mask"].astype(bool)
        return [o[real] if o.shape[:2] == real.shape else o.reshape(-1, o.shape[-1]) for o in outputs]

    low = np.full(len(activations), np.inf)
    high = np.full(len(activations), -np.inf)
    for batch in batches:  # first pass: the ranges a calibrator would set
        for i, values in enumerate(run(batch)):
            low[i], high[i] = min(low[i], values.min()), max(high[i], values.max())
    low, high = np.minimum(low, 0), np.maximum(high, 0)
    scale = np.maximum(high - low, 1e-12) / 255
    noise, signal = np.zeros(len(activations)), np.zeros(len(activations))
    for batch in batches:  # second pass: the error of those ranges
        for i, values in enumerate(run(batch)):
            zero = np.round(-low[i] / scale[i])
            codes = np.clip(np.round(values / scale[i]) + zero, 0, 255)
            noise[i] += float((((codes - zero) * scale[i] - values) ** 2).sum())
            signal[i] += float((values**2).sum())
    return dict(zip(activations, noise / np.maximum(signal, 1e-30), strict=True))
