"""The state of one server that the guard and the routes share: its phase, settings, metrics and models."""

from __future__ import annotations

from enum import Enum

from starlette.requests import Request

from edgesbert.serve.errors import ApiError, ErrorType
from edgesbert.serve.metrics import Metrics
from edgesbert.serve.models import ModelRegistry
from edgesbert.serve.settings import ServerSettings


class Phase(str, Enum):
    """Where the server is in its life."""

    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"


class ServerState:
    """What the guard and the routes share about the server as a whole."""

    def __init__(self, settings: ServerSettings, metrics: Metrics) -> None:
        """Start in the loading phase."""
        self.settings = settings
        self.metrics = metrics
        self.phase = Phase.LOADING
        self.failure = ""
        self.in_flight = 0
        #: The models once loaded (also while draining, when requests in flight still use them).
        self.loaded: ModelRegistry | None = None

    @property
    def registry(self) -> ModelRegistry:
        """The served models; a 503 until they are loaded."""
        if self.loaded is None:
            raise self.refusal() or ApiError(503, "the models are not loaded", ErrorType.UNHEALTHY)
        return self.loaded

    def ready(self, registry: ModelRegistry) -> None:
        """The models are loaded: serve them."""
        self.loaded = registry
        self.phase = Phase.READY

    def refusal(self) -> ApiError | None:
        """The 503 a request gets while the models load or after they failed to.

        Draining refuses nothing: uvicorn takes no new connections then, and every request it has
        accepted is answered.
        """
        return None if self.phase in (Phase.READY, Phase.DRAINING) else self.unavailable()

    def unavailable(self) -> ApiError | None:
        """The 503 that /health answers with, unless the server is ready (also while draining)."""
        if self.phase is Phase.READY:
            return None
        reason = {
            Phase.LOADING: "the models are still loading; retry in a moment",
            Phase.DRAINING: "the server is shutting down and takes no new requests",
            Phase.FAILED: f"the models failed to load: {self.failure}",
        }[self.phase]
        return ApiError(503, reason, ErrorType.UNHEALTHY)


def state_of(request: Request) -> ServerState:
    """The state of the server answering ``request``."""
    state: ServerState = request.app.state.server
    return state
