"""How the local server closes a session: close codes on the wire, both ways.

Every test runs twice: the payload-less Close (seen as 1005) goes out through aiohttp's
public ``send_frame`` where it has one, and through the frame's bytes on the transport
(what aiohttp < 3.11 gets; forced here with the internal switch
``outbound.USE_SEND_FRAME``). ``.ci/run`` runs this file on the oldest aiohttp the package
allows as well as the newest: custom close codes must survive both.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from helpers.wire import config, configure, recv, recv_json, send
from sayna_client.server import Faults, LocalServer, outbound


@pytest.fixture(params=["send_frame", "transport"])
def close_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "transport":
        monkeypatch.setattr(outbound, "USE_SEND_FRAME", False)
    return str(request.param)


async def _closed(server: LocalServer) -> int:
    record = server.records.last_session
    await server.records.wait_for(record.closed.is_set, 10)
    assert record.close_code is not None
    return record.close_code


async def test_a_participant_leaving_closes_without_a_status(
    server: LocalServer, http: aiohttp.ClientSession, close_path: str
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(livekit={"room_name": "call"}))
        await server.inject_participant("call", "caller")
        assert (await recv_json(ws))["type"] == "participant_connected"
        assert (await recv_json(ws))["type"] == "track_subscribed"
        await server.inject_participant_left("call", "caller")
        assert (await recv_json(ws))["type"] == "participant_disconnected"
        close = await recv(ws)
        assert close.type == aiohttp.WSMsgType.CLOSE
        assert close.data == 0  # aiohttp reports a payload-less Close (1005) as 0
    assert await _closed(server) == 1005


@pytest.mark.parametrize("code", [1011, 4001])
async def test_a_custom_close_code_from_the_server_reaches_the_client(
    server: LocalServer, http: aiohttp.ClientSession, close_path: str, code: int
) -> None:
    server.faults = Faults(close_after_config=True, close_code=code)
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, config())
        close = await recv(ws)
        assert close.type == aiohttp.WSMsgType.CLOSE
        assert close.data == code
    assert await _closed(server) == code


@pytest.mark.parametrize("code", [1000, 4000])
async def test_the_clients_close_code_is_answered_and_recorded(
    server: LocalServer, http: aiohttp.ClientSession, close_path: str, code: int
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await ws.close(code=code)
        assert ws.close_code == code  # the server echoed it
    assert await _closed(server) == code


async def test_stopping_the_server_closes_with_going_away(
    http: aiohttp.ClientSession, close_path: str
) -> None:
    server = LocalServer()
    await server.start()
    try:
        async with http.ws_connect(server.ws_url) as ws:
            await configure(ws)
            stopping = asyncio.ensure_future(server.stop())
            close = await recv(ws)
            assert close.type == aiohttp.WSMsgType.CLOSE
            assert close.data == 1001
            await ws.close()
            await asyncio.wait_for(stopping, 10)
    finally:
        await server.stop()
    assert server.records.last_session.close_code == 1001
