"""text-embeddings-inference's API: the request and response JSON of TEI's routes.

Beyond TEI: ``model`` picks one of several served models, ``precision`` (int8, uint8, binary, ubinary) and
``encoding_format`` (base64) shrink embeddings on /embed, and POST / answers whichever of /embed,
/similarity, /rerank and /predict its body is for.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError, WithJsonSchema
from starlette.responses import Response

from edgesbert.runtime import OutputPrecision
from edgesbert.runtime.manifest import ModelKind
from edgesbert.runtime.ranking import softmax
from edgesbert.serve import inference
from edgesbert.serve.bodies import Count, Direction, Text, Texts, post, request_body
from edgesbert.serve.errors import GUARD_ERRORS, MODEL_ERRORS, describe_validation, documented, invalid
from edgesbert.serve.logs import note_usage
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

#: A pair of texts, as /predict takes it.
_PAIR = {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}
#: TEI's names of the graph precisions.
_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


class EmbedRequest(BaseModel):
    """POST /embed."""

    inputs: Text | Texts
    normalize: bool = True
    truncate: bool | None = None
    truncation_direction: Direction = "right"
    prompt_name: str | None = None
    dimensions: Count | None = None
    model: str | None = None
    precision: OutputPrecision = OutputPrecision.FLOAT32
    encoding_format: EncodingFormat = EncodingFormat.FLOAT


class RerankRequest(BaseModel):
    """POST /rerank."""

    query: Text
    texts: Texts
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool | None = None
    truncation_direction: Direction = "right"
    model: str | None = None


class PredictRequest(BaseModel):
    """POST /predict: one pair, or a batch of pairs."""

    inputs: Annotated[
        str | list[str] | list[list[str]],
        WithJsonSchema({"anyOf": [_PAIR, {"type": "array", "items": _PAIR, "minItems": 1}]}),
    ]
    raw_scores: bool = False
    truncate: bool | None = None
    truncation_direction: Direction = "right"
    model: str | None = None


class SimilarityInput(BaseModel):
    """The texts of POST /similarity."""

    source_sentence: Text
    sentences: Texts


class SimilarityParameters(BaseModel):
    """The options of POST /similarity."""

    prompt_name: str | None = None
    truncate: bool | None = None
    truncation_direction: Direction = "right"


class SimilarityRequest(BaseModel):
    """POST /similarity."""

    inputs: SimilarityInput
    parameters: SimilarityParameters | None = None
    model: str | None = None


class TokenizeRequest(BaseModel):
    """POST /tokenize."""

    inputs: Text | Texts
    add_special_tokens: bool = True
    prompt_name: str | None = None
    model: str | None = None


class Rank(BaseModel):
    """One text of /rerank's answer; ``text`` if ``return_text``."""

    index: int
    score: float
    text: str | None = None


class Prediction(BaseModel):
    """One label's score from /predict."""

    score: float
    label: str


class TokenInfo(BaseModel):
    """One token from /tokenize; ``start`` and ``stop`` are None for a special token."""

    id: int
    text: str
    special: bool
    start: int | None
    stop: int | None


class ModelInfo(BaseModel):
    """One served model and the server's limits, as TEI's /info describes them."""

    model_id: str
    model_sha: str | None
    model_dtype: str
    model_type: dict[str, Any]
    served_model_name: str
    variant: str
    backend: str
    max_concurrent_requests: int
    max_input_length: int
    max_batch_tokens: int
    max_batch_requests: int | None
    max_client_batch_size: int
    max_client_batch_tokens: int
    auto_truncate: bool
    tokenization_workers: int
    version: str
    sha: str | None
    docker_label: str | None


class Info(ModelInfo):
    """GET /info: the first model, and every model in ``models``."""

    models: list[ModelInfo]


#: Embeddings as numbers, or each the base64 of its bytes.
Embeddings = list[list[float]] | list[str]
Predictions = list[Prediction] | list[list[Prediction]]


@post(router, "/embed", body=EmbedRequest, response=Embeddings)
async def embed(state: ServerState, body: EmbedRequest) -> Response:
    """Embeddings of ``inputs``: ``[[float, ...], ...]``."""
    inference.check_direction(body.truncation_direction)
    texts = texts_of(body.inputs, "inputs", state.settings.max_client_batch_size)
    embedded = await inference.embed(
        state, body.model, texts, field="inputs", truncate=body.truncate, prompt_name=body.prompt_name,
        dimensions=body.dimensions, normalize=body.normalize, precision=body.precision,
    )  # fmt: skip
    return json_response(encode_rows(embedded.rows, body.encoding_format))


@post(router, "/rerank", body=RerankRequest, response=list[Rank])
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


@post(router, "/predict", body=PredictRequest, response=Predictions)
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


@post(router, "/similarity", body=SimilarityRequest, response=list[float])
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


@post(router, "/tokenize", body=TokenizeRequest, response=list[list[TokenInfo]])
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
    note_usage(model.name, len(texts), sum(map(len, tokens)))
    return json_response([[vars(token) for token in text] for text in tokens])


@router.get("/info", response_model=Info, responses=documented("/info", *GUARD_ERRORS))
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
        "max_client_batch_tokens": settings.max_client_batch_tokens,
        "auto_truncate": settings.auto_truncate,
        "tokenization_workers": 1,
        "version": version("edgesbert"),
        "sha": None,
        "docker_label": None,
    }


@router.get("/health", response_class=Response, responses=documented("/health", 503))
@router.get("/ping", response_class=Response, responses=documented("/ping", 503))
async def health(request: Request) -> Response:
    """200 with an empty body once the models are loaded; 503 while loading, draining or failed."""
    unavailable = state_of(request).unavailable()
    if unavailable is not None:
        raise unavailable
    return Response(status_code=200)


@router.get("/", response_class=Response, responses=documented("/", *GUARD_ERRORS))
async def root(request: Request) -> Response:
    """The health check, as TEI answers GET /."""
    return await health(request)


_PROMETHEUS = {"content": {"text/plain": {"schema": {"type": "string"}}}}


@router.get("/metrics", response_class=Response, responses={200: _PROMETHEUS, **documented("/metrics", 401)})
async def metrics(request: Request) -> Response:
    """Prometheus metrics."""
    body = state_of(request).metrics.exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.post(
    "/",
    response_model=Embeddings | list[Rank] | list[float] | Predictions,
    responses=documented("/", *MODEL_ERRORS),
    openapi_extra=request_body(EmbedRequest, RerankRequest, SimilarityRequest, PredictRequest),
)
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
