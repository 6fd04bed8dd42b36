"""Test helpers: a real local Sayna server on ``127.0.0.1`` with a free port.

Async context manager, for any test framework::

    from sayna_client.testing import running_server

    async with running_server(api_key="k") as server:
        client = SaynaClient(url=server.url, api_key="k", ...)
        ...
        assert server.records.last_session.messages[0]["type"] == "config"

pytest plugin (needs ``pytest-asyncio``), enabled in a ``conftest.py`` with::

    pytest_plugins = ["sayna_client.testing"]

which provides the function-scoped fixture ``sayna_server``: a started
:class:`~sayna_client.server.LocalServer` with the deterministic ``fake`` engine, no
authentication and no faults, stopped after the test. In an ``async`` test it runs on
the loop of pytest-asyncio's async fixtures (the test's when both have the same loop
scope: a client of a server whose loop is not running raises ``SaynaEventLoopError`` at
once); in a plain test, on a thread of its own, so blocking code (``SaynaSyncClient``)
can use it. Importing this module does not require pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from .server import LocalServer

__all__ = ["running_server"]


@contextlib.asynccontextmanager
async def running_server(**kwargs: Any) -> AsyncIterator[LocalServer]:
    """Start a :class:`LocalServer` (``port=0`` unless given) and stop it on exit.

    Keyword arguments are passed to :class:`LocalServer`. Leaving the block closes every
    session, task and socket, even when the body raised.
    """
    kwargs.setdefault("port", 0)
    server = LocalServer(**kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


#: Seconds the ``sayna_server`` fixture waits for its own thread's server to start or stop.
_THREAD_TIMEOUT = 60.0


@contextlib.contextmanager
def _running_server_thread(**kwargs: Any) -> Iterator[LocalServer]:
    """:func:`running_server` on a thread (and event loop) of its own, for blocking code:
    the server answers whatever the calling thread does meanwhile."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sayna-test-server", daemon=True)
    thread.start()

    async def start() -> LocalServer:
        kwargs.setdefault("port", 0)
        server = LocalServer(**kwargs)
        await server.start()
        return server

    try:
        server = asyncio.run_coroutine_threadsafe(start(), loop).result(_THREAD_TIMEOUT)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(_THREAD_TIMEOUT)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_THREAD_TIMEOUT)
        if not thread.is_alive():
            loop.close()


def _runs_on_a_loop(item: Any) -> bool:
    """The test ``item`` is an ``async def`` test, which pytest-asyncio runs on an event
    loop (also under Hypothesis's ``@given``, which wraps it in a plain function)."""
    function = getattr(item, "function", None)
    inner = getattr(getattr(function, "hypothesis", None), "inner_test", None)
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(inner)


def pytest_configure(config: Any) -> None:
    """pytest's hook, when the plugin is enabled: without pytest-asyncio an ``async``
    test (the documented way to use ``sayna_server`` with ``SaynaClient``) cannot run;
    say so once, naming the package, rather than leave pytest's generic error."""
    if not config.pluginmanager.has_plugin("asyncio"):
        import pytest

        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                "sayna_client.testing: pytest-asyncio is not installed (or is disabled), so "
                "async tests cannot run: pip install pytest-asyncio, and set "
                'asyncio_mode = "auto" (see docs/testing.md). Plain tests can still use '
                "the sayna_server fixture with SaynaSyncClient."
            ),
            stacklevel=2,
        )


def _fixture_decorators() -> tuple[Any, Any]:
    """``(pytest.fixture, pytest_asyncio.fixture)``, ``None`` for what is not installed."""
    try:
        import pytest
    except ImportError:  # pragma: no cover - pytest is optional
        return None, None
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - async tests need pytest-asyncio
        return pytest.fixture, None
    return pytest.fixture, pytest_asyncio.fixture


_fixture, _async_fixture = _fixture_decorators()

if _async_fixture is not None:

    @_async_fixture  # type: ignore[untyped-decorator]
    async def _sayna_server_on_a_loop() -> AsyncIterator[LocalServer]:
        """``sayna_server`` of an async test: on the loop of pytest-asyncio's fixtures."""
        async with running_server() as server:
            yield server


if _fixture is not None:

    @_fixture  # type: ignore[untyped-decorator]
    def sayna_server(request: Any) -> Iterator[LocalServer]:
        """A running local server (fake engine, no auth), stopped after the test: on
        the event loop in an async test, on a thread of its own in a plain one."""
        if _async_fixture is not None and _runs_on_a_loop(request.node):
            import pytest

            try:
                on_the_loop = request.getfixturevalue("_sayna_server_on_a_loop")
            except pytest.FixtureLookupError:
                # ``from sayna_client.testing import sayna_server`` in a conftest, not the
                # plugin: its loop fixture is not known; a server on a thread serves too.
                pass
            else:
                yield on_the_loop
                return
        with _running_server_thread() as server:
            yield server
