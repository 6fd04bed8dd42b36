"""Which event loop serves each running :class:`~sayna_client.server.LocalServer`, so a
blocking ``SaynaSyncClient`` call made on that very loop's thread (an ``async`` test
using the ``sayna_server`` fixture) fails at once instead of waiting for a server its
own wait keeps from answering."""

from __future__ import annotations

import asyncio
import weakref
from typing import Optional

from yarl import URL

__all__ = ["served_by_this_thread", "serving", "stopped"]

#: port -> (host, the loop serving it). Local servers are few; a port is one server's.
_SERVED: dict[int, tuple[str, weakref.ref[asyncio.AbstractEventLoop]]] = {}

#: Hosts that reach a server bound to a loopback or wildcard address of this machine.
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})


def serving(host: str, port: int, loop: asyncio.AbstractEventLoop) -> None:
    """A local server at ``host:port`` now runs on ``loop``."""
    _SERVED[port] = (host.strip("[]"), weakref.ref(loop))


def stopped(port: int) -> None:
    """The local server on ``port`` stopped."""
    _SERVED.pop(port, None)


def served_by_this_thread(url: str) -> Optional[str]:
    """The URL of the local server that ``url`` reaches when it runs on the event loop
    running in the calling thread (a blocking call here would stall it), else None."""
    if not _SERVED:
        return None
    loop = asyncio._get_running_loop()  # None outside a running loop; no exception
    if loop is None:
        return None
    try:
        parsed = URL(url)
        port, host = parsed.port, parsed.host
    except (TypeError, ValueError):
        return None
    found = _SERVED.get(port) if port is not None else None
    if found is None or found[1]() is not loop:
        return None
    served_host = found[0]
    if host is None or (host != served_host and host not in _LOCAL_HOSTS):
        return None
    return url
