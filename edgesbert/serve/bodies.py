"""POST routes whose JSON body pydantic validates straight from its bytes.

FastAPI's own body handling (decode to Python objects, then dependency solving, then validation) costs
more than the model itself on a one-sentence request; ``post`` registers a route that reads the raw body
once and validates it in pydantic's core, and still documents the body in the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from edgesbert.serve.errors import describe_validation, invalid
from edgesbert.serve.state import ServerState, state_of

Body = TypeVar("Body", bound=BaseModel)
Handler = Callable[[ServerState, Body], Awaitable[Response]]


def post(router: APIRouter, *paths: str, body: type[Body]) -> Callable[[Handler[Body]], Handler[Body]]:
    """Register ``handler(state, body)`` for POST on each of ``paths``; the handler is returned unchanged."""

    def register(handler: Handler[Body]) -> Handler[Body]:
        async def endpoint(request: Request) -> Response:
            return await handler(state_of(request), await parse(request, body))

        endpoint.__name__, endpoint.__doc__ = handler.__name__, handler.__doc__
        schema = {"application/json": {"schema": body.model_json_schema()}}
        for path in paths:
            router.add_api_route(
                path,
                endpoint,
                methods=["POST"],
                openapi_extra={"requestBody": {"required": True, "content": schema}},
            )
        return handler

    return register


async def parse(request: Request, body: type[Body]) -> Body:
    """The request's JSON body as a ``body``; 422 saying what is wrong where it is not one."""
    try:
        return body.model_validate_json(await request.body())
    except ValidationError as e:
        raise invalid(describe_validation(e.errors())) from None
