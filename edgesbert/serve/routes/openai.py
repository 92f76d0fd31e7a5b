"""OpenAI's embeddings API: POST /v1/embeddings (and /embeddings), GET /v1/models.

Beyond OpenAI: ``precision`` (int8, uint8, binary, ubinary) for smaller embeddings; with
``encoding_format: "base64"`` each embedding is the base64 of its little-endian bytes in that precision.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from edgesbert.runtime import OutputPrecision
from edgesbert.serve import inference
from edgesbert.serve.bodies import post
from edgesbert.serve.errors import invalid
from edgesbert.serve.outputs import EncodingFormat, encode_rows, json_response, texts_of
from edgesbert.serve.state import ServerState, state_of

router = APIRouter(tags=["OpenAI"])


class EmbeddingsRequest(BaseModel):
    """POST /v1/embeddings."""

    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    encoding_format: EncodingFormat = EncodingFormat.FLOAT
    dimensions: int | None = None
    user: str | None = None
    precision: OutputPrecision = OutputPrecision.FLOAT32


@post(router, "/v1/embeddings", "/embeddings", body=EmbeddingsRequest)
async def embeddings(state: ServerState, body: EmbeddingsRequest) -> Response:
    """``{object: "list", data: [{object: "embedding", embedding, index}], model, usage}``."""
    if isinstance(body.input, list) and any(not isinstance(v, str) for v in body.input):
        raise invalid(
            "input holds token ids; this server takes text only: send a string or a list of strings"
        )
    texts = texts_of(body.input, "input", state.settings.max_client_batch_size)  # type: ignore[arg-type]
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


@router.get("/v1/models")
async def models(request: Request) -> Response:
    """The served models, as OpenAI lists models."""
    served = state_of(request).registry.models
    data = [{"id": m.name, "object": "model", "created": 0, "owned_by": "edgesbert"} for m in served]
    return json_response({"object": "list", "data": data})
