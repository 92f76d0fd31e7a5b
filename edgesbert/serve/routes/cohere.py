"""Cohere's and Jina's rerank APIs: POST /v2/rerank (Cohere v2) and /v1/rerank (Cohere v1 and Jina).

Scores are the model's own (sigmoid for a one-label reranker), as Cohere's ``relevance_score`` in 0..1.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.responses import Response

from edgesbert.runtime.manifest import ModelKind
from edgesbert.serve import inference
from edgesbert.serve.bodies import post
from edgesbert.serve.errors import invalid
from edgesbert.serve.outputs import best_first, json_response, texts_of
from edgesbert.serve.state import ServerState

router = APIRouter(tags=["Cohere and Jina"])


class Document(BaseModel):
    """A document given as an object (Cohere v1, Jina)."""

    text: str


class RerankRequest(BaseModel):
    """POST /v2/rerank and /v1/rerank."""

    query: str
    documents: list[str | Document]
    model: str | None = None
    top_n: int | None = None
    return_documents: bool | None = None
    max_tokens_per_doc: int | None = None


@post(router, "/v2/rerank", body=RerankRequest)
async def rerank_v2(state: ServerState, body: RerankRequest) -> Response:
    """Cohere v2: ``{id, results: [{index, relevance_score}], meta}``; documents only if asked."""
    return await _rerank(state, body, "2", return_documents=bool(body.return_documents))


@post(router, "/v1/rerank", body=RerankRequest)
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
