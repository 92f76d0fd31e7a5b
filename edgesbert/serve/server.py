"""``edgesbert serve``: the application run by uvicorn, stopped gracefully.

On SIGTERM or SIGINT the server takes no new connections, answers every request it has accepted (the
queued ones included), then exits. Every log line, uvicorn's included, goes through ``logs``' format.
"""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn

from edgesbert.runtime import Manifest
from edgesbert.serve.app import create_app
from edgesbert.serve.logs import LogFormat, configure_logging
from edgesbert.serve.settings import ServerSettings
from edgesbert.serve.state import Phase, ServerState


class _Server(uvicorn.Server):
    """uvicorn's server, which also tells the routes it is draining."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.serving = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.serving.phase is not Phase.FAILED:
            self.serving.phase = Phase.DRAINING
        super().handle_exit(sig, frame)


def serve(
    settings: ServerSettings, *, log_format: LogFormat = LogFormat.TEXT, log_level: str = "info"
) -> int:
    """Serve until stopped; returns the exit status (1 if the models could not be loaded).

    Every folder's manifest is read before the port is opened, so a wrong path fails at once. Log lines
    go to stderr, as text or JSON; ``settings.access_log`` adds one per request.
    """
    configure_logging(log_format, log_level)
    for source in settings.models:
        Manifest.load(source.folder)
    server: _Server | None = None

    def stop() -> None:
        if server is not None:
            server.should_exit = True

    app = create_app(settings, on_load_failure=stop)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, log_level=log_level,
        access_log=False, timeout_graceful_shutdown=None,
    )  # fmt: skip
    server = _Server(config, app.state.server)
    server.run()
    failed = app.state.server.phase is Phase.FAILED
    logging.getLogger("edgesbert.serve").info("stopped")
    return 1 if failed else 0
