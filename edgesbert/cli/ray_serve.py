"""``edgesbert serve --ray``'s options: the cluster, the replicas, their CPUs (besides the server's own).

Only argparse here, so ``edgesbert --help`` stays instant; ``edgesbert.serve.ray_serve`` does the work.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgesbert.serve.ray_serve import RayServeOptions

RAY_HELP = (
    "serve on Ray Serve as replicas of the same app (extra: ray): alone, the cluster in RAY_ADDRESS or else "
    "a new local instance; 'auto', the cluster started here by `ray start --head`; or HOST:6379"
)
#: the options that only mean something with --ray: their argparse names, and RayServeOptions' fields
RAY_ONLY = {
    "replicas": "replicas",
    "min_replicas": "min_replicas",
    "max_replicas": "max_replicas",
    "target_ongoing_requests": "target_ongoing_requests",
    "replica_cpus": "replica_cpus",
    "drain_timeout": "drain_timeout_s",
}


def add_ray_serve_options(serve: argparse.ArgumentParser) -> None:
    """Add --ray and the options of its replicas to the serve command."""
    group = serve.add_argument_group("Ray Serve (with --ray)")
    group.add_argument("--ray", nargs="?", const=True, default=False, metavar="ADDRESS", help=RAY_HELP)
    group.add_argument("--replicas", type=int, metavar="N", help="a fixed number of replicas (1)")
    group.add_argument("--min-replicas", type=int, metavar="N", help="autoscale on ongoing requests, from N")
    group.add_argument("--max-replicas", type=int, metavar="N", help="autoscale on ongoing requests, up to N")
    group.add_argument(
        "--target-ongoing-requests", type=float, metavar="N", help="requests per replica to aim at"
    )
    group.add_argument(
        "--replica-cpus", type=float, metavar="CPUS", help="CPUs each replica reserves, its threads unless "
        "--threads (1)"
    )  # fmt: skip
    group.add_argument(
        "--drain-timeout", type=float, metavar="SECONDS", help="time a stopping replica has to answer (60)"
    )


def ray_serve_options(args: argparse.Namespace) -> RayServeOptions | None:
    """The Ray Serve options given, or None without --ray (a Ray-only option without it is an error)."""
    given = {name: getattr(args, name) for name in RAY_ONLY if getattr(args, name) is not None}
    if args.ray is False:
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ValueError(f"{flags} only apply with --ray")
        return None
    from edgesbert.serve.ray_serve import RayServeOptions

    fields = {RAY_ONLY[name]: value for name, value in given.items()}
    return RayServeOptions(address=None if args.ray is True else args.ray, **fields)
