"""OpenAI's embeddings API: POST /v1/embeddings (and /embeddings), GET /v1/models.

OpenAI's limits: up to 2,048 inputs per request, each a string or an array of token ids (ids of the served
model's own tokenizer, embedded as the text they decode to: ``token_arrays``); a large request is run in
parts of ``max_batch_tokens``. ``usage`` counts the tokens the model ran: special tokens and the prompt
included, after truncation, never padding. Beyond OpenAI: ``precision`` (int8, uint8, binary, ubinary) for
smaller embeddings; with ``encoding_format: "base64"`` each embedding is the base64 of its little-endian
bytes in that precision.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, WithJsonSchema
from starlette.responses import Response

from edgesbert.runtime import OutputPrecision
from edgesbert.runtime.manifest import ModelKind
from edgesbert.serve import inference
from edgesbert.serve.bodies import Count, Text, Texts, post
from edgesbert.serve.errors import GUARD_ERRORS, documented, invalid
from edgesbert.serve.outputs import EncodingFormat, encode_rows, json_response, texts_of
from edgesbert.serve.state import ServerState, state_of

router = APIRouter(tags=["OpenAI"])

#: OpenAI's limit on inputs per request (TEI's routes keep ``max_client_batch_size``).
MAX_INPUTS = 2048
_TOKEN_ARRAY = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}
_ARRAYS = {"type": "array", "items": _TOKEN_ARRAY, "minItems": 1}
#: Ids of the served model's own tokenizer.
TokenArray = Annotated[list[int], WithJsonSchema(_TOKEN_ARRAY)]


class EmbeddingsRequest(BaseModel):
    """POST /v1/embeddings."""

    input: Text | Texts | TokenArray | Annotated[list[TokenArray], WithJsonSchema(_ARRAYS)]
    model: str | None = None
    encoding_format: EncodingFormat = EncodingFormat.FLOAT
    dimensions: Count | None = None
    user: str | None = None
    precision: OutputPrecision = OutputPrecision.FLOAT32


class Embedding(BaseModel):
    """One input's embedding: numbers, or the base64 of its bytes."""

    object: Literal["embedding"]
    embedding: list[float] | str
    index: int


class Usage(BaseModel):
    """The tokens the model ran."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    """The answer of POST /v1/embeddings."""

    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: Usage


class Model(BaseModel):
    """One served model, as OpenAI lists models."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    """The answer of GET /v1/models."""

    object: Literal["list"]
    data: list[Model]


@post(router, "/v1/embeddings", "/embeddings", body=EmbeddingsRequest, response=EmbeddingsResponse)
async def embeddings(state: ServerState, body: EmbeddingsRequest) -> Response:
    """``{object: "list", data: [{object: "embedding", embedding, index}], model, usage}``."""
    value = body.input
    if isinstance(value, list) and value and not isinstance(value[0], str):  # token arrays
        arrays: list[list[int]] = [value] if isinstance(value[0], int) else value
        if len(arrays) > MAX_INPUTS:
            raise invalid(
                f"input holds {len(arrays)} token arrays, more than OpenAI's limit ({MAX_INPUTS}); "
                "split the request"
            )
        model = state.registry.get(body.model, ModelKind.BI_ENCODER)
        texts = await model.texts_of_token_arrays(arrays, "input")
    else:
        texts = texts_of(value, "input", MAX_INPUTS, "OpenAI's limit")  # type: ignore[arg-type]
    embedded = await inference.embed(
        state, body.model, texts, field="input", dimensions=body.dimensions, precision=body.precision
    )
    rows = encode_rows(embedded.rows, body.encoding_format)
    return json_response(
        {
            "object": "list",
            "data": [{"object": "embedding", "embedding": row, "index": i} for i, row in enumerate(rows)],
            "model": embedded.model.name,
            "usage": {"prompt_tokens": embedded.tokens, "total_tokens": embedded.tokens},
        }
    )


@router.get("/v1/models", response_model=ModelList, responses=documented("/v1/models", *GUARD_ERRORS))
async def models(request: Request) -> Response:
    """The served models, as OpenAI lists models."""
    served = state_of(request).registry.models
    data = [{"id": m.name, "object": "model", "created": 0, "owned_by": "edgesbert"} for m in served]
    return json_response({"object": "list", "data": data})
