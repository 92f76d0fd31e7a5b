"""Reaching a Ray cluster, for the layers that run on one (bulk jobs, the server's replicas)."""

from __future__ import annotations

import socket

from edgesbert.errors import EdgesbertError


def check_reachable(address: str, hint: str) -> None:
    """Raise a one-line error ending in ``hint`` unless something listens at ``address``.

    ``address`` is HOST:PORT (6379 if no port) or ray://HOST:PORT (10001): ``ray.init`` retries an
    unreachable address for minutes before it fails, so ask first. "auto" and "local" are not addresses.
    """
    default_port = 10001 if address.startswith("ray://") else 6379
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host:  # no colon: the whole address is the host
        host, port = port, ""
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or default_port)), timeout=5):
            pass
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        raise EdgesbertError(f"cannot reach a Ray cluster at {address!r} ({reason}). {hint}") from None
