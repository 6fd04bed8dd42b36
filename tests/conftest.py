"""Shared fixtures: local servers from the package's own pytest plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from sayna_client.server import LocalServer

pytest_plugins = ["sayna_client.testing"]


@pytest_asyncio.fixture
async def server() -> AsyncIterator[LocalServer]:
    """Fake engine, no auth."""
    async with LocalServer() as srv:
        yield srv


@pytest_asyncio.fixture
async def auth_server() -> AsyncIterator[LocalServer]:
    """Fake engine, API key ``test-key``."""
    async with LocalServer(api_key="test-key") as srv:
        yield srv
