"""POST routes whose JSON body pydantic validates straight from its bytes.

FastAPI's own body handling (decode to Python objects, then dependency solving, then validation) costs
more than the model itself on a one-sentence request; ``post`` registers a route that reads the raw body
once and validates it in pydantic's core, and still documents the body in the OpenAPI schema.

The field types below document in the schema what the routes check themselves (with messages that name
the field): pydantic validates them as plain strings, lists and integers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError, WithJsonSchema
from starlette.responses import Response

from edgesbert.serve.errors import MODEL_ERRORS, describe_validation, documented, invalid
from edgesbert.serve.state import ServerState, state_of

Body = TypeVar("Body", bound=BaseModel)
_TEXT = {"type": "string", "minLength": 1}
#: A text to embed or score: not empty.
Text = Annotated[str, WithJsonSchema(_TEXT)]
#: Texts to embed or score: at least one, none empty.
Texts = Annotated[list[str], WithJsonSchema({"type": "array", "items": _TEXT, "minItems": 1})]
#: A count that must be at least 1.
Count = Annotated[int, WithJsonSchema({"type": "integer", "minimum": 1})]
#: Where to truncate: the model's own end only (TEI's "Right").
Direction = Annotated[str, WithJsonSchema({"type": "string", "enum": ["right", "Right"]})]
Handler = Callable[[ServerState, Body], Awaitable[Response]]


def post(
    router: APIRouter, *paths: str, body: type[Body], response: Any
) -> Callable[[Handler[Body]], Handler[Body]]:
    """Register ``handler(state, body)`` for POST on each of ``paths``; the handler is returned unchanged.

    ``response``: the type of a 200's body, for the schema (the handler's response is sent as it is).
    """

    def register(handler: Handler[Body]) -> Handler[Body]:
        async def endpoint(request: Request) -> Response:
            return await handler(state_of(request), await parse(request, body))

        endpoint.__name__, endpoint.__doc__ = handler.__name__, handler.__doc__
        for path in paths:
            router.add_api_route(
                path,
                endpoint,
                methods=["POST"],
                response_model=response,
                responses=documented(path, *MODEL_ERRORS),
                openapi_extra=request_body(body),
            )
        return handler

    return register


def request_body(*models: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` that documents a required JSON body that is one of ``models``.

    Their nested models are written out in place: pydantic refers to them as ``#/$defs/...``, which
    points nowhere in an OpenAPI document.
    """
    schemas = [_inlined(model.model_json_schema()) for model in models]
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {key: value for key, value in node.items() if key != "$ref"}
            return {**resolve(definitions[ref.removeprefix("#/$defs/")]), **resolve(rest)}
        return {key: resolve(value) for key, value in node.items()}

    resolved: dict[str, Any] = resolve(schema)
    return resolved


async def parse(request: Request, body: type[Body]) -> Body:
    """The request's JSON body as a ``body``; 422 saying what is wrong where it is not one."""
    try:
        return body.model_validate_json(await request.body())
    except ValidationError as e:
        raise invalid(describe_validation(e.errors())) from None
