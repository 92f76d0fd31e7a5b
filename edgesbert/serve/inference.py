"""What the routes of every API share: embedding texts and scoring pairs with a request's options."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from edgesbert.runtime import OutputPrecision
from edgesbert.runtime.manifest import ModelKind
from edgesbert.serve.errors import invalid
from edgesbert.serve.models import ServedModel
from edgesbert.serve.outputs import scores_of, shape_embeddings
from edgesbert.serve.state import ServerState


@dataclass(frozen=True)
class Embedded:
    """Embeddings of a request's texts, the model that made them and the tokens they took."""

    rows: np.ndarray
    model: ServedModel
    tokens: int


def check_direction(direction: str) -> None:
    """Only right truncation is run (the model's own); say so rather than cut the other end silently."""
    if direction.lower() != "right":
        raise invalid(f"truncation_direction {direction!r} is not supported; only 'right' is")


def prompt_text(model: ServedModel, prompt_name: str | None) -> str:
    """The text put before each input: the named prompt, else the model's default prompt, else none."""
    try:
        return model.bi_encoder.prompt_text(prompt_name)
    except ValueError as e:
        raise invalid(str(e)) from None


async def embed(
    state: ServerState,
    model_name: str | None,
    texts: list[str],
    *,
    field: str,
    truncate: bool | None = None,
    prompt_name: str | None = None,
    dimensions: int | None = None,
    normalize: bool = True,
    precision: OutputPrecision = OutputPrecision.FLOAT32,
) -> Embedded:
    """Embed ``texts`` with the named (or first) bi-encoder, shaped as the request asks."""
    model = state.registry.get(model_name, ModelKind.BI_ENCODER)
    prefix = prompt_text(model, prompt_name)
    auto = state.settings.auto_truncate if truncate is None else truncate
    rows, tokens = await model.run([prefix + t for t in texts] if prefix else texts, auto, field)
    calibration = None
    if precision in (OutputPrecision.INT8, OutputPrecision.UINT8):
        calibration = await asyncio.to_thread(model.calibration_embeddings, prefix)
    shaped = shape_embeddings(
        rows,
        width=model.bi_encoder.embedding_dimension,
        dimensions=dimensions,
        normalize=normalize,
        precision=precision,
        unit_rows=model.bi_encoder.spec.normalize,
        calibration=calibration,
    )
    return Embedded(shaped, model, tokens)


async def score_pairs(
    state: ServerState,
    model_name: str | None,
    pairs: list[tuple[str, str]],
    *,
    field: str,
    truncate: bool | None = None,
) -> tuple[np.ndarray, ServedModel, int]:
    """Logits (pairs, labels) of ``pairs`` from the named (or first) cross-encoder, and the tokens taken."""
    model = state.registry.get(model_name, ModelKind.CROSS_ENCODER)
    auto = state.settings.auto_truncate if truncate is None else truncate
    logits, tokens = await model.run(pairs, auto, field)
    return logits, model, tokens


async def rerank(
    state: ServerState,
    model_name: str | None,
    query: str,
    documents: list[str],
    *,
    raw: bool = False,
    truncate: bool | None = None,
) -> tuple[np.ndarray, ServedModel, int]:
    """One score per document against ``query`` (the model's activation unless ``raw``) and tokens taken."""
    if not query:
        raise invalid("query is empty; send the text to rank the documents against")
    logits, model, tokens = await score_pairs(
        state, model_name, [(query, d) for d in documents], field="documents", truncate=truncate
    )
    if logits.shape[1] != 1:
        raise invalid(f"model {model.name!r} has {logits.shape[1]} labels; ranking needs a one-label model")
    return scores_of(logits, model.cross_encoder.activation, raw), model, tokens
