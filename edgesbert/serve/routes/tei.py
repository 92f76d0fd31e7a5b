"""text-embeddings-inference's API: the request and response JSON of TEI's routes.

Beyond TEI: ``model`` picks one of several served models, ``precision`` (int8, uint8, binary, ubinary) and
``encoding_format`` (base64) shrink embeddings on /embed, and POST / answers whichever of /embed,
/similarity, /rerank and /predict its body is for.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from edgesbert.runtime import OutputPrecision
from edgesbert.runtime.manifest import ModelKind
from edgesbert.runtime.ranking import softmax
from edgesbert.serve import inference
from edgesbert.serve.bodies import post
from edgesbert.serve.errors import describe_validation, invalid
from edgesbert.serve.models import ServedModel
from edgesbert.serve.outputs import (
    EncodingFormat,
    best_first,
    encode_rows,
    json_response,
    scores_of,
    texts_of,
)
from edgesbert.serve.state import ServerState, state_of

router = APIRouter(tags=["TEI"])

#: TEI's names of the graph precisions.
_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class EmbedRequest(BaseModel):
    """POST /embed."""

    inputs: str | list[str]
    normalize: bool = True
    truncate: bool | None = None
    truncation_direction: str = "right"
    prompt_name: str | None = None
    dimensions: int | None = None
    model: str | None = None
    precision: OutputPrecision = OutputPrecision.FLOAT32
    encoding_format: EncodingFormat = EncodingFormat.FLOAT


class RerankRequest(BaseModel):
    """POST /rerank."""

    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool | None = None
    truncation_direction: str = "right"
    model: str | None = None


class PredictRequest(BaseModel):
    """POST /predict: one pair, or a batch of pairs."""

    inputs: str | list[str] | list[list[str]]
    raw_scores: bool = False
    truncate: bool | None = None
    truncation_direction: str = "right"
    model: str | None = None


class SimilarityInput(BaseModel):
    """The texts of POST /similarity."""

    source_sentence: str
    sentences: list[str]


class SimilarityParameters(BaseModel):
    """The options of POST /similarity."""

    prompt_name: str | None = None
    truncate: bool | None = None
    truncation_direction: str = "right"


class SimilarityRequest(BaseModel):
    """POST /similarity."""

    inputs: SimilarityInput
    parameters: SimilarityParameters | None = None
    model: str | None = None


class TokenizeRequest(BaseModel):
    """POST /tokenize."""

    inputs: str | list[str]
    add_special_tokens: bool = True
    prompt_name: str | None = None
    model: str | None = None


@post(router, "/embed", body=EmbedRequest)
async def embed(state: ServerState, body: EmbedRequest) -> Response:
    """Embeddings of ``inputs``: ``[[float, ...], ...]``."""
    inference.check_direction(body.truncation_direction)
    texts = texts_of(body.inputs, "inputs", state.settings.max_client_batch_size)
    embedded = await inference.embed(
        state, body.model, texts, field="inputs", truncate=body.truncate, prompt_name=body.prompt_name,
        dimensions=body.dimensions, normalize=body.normalize, precision=body.precision,
    )  # fmt: skip
    return json_response(encode_rows(embedded.rows, body.encoding_format))


@post(router, "/rerank", body=RerankRequest)
async def rerank(state: ServerState, body: RerankRequest) -> Response:
    """``texts`` scored against ``query``, best first: ``[{index, score, text?}, ...]``."""
    inference.check_direction(body.truncation_direction)
    texts = texts_of(body.texts, "texts", state.settings.max_client_batch_size)
    scores, _, _ = await inference.rerank(
        state, body.model, body.query, texts, raw=body.raw_scores, truncate=body.truncate
    )
    ranks = [
        {"index": i, "score": scores[i], **({"text": texts[i]} if body.return_text else {})}
        for i in best_first(scores)
    ]
    return json_response(ranks)


@post(router, "/predict", body=PredictRequest)
async def predict(state: ServerState, body: PredictRequest) -> Response:
    """Scores of one pair, ``[{score, label}, ...]``, or of a batch of pairs, ``[[...], ...]``."""
    inference.check_direction(body.truncation_direction)
    if not body.inputs:
        raise invalid("inputs is empty; send a pair of texts or a list of pairs")
    single = isinstance(body.inputs, str) or all(isinstance(v, str) for v in body.inputs)
    batch = [body.inputs] if single else body.inputs
    if len(batch) > state.settings.max_client_batch_size:
        limit = state.settings.max_client_batch_size
        raise invalid(f"inputs holds {len(batch)} pairs, more than max_client_batch_size ({limit})")
    pairs = []
    for i, item in enumerate(batch):
        if isinstance(item, str) or len(item) != 2:
            where = "inputs" if single else f"inputs[{i}]"
            raise invalid(f"{where} must be a pair of two texts, [text, text_pair]: this model scores pairs")
        pairs.append((str(item[0]), str(item[1])))
    logits, model, _ = await inference.score_pairs(
        state, body.model, pairs, field="inputs", truncate=body.truncate
    )
    predictions = [_predictions(row, model, body.raw_scores) for row in logits]
    return json_response(predictions[0] if single else predictions)


def _predictions(logits: np.ndarray, model: ServedModel, raw: bool) -> list[dict[str, Any]]:
    """TEI's predictions for one row of logits, best first.

    The scores are the model's activation for one label, softmax for several, the logits when ``raw``.
    """
    if raw:
        scores = logits
    elif len(logits) == 1:
        scores = scores_of(logits[None, :], model.cross_encoder.activation, raw=False)
    else:
        scores = softmax(logits[None, :])[0]
    labels = _labels(model)
    return [{"score": scores[i], "label": labels[i]} for i in best_first(scores)]


@post(router, "/similarity", body=SimilarityRequest)
async def similarity(state: ServerState, body: SimilarityRequest) -> Response:
    """The similarity of ``source_sentence`` to each of ``sentences``: ``[float, ...]``."""
    options = body.parameters or SimilarityParameters()
    inference.check_direction(options.truncation_direction)
    limit = state.settings.max_client_batch_size
    sentences = texts_of(body.inputs.sentences, "inputs.sentences", limit - 1)
    source = texts_of(body.inputs.source_sentence, "inputs.source_sentence", 1)
    embedded = await inference.embed(
        state, body.model, source + sentences, field="inputs", truncate=options.truncate,
        prompt_name=options.prompt_name, normalize=False,
    )  # fmt: skip
    encoder = embedded.model.bi_encoder
    return json_response(encoder.similarity(embedded.rows[:1], embedded.rows[1:])[0])


@post(router, "/tokenize", body=TokenizeRequest)
async def tokenize(state: ServerState, body: TokenizeRequest) -> Response:
    """The tokens of each input: ``[[{id, text, special, start, stop}, ...], ...]``."""
    model = state.registry.find(body.model)
    texts = texts_of(body.inputs, "inputs", state.settings.max_client_batch_size)
    if model.kind is ModelKind.BI_ENCODER:  # the prompt /embed would put before each text
        prefix = inference.prompt_text(model, body.prompt_name)
        texts = [prefix + t for t in texts]
    elif body.prompt_name is not None:
        raise invalid(f"model {model.name!r} is a cross-encoder, which has no prompts")
    try:
        tokens = model.model.tokenizer.tokens(
            texts, add_special_tokens=body.add_special_tokens, what="inputs"
        )
    except ValueError as e:
        raise invalid(str(e)) from None
    return json_response([[vars(token) for token in text] for text in tokens])


@router.get("/info")
async def info(request: Request) -> Response:
    """TEI's description of the (first) model and the server's limits; ``models`` lists every model."""
    state = state_of(request)
    described = [_describe(state, model) for model in state.registry.models]
    return json_response({**described[0], "models": described})


def _labels(model: ServedModel) -> tuple[str, ...]:
    encoder = model.cross_encoder
    return encoder.spec.labels or tuple(f"LABEL_{i}" for i in range(encoder.num_labels))


def _describe(state: ServerState, model: ServedModel) -> dict[str, Any]:
    settings = state.settings
    manifest = model.model.manifest
    if model.kind is ModelKind.BI_ENCODER:
        model_type: dict[str, Any] = {"embedding": {"pooling": model.bi_encoder.spec.pooling.value}}
    else:
        labels = model.cross_encoder.spec.labels or tuple(
            f"LABEL_{i}" for i in range(model.cross_encoder.num_labels)
        )
        id2label = {str(i): label for i, label in enumerate(labels)}
        kind = "reranker" if len(labels) == 1 else "classifier"
        model_type = {kind: {"id2label": id2label, "label2id": {v: int(k) for k, v in id2label.items()}}}
    return {
        "model_id": manifest.provenance.source_model,
        "model_sha": None,
        "model_dtype": _DTYPES.get(model.model.variant.precision.value, model.model.variant.precision.value),
        "model_type": model_type,
        "served_model_name": model.name,
        "variant": model.model.variant.name,
        "backend": model.model.variant.backend,
        "max_concurrent_requests": settings.max_concurrent_requests,
        "max_input_length": model.limit,
        "max_batch_tokens": settings.max_batch_tokens,
        "max_batch_requests": settings.max_batch_requests,
        "max_client_batch_size": settings.max_client_batch_size,
        "auto_truncate": settings.auto_truncate,
        "tokenization_workers": 1,
        "version": version("edgesbert"),
        "sha": None,
        "docker_label": None,
    }


@router.get("/health")
@router.get("/ping")
async def health(request: Request) -> Response:
    """200 with an empty body once the models are loaded; 503 while loading, draining or failed."""
    unavailable = state_of(request).unavailable()
    if unavailable is not None:
        raise unavailable
    return Response(status_code=200)


@router.get("/")
async def root(request: Request) -> Response:
    """The health check, as TEI answers GET /."""
    return await health(request)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    body = state_of(request).metrics.exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.post("/")
async def dispatch(request: Request) -> Response:
    """POST / as TEI's clients send it (huggingface_hub's InferenceClient posts here).

    A body with ``query`` and ``texts`` is a rerank, ``inputs.source_sentence`` a similarity, other
    ``inputs`` an embedding for a bi-encoder (the request's model, or the first served), else a prediction.
    """
    state = state_of(request)
    try:
        body = await request.json()
    except ValueError as e:
        raise invalid(f"the body is not valid JSON ({e})") from None
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    try:
        if "query" in body and "texts" in body:
            return await rerank(state, RerankRequest.model_validate(body))
        if isinstance(body.get("inputs"), dict):
            return await similarity(state, SimilarityRequest.model_validate(body))
        model = state.registry.find(body.get("model") if isinstance(body.get("model"), str) else None)
        if model.kind is ModelKind.BI_ENCODER:
            return await embed(state, EmbedRequest.model_validate(body))
        return await predict(state, PredictRequest.model_validate(body))
    except ValidationError as e:
        raise invalid(describe_validation(e.errors())) from None
