"""Which event loop serves each running :class:`~sayna_client.server.LocalServer`, so a
call that cannot be answered fails at once, saying why, instead of waiting for its
timeouts (several minutes with the retries):

* a blocking ``SaynaSyncClient`` call made on that very loop's thread (an ``async`` test
  using the ``sayna_server`` fixture): its own wait keeps the server from answering;
* a connection or a REST request, from any client, to a server whose loop is not running
  (the ``sayna_server`` fixture set up on a loop other than the test's: a wider
  ``asyncio_default_test_loop_scope``): nothing runs the server meanwhile.

Only URLs of servers recorded here are looked at, once per connection or request."""

from __future__ import annotations

import asyncio
import weakref
from typing import Optional

from yarl import URL

from .errors import SaynaEventLoopError

__all__ = ["check_served", "served_by_this_thread", "serving", "stopped"]

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


def _serving_loop(url: str) -> Optional[asyncio.AbstractEventLoop]:
    """The loop of the recorded local server that ``url`` reaches (None: none, or its
    loop was collected)."""
    try:
        parsed = URL(url)
        port, host = parsed.port, parsed.host
    except (TypeError, ValueError):
        return None
    found = _SERVED.get(port) if port is not None else None
    if found is None:
        return None
    served_host, loop = found
    if host is None or (host != served_host and host not in _LOCAL_HOSTS):
        return None
    return loop()


def served_by_this_thread(url: str) -> Optional[str]:
    """The URL of the local server that ``url`` reaches when it runs on the event loop
    running in the calling thread (a blocking call here would stall it), else None."""
    if not _SERVED:
        return None
    loop = asyncio._get_running_loop()  # None outside a running loop; no exception
    if loop is None:
        return None
    return url if _serving_loop(url) is loop else None


def check_served(url: str) -> None:
    """Raise when ``url`` reaches a local server of this process whose event loop is not
    running (nor closed): nothing can answer a connection or a request to it.

    Raises:
        SaynaEventLoopError: naming the server, the cause and the fixes.
    """
    if not _SERVED:
        return
    loop = _serving_loop(url)
    if loop is None or loop.is_running() or loop.is_closed():
        return
    raise SaynaEventLoopError(
        f"the local Sayna server at {url} cannot answer: its event loop is not running "
        "(in pytest: the `sayna_server` fixture was set up on another loop than the "
        "test's, e.g. with asyncio_default_test_loop_scope wider than "
        "asyncio_default_fixture_loop_scope). Use the fixture from an async test on the "
        "same loop scope (set both options alike), or from a plain test (it then serves "
        "from a thread of its own); from async code, run blocking calls with "
        "asyncio.to_thread"
    )
