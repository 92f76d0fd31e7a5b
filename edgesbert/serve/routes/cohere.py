"""Cohere's and Jina's rerank APIs: POST /v2/rerank (Cohere v2) and /v1/rerank (Cohere v1 and Jina).

Scores are the model's own (sigmoid for a one-label reranker), as Cohere's ``relevance_score`` in 0..1.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from edgesbert.runtime.manifest import ModelKind
from edgesbert.serve import inference
from edgesbert.serve.bodies import Count, Text, post
from edgesbert.serve.errors import invalid
from edgesbert.serve.outputs import best_first, json_response, texts_of
from edgesbert.serve.state import ServerState

router = APIRouter(tags=["Cohere and Jina"])


class Document(BaseModel):
    """A document given as an object (Cohere v1, Jina)."""

    text: Text


class RerankRequest(BaseModel):
    """POST /v2/rerank and /v1/rerank."""

    query: Text
    documents: list[Text | Document] = Field(json_schema_extra={"minItems": 1})
    model: str | None = None
    top_n: Count | None = None
    return_documents: bool | None = None
    max_tokens_per_doc: Count | None = None


class RerankResult(BaseModel):
    """One document's score; ``document`` as the request asked."""

    index: int
    relevance_score: float
    document: Document | None = None


class RerankV2Response(BaseModel):
    """The answer of POST /v2/rerank (Cohere v2)."""

    id: str
    results: list[RerankResult]
    meta: dict[str, Any]


class TokenUsage(BaseModel):
    """The tokens the model ran."""

    total_tokens: int


class RerankV1Response(RerankV2Response):
    """The answer of POST /v1/rerank (Cohere v1 and Jina)."""

    model: str
    usage: TokenUsage


@post(router, "/v2/rerank", body=RerankRequest, response=RerankV2Response)
async def rerank_v2(state: ServerState, body: RerankRequest) -> Response:
    """Cohere v2: ``{id, results: [{index, relevance_score}], meta}``; documents only if asked."""
    return await _rerank(state, body, "2", return_documents=bool(body.return_documents))


@post(router, "/v1/rerank", body=RerankRequest, response=RerankV1Response)
async def rerank_v1(state: ServerState, body: RerankRequest) -> Response:
    """Cohere v1 and Jina: ``{id, model, results: [{index, relevance_score, document}], usage, meta}``.

    ``document`` is ``{text}``, returned unless ``return_documents`` is false (Jina's default).
    """
    return await _rerank(state, body, "1", return_documents=body.return_documents is not False)


async def _rerank(state: ServerState, body: RerankRequest, api: str, *, return_documents: bool) -> Response:
    documents = [d if isinstance(d, str) else d.text for d in body.documents]
    texts = texts_of(documents, "documents", state.settings.max_client_batch_size)
    limit = state.registry.get(body.model, ModelKind.CROSS_ENCODER).limit
    if body.max_tokens_per_doc is not None and body.max_tokens_per_doc < limit:
        raise invalid(
            f"max_tokens_per_doc {body.max_tokens_per_doc} is below the model's own limit ({limit}), which "
            "is not supported; leave it out"
        )
    scores, model, tokens = await inference.rerank(state, body.model, body.query, texts)
    results: list[dict[str, Any]] = [
        {
            "index": i,
            "relevance_score": scores[i],
            **({"document": {"text": texts[i]}} if return_documents else {}),
        }
        for i in best_first(scores, body.top_n)
    ]
    meta = {"api_version": {"version": api}, "billed_units": {"search_units": 1}}
    response: dict[str, Any] = {"id": str(uuid.uuid4()), "results": results, "meta": meta}
    if api == "1":
        response.update(model=model.name, usage={"total_tokens": tokens})
    return json_response(response)
