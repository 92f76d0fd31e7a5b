"""The FastAPI application: the routes of every API behind the guard, the models loaded in the background."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from edgesbert.serve.errors import install_handlers
from edgesbert.serve.guard import OPEN_PATHS, Guard
from edgesbert.serve.logs import HEADER, TRUNCATED_HEADER, RequestLog
from edgesbert.serve.metrics import Metrics
from edgesbert.serve.models import ModelRegistry, ServedModel
from edgesbert.serve.routes import ROUTERS
from edgesbert.serve.settings import ServerSettings
from edgesbert.serve.state import Phase, ServerState

log = logging.getLogger("edgesbert.serve")


def create_app(settings: ServerSettings, on_load_failure: Callable[[], None] | None = None) -> FastAPI:
    """The server's application; its models load when it starts, and /health says 503 until they have.

    ``on_load_failure`` is called if a model cannot be loaded (the server then answers 503 with why).
    """
    state = ServerState(settings, Metrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(_load(state, on_load_failure))
        yield
        if state.phase is not Phase.FAILED:
            state.phase = Phase.DRAINING
        await loading
        if state.phase is not Phase.FAILED and state.loaded is not None:
            await asyncio.gather(*(model.batcher.close() for model in state.loaded.models))

    app = FastAPI(title="edgesbert", version=version("edgesbert"), lifespan=lifespan)
    app.state.server = state
    for router in ROUTERS:
        app.include_router(router)
    install_handlers(app)
    routes = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]
    direct = {route.path: route.endpoint for route in routes if route.methods == {"POST"}}
    paths = frozenset(r.path for r in routes)
    app.add_middleware(Guard, state=state, direct=direct)
    if settings.cors_origins:  # outside the guard: browsers send preflight requests without the API key
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=[HEADER, TRUNCATED_HEADER],
        )
    app.add_middleware(  # outermost: every response, refusals included
        RequestLog, routes=paths, enabled=settings.access_log, on_answered=state.metrics.request
    )
    if settings.api_key:
        _declare_bearer_key(app)
    return app


def _declare_bearer_key(app: FastAPI) -> None:
    """The OpenAPI schema says what the guard asks for: a bearer token on every route but the probes."""
    schema_of = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = schema_of()  # FastAPI's, cached on the app: declared once
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            for path, operations in schema["paths"].items():
                for operation in operations.values() if path not in OPEN_PATHS else ():
                    operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _load(state: ServerState, on_failure: Callable[[], None] | None) -> None:
    settings = state.settings

    def load_all() -> list[ServedModel]:
        return [ServedModel(source, settings, state.metrics.batch) for source in settings.models]

    try:
        models = await asyncio.to_thread(load_all)
    except Exception as e:  # any failure to load is reported, never left as a server that hangs at 503
        state.phase = Phase.FAILED
        state.failure = str(e)
        log.error("edgesbert serve: cannot load the models: %s", e)
        if on_failure is not None:
            on_failure()
        return
    for model in models:
        model.start()
        state.metrics.queue_depth.labels(model.name).set_function(_queued(model))
        log.info("serving %s (%s, variant %s)", model.name, model.kind.value, model.model.variant.name)
        if model.model.variant.batch_dependent:
            log.warning(
                "%s: variant %s is batch-dependent (dynamic int8): a text's result depends on the texts "
                "beside it in its batch, and batches merge different clients' requests; serve a static "
                "variant for results that never vary",
                model.name,
                model.model.variant.name,
            )
    if state.phase is Phase.LOADING:
        state.ready(ModelRegistry(models))
    else:  # shut down while loading: the lifespan closes their batchers once this returns
        state.loaded = ModelRegistry(models)


def _queued(model: ServedModel) -> Callable[[], float]:
    return lambda: model.batcher.queued
