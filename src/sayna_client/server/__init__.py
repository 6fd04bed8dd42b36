"""The embedded local Sayna-compatible server (aiohttp) and its speech engines.

It speaks the real server's REST + WebSocket protocol on loopback so SDK tests,
benchmarks and users' own tests run without network access::

    from sayna_client.server import LocalServer, Faults

    async with LocalServer() as server:          # fake engine, port 0, no auth
        print(server.url, server.ws_url)
        ...
        assert server.records.last_session.config["type"] == "config"

LiveKit is simulated in memory (real LiveKit JWTs, rooms, participants, data packets);
tests inject room events with ``server.inject_*`` or the ``/_local/...`` endpoints
(:mod:`sayna_client.server.control`). Run it standalone with ``sayna serve`` or
``python -m sayna_client.server``.
"""

from __future__ import annotations

from .app import LocalServer
from .faults import Faults
from .records import (
    DataPacketRecord,
    Records,
    RequestRecord,
    SessionRecord,
    WebhookRecord,
)
from .sip import SipHook

__all__ = [
    "DataPacketRecord",
    "Faults",
    "LocalServer",
    "Records",
    "RequestRecord",
    "SessionRecord",
    "SipHook",
    "WebhookRecord",
]
