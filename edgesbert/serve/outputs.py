"""Turning a model's rows into response values: embeddings in every precision and format, scores, JSON."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from enum import Enum
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from edgesbert.runtime import OutputPrecision, quantize_embeddings
from edgesbert.runtime.manifest import Activation
from edgesbert.runtime.ranking import activate
from edgesbert.runtime.similarity import normalize as unit_length
from edgesbert.serve.errors import invalid


class EncodingFormat(str, Enum):
    """How an embedding travels: a JSON array of numbers, or the base64 of its raw little-endian bytes."""

    FLOAT = "float"
    BASE64 = "base64"


def json_response(content: Any, status: int = 200) -> Response:
    """``content`` as JSON; numpy arrays and numbers are written directly, without Python lists."""
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status, media_type="application/json")


def texts_of(
    value: str | list[str], field: str, limit: int, limit_name: str = "this server's max_client_batch_size"
) -> list[str]:
    """``value`` as a list of at least one and at most ``limit`` non-empty texts, else 422.

    ``limit_name`` says whose limit ``limit`` is, in the message.
    """
    texts = [value] if isinstance(value, str) else value
    if not texts:
        raise invalid(f"{field} is empty; send at least one text")
    if len(texts) > limit:
        raise invalid(
            f"{field} holds {len(texts)} texts, more than {limit_name} ({limit}); split the request"
        )
    for i, text in enumerate(texts):
        if not text:
            raise invalid(f"{field}[{i}] is an empty string; send text, or leave it out")
    return texts


def shape_embeddings(
    rows: np.ndarray,
    *,
    width: int,
    dimensions: int | None,
    normalize: bool,
    precision: OutputPrecision,
    unit_rows: bool = False,
    calibration: np.ndarray | None = None,
) -> np.ndarray:
    """Rows cut to ``dimensions`` (Matryoshka), then scaled to unit length if asked, then quantized.

    ``unit_rows``: the model's rows already have unit length (normalizing them again is skipped).
    int8 and uint8 map each dimension's range in ``calibration`` (float embeddings of fixed texts, shaped
    the same way) onto 256 buckets, so a text always gets the same codes, whatever else the request holds.
    """
    if dimensions is not None and not 0 < dimensions <= width:
        raise invalid(f"dimensions must be in 1..{width} for this model, got {dimensions}")

    def shaped(embeddings: np.ndarray) -> np.ndarray:
        cut = embeddings[:, :dimensions]
        return unit_length(cut) if normalize and not (unit_rows and cut.shape[1] == width) else cut

    rows = shaped(rows)
    if precision in (OutputPrecision.INT8, OutputPrecision.UINT8):
        if calibration is None:
            raise ValueError(f"{precision.value} embeddings need calibration embeddings")
        reference = shaped(calibration)
        ranges = np.stack([reference.min(axis=0), reference.max(axis=0)])
        return quantize_embeddings(rows, precision, ranges)
    return np.ascontiguousarray(quantize_embeddings(rows, precision))


def encode_rows(rows: np.ndarray, encoding: EncodingFormat) -> np.ndarray | list[str]:
    """The rows as they go into JSON: the array itself, or one base64 string of its bytes per row."""
    if encoding is EncodingFormat.FLOAT:
        return np.ascontiguousarray(rows)
    little_endian = rows.astype(rows.dtype.newbyteorder("<"), copy=False)
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in little_endian]


def scores_of(logits: np.ndarray, activation: Activation, raw: bool) -> np.ndarray:
    """One score per row of one-label logits: the model's activation applied, unless ``raw``."""
    return logits[:, 0] if raw else activate(logits, activation)[:, 0]


def best_first(scores: Sequence[float] | np.ndarray, top_n: int | None = None) -> list[int]:
    """Indices of ``scores``, best first (ties keep their order), at most ``top_n``."""
    if top_n is not None and top_n < 1:
        raise invalid(f"top_n must be at least 1, got {top_n}")
    return [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")[:top_n]]
