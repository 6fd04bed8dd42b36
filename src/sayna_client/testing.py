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
authentication and no faults, stopped after the test. Importing this module does not
require pytest.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
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


def _fixture_decorator() -> Any:
    """``pytest_asyncio.fixture`` (or ``pytest.fixture``); ``None`` without pytest."""
    try:
        import pytest_asyncio

        return pytest_asyncio.fixture
    except ImportError:  # pragma: no cover - async fixtures need pytest-asyncio
        pass
    try:
        import pytest

        return pytest.fixture
    except ImportError:  # pragma: no cover - pytest is optional
        return None


_fixture = _fixture_decorator()

if _fixture is not None:

    @_fixture  # type: ignore[untyped-decorator]
    async def sayna_server() -> AsyncIterator[LocalServer]:
        """A running local server (fake engine, no auth), stopped after the test."""
        async with running_server() as server:
            yield server
