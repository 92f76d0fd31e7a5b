"""``edgesbert serve --ray``: the server's one app as the replicas of a Ray Serve deployment (extra: ray).

Each replica builds ``create_app`` from the settings (folder paths, not models: every replica loads the
folders itself) and counts as started, for Ray Serve, once its models have loaded, so no request reaches a
replica that would answer 503. The settings apply to each replica as to the plain server (limits, token
budgets, batching); a replica runs as many inference threads as the CPUs it reserves unless ``threads``
says otherwise, and takes up to ``max_concurrent_requests`` at once (Ray Serve's proxy queues the rest).
Every response names the replica that answered in ``X-Edgesbert-Replica``.

``serve_on_ray`` deploys and waits: SIGTERM or Ctrl-C deletes the application, which drains (a replica
takes no new requests and answers those it has, for up to ``drain_timeout_s``); `serve shutdown` on the
cluster stops it the same way. ``application`` is the builder that ``serve run`` and KubeRay's RayService
import (``edgesbert.serve.ray_serve:application``). The proxy sends a request again if its replica dies
while holding it, else answers 503 (``ray_proxy``; a RayService sets that in its ``controller_options``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import FrameType
from typing import Any

from edgesbert.errors import EdgesbertError, ModelLoadError, require

require("ray.serve", "ray")

import ray  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from ray import serve  # noqa: E402
from ray.serve.exceptions import RayServeException  # noqa: E402
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

from edgesbert.ray_cluster import check_reachable  # noqa: E402
from edgesbert.runtime import Manifest  # noqa: E402
from edgesbert.serve import ray_proxy  # noqa: E402
from edgesbert.serve.app import create_app  # noqa: E402
from edgesbert.serve.logs import HEADER as REQUEST_ID_HEADER  # noqa: E402
from edgesbert.serve.logs import LogFormat, configure_logging  # noqa: E402
from edgesbert.serve.settings import ModelSource, ServerSettings  # noqa: E402
from edgesbert.serve.state import Phase, ServerState  # noqa: E402

log = logging.getLogger("edgesbert.serve")

#: The application's and the deployment's name on the cluster (`serve status`, the RayService config).
NAME = "edgesbert"
#: The response header naming the replica that answered.
REPLICA_HEADER = "X-Edgesbert-Replica"


@dataclass(frozen=True)
class RayServeOptions:
    """Where and how many: the cluster, a fixed number of replicas or autoscaling bounds, CPUs, drain time."""

    #: "auto", "HOST:6379" or "ray://HOST:10001"; None: RAY_ADDRESS if set, else a new local instance.
    address: str | None = None
    #: A fixed number of replicas (None: Ray Serve's default, 1, unless autoscaling).
    replicas: int | None = None
    #: Autoscaling bounds on ongoing requests (either one turns autoscaling on).
    min_replicas: int | None = None
    max_replicas: int | None = None
    #: Ongoing requests per replica the autoscaler aims at (None: Ray Serve's default).
    target_ongoing_requests: float | None = None
    #: CPUs each replica reserves (and, unless ``threads`` is set, its inference threads).
    replica_cpus: float = 1.0
    #: Seconds a stopping replica has to answer the requests it holds.
    drain_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.replicas is not None and self.autoscaled:
            raise ValueError("give --replicas or --min-replicas/--max-replicas (autoscaling), not both")
        if self.replicas is not None and self.replicas < 1:
            raise ValueError(f"--replicas must be at least 1, got {self.replicas}")
        low, high = self._bounds()
        if low < 0 or high < max(low, 1):
            raise ValueError(f"autoscaling needs 0 <= min <= max and max >= 1, got min {low}, max {high}")
        target = self.target_ongoing_requests
        if target is not None and not (self.autoscaled and target > 0):
            raise ValueError("--target-ongoing-requests must be above 0, with --min-replicas/--max-replicas")
        if self.replica_cpus < 0 or self.drain_timeout_s <= 0:
            raise ValueError("--replica-cpus must be at least 0 and --drain-timeout above 0")

    @property
    def autoscaled(self) -> bool:
        """Whether the number of replicas follows the load."""
        return self.min_replicas is not None or self.max_replicas is not None

    def deployment_options(self) -> dict[str, Any]:
        """Ray Serve's options for the replicas (those a RayService config may override)."""
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.replica_cpus},
            "graceful_shutdown_timeout_s": self.drain_timeout_s,
            "graceful_shutdown_wait_loop_s": 0.5,
        }
        if self.autoscaled:
            low, high = self._bounds()
            scaling: dict[str, float] = {"min_replicas": low, "max_replicas": high}
            if self.target_ongoing_requests is not None:
                scaling["target_ongoing_requests"] = self.target_ongoing_requests
            options["autoscaling_config"] = scaling
        elif self.replicas is not None:
            options["num_replicas"] = self.replicas
        return options

    def _bounds(self) -> tuple[int, int]:
        """The autoscaling bounds; where not given, min is 0 and max is min (at least 1)."""
        low = self.min_replicas or 0
        return low, self.max_replicas if self.max_replicas is not None else max(low, 1)


_REQUEST_ID = REQUEST_ID_HEADER.lower().encode()


@serve.ingress()
class Replica:
    """One replica: the server's app, built where the replica runs, with the models it loads itself."""

    def __init__(self, settings: ServerSettings, log_format: LogFormat = LogFormat.TEXT) -> None:
        self.settings = settings
        self.log_format = log_format

    def __serve_build_asgi_app__(self) -> FastAPI:
        configure_logging(self.log_format)
        settings = self.settings
        if settings.threads is None:  # as many threads as the CPUs reserved, not every core of the node
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
            settings = replace(settings, threads=max(1, int(cpus)))
        app = create_app(settings)
        _started_once_loaded(app)
        app.add_middleware(_ReplicaHeader, replica=serve.get_replica_context().replica_id.unique_id)
        return app


def deployment(
    settings: ServerSettings, options: RayServeOptions | None = None, log_format: LogFormat = LogFormat.TEXT
) -> Any:
    """The Ray Serve application: ``Replica`` deployed with ``options``.

    A replica takes as many requests at once as ``settings.max_concurrent_requests`` lets the plain server.
    """
    replicas = serve.deployment(
        name=NAME,
        max_ongoing_requests=settings.max_concurrent_requests,
        logging_config={"enable_access_log": False},  # the app logs requests itself (settings.access_log)
        **(options or RayServeOptions()).deployment_options(),
    )(Replica)
    return replicas.bind(settings, log_format)


def application(args: dict[str, Any]) -> Any:
    """The builder ``serve run`` and RayService import: ``args`` holds ``ServerSettings``' fields by name.

    ``models`` is a list of ``FOLDER`` or ``NAME=FOLDER``; the config's ``deployments`` section sets
    replicas, autoscaling and CPUs (``RayServeOptions``' defaults otherwise).
    """
    known = {f.name for f in fields(ServerSettings)}
    unknown = sorted(set(args) - known)
    if unknown:
        raise ValueError(f"unknown server settings {unknown}; the settings are {sorted(known)}")
    values = dict(args)
    values["models"] = tuple(ModelSource.parse(str(spec)) for spec in args.get("models", ()))
    values["cors_origins"] = tuple(args.get("cors_origins", ()))
    if args.get("calibration") is not None:
        values["calibration"] = Path(args["calibration"])
    return deployment(ServerSettings(**values))


def serve_on_ray(
    settings: ServerSettings,
    options: RayServeOptions,
    *,
    log_format: LogFormat = LogFormat.TEXT,
    log_level: str = "info",
) -> int:
    """Deploy the server on Ray Serve and wait until stopped (SIGTERM, Ctrl-C or `serve shutdown`).

    Every folder's manifest is read first, so a wrong path fails at once; the replicas get absolute paths
    (on a cluster, the folders must be at the same path on every node). Returns the exit status.
    """
    configure_logging(log_format, log_level)
    for source in settings.models:
        Manifest.load(source.folder)
    settings = _absolute(settings)
    if not (options.address or os.environ.get("RAY_ADDRESS")):  # the proxy will listen here: fail at once
        _check_free(settings.host, settings.port)
    local = _connect(options.address)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM drains as Ctrl-C does
    try:
        quiet = {"log_level": "WARNING"}  # Serve's controller and proxy: warnings only; the replicas log
        logging.getLogger("ray.serve").setLevel(logging.WARNING)
        try:
            serve.start(
                http_options={"host": settings.host, "port": settings.port},
                logging_config=quiet,
                controller_options={"runtime_env": {"env_vars": {ray_proxy.VARIABLE: ray_proxy.CALLBACK}}},
            )
        except ray.exceptions.RayError as e:  # the proxy could not listen (the port is taken)
            where = f"{settings.host}:{settings.port}"
            raise EdgesbertError(f"Ray Serve cannot listen on {where}: {_reason(e)}") from None
        try:
            serve.run(deployment(settings, options, log_format), name=NAME, route_prefix="/")
        except RuntimeError as e:  # Ray Serve gave up on replicas that kept failing to start
            serve.delete(NAME)
            raise ModelLoadError(
                f"the replicas did not start ({_reason(e)}); their log lines above say why "
                "(on a cluster: the Serve logs under /tmp/ray/session_latest/logs/serve on each node)"
            ) from None
        log.info("serving on Ray Serve at http://%s:%d (%s)", settings.host, settings.port, _scale(options))
        try:
            _wait_while_deployed()
            log.info("the application was deleted on the cluster; stopped")
            return 0
        except KeyboardInterrupt:
            log.info("draining: the replicas answer what they hold (up to %g s)", options.drain_timeout_s)
        serve.delete(NAME)
        log.info("stopped")
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        if local:  # the application is gone (or never started): stop the instance, Serve with it
            ray.shutdown()


def _started_once_loaded(app: FastAPI) -> None:
    """Make the app's lifespan start only once its models have loaded (raising if they failed to).

    Ray Serve sends requests to a replica once its app has started: a replica still loading would answer 503.
    """
    served: Callable[[Any], AbstractAsyncContextManager[Any]] = app.router.lifespan_context
    state: ServerState = app.state.server

    @asynccontextmanager
    async def lifespan(scope_app: Any) -> AsyncIterator[Any]:
        async with served(scope_app) as value:
            while state.phase is Phase.LOADING:
                await asyncio.sleep(0.05)
            if state.phase is Phase.FAILED:
                raise ModelLoadError(f"the models failed to load: {state.failure}")
            yield value

    app.router.lifespan_context = lifespan


class _ReplicaHeader:
    """ASGI middleware: the replica's id in a header of every response.

    Ray Serve's proxy sends each request on with an ``X-Request-Id`` (the client's, or one it makes up),
    which the app takes, and returns that id itself: the app's copy of the header is left out.
    """

    def __init__(self, app: ASGIApp, *, replica: str) -> None:
        self.app = app
        self.header = (REPLICA_HEADER.lower().encode(), replica.encode("ascii", "replace"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_replica(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0] != _REQUEST_ID]
                message = {**message, "headers": [*headers, self.header]}
            await send(message)

        await self.app(scope, receive, send_with_replica if scope["type"] == "http" else send)


def _connect(address: str | None) -> bool:
    """Join the cluster at ``address`` (or RAY_ADDRESS), else start a local instance (then True)."""
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target is not None and target != "auto":
        check_reachable(target, _HINT)
    try:
        if target is None:  # "local": never the cluster a `ray start` left running on this machine
            ray.init("local", include_dashboard=False, logging_level=logging.WARNING, configure_logging=False)
        else:
            ray.init(address=target, logging_level=logging.WARNING, configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        explicit = target not in (None, "auto")  # Ray turns token authentication on for "auto" itself
        auth = " (a cluster with token authentication also needs RAY_AUTH_MODE=token)" if explicit else ""
        raise EdgesbertError(
            f"cannot reach a Ray cluster at {target!r}: {_reason(e)}{auth}. {_HINT}"
        ) from None
    return target is None


_HINT = "Start one with `ray start --head` and pass --ray auto (or HOST:6379), or --ray alone for a local one"


def _check_free(host: str, port: int) -> None:
    """Raise a one-line error if ``host:port`` cannot be listened on (Ray Serve would retry for 30 s)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the proxy's uvicorn does
        try:
            probe.bind((host, port))
        except OSError as e:
            raise EdgesbertError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def _wait_while_deployed(period_s: float = 2.0) -> None:
    """Return once the application is gone from the cluster (`serve shutdown`, `serve delete`)."""
    while True:
        time.sleep(period_s)
        try:
            if NAME not in serve.status().applications:
                return
        except (RayServeException, ray.exceptions.RayError):  # Serve itself was shut down
            return


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _absolute(settings: ServerSettings) -> ServerSettings:
    """The settings with absolute folder paths: a replica does not run in this process's directory."""
    models = tuple(replace(m, folder=m.folder.resolve()) for m in settings.models)
    calibration = settings.calibration.resolve() if settings.calibration else None
    return replace(settings, models=models, calibration=calibration)


def _scale(options: RayServeOptions) -> str:
    if options.autoscaled:
        scaling = options.deployment_options()["autoscaling_config"]
        return f"{scaling['min_replicas']} to {scaling['max_replicas']} replicas, autoscaled"
    return f"{options.replicas or 1} replica{'s' if (options.replicas or 1) > 1 else ''}"


def _reason(error: Exception) -> str:
    """What failed, in one line: a Ray task's own error, else the last line of Ray's message."""
    if isinstance(error, ray.exceptions.RayTaskError) and error.cause is not None:
        return str(error.cause)
    return (str(error).strip().splitlines() or [type(error).__name__])[-1]
