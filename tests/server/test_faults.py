"""Fault injection modes (each off by default)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from helpers.wire import config, recv, recv_json, send
from sayna_client.server import Faults, LocalServer
from sayna_client.server.faults import MALFORMED_FRAMES


async def test_defaults_are_off(server: LocalServer) -> None:
    assert server.faults == Faults()


async def test_never_send_ready(server: LocalServer, http: aiohttp.ClientSession) -> None:
    server.faults = Faults(never_send_ready=True)
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, config())
        await send(ws, {"type": "speak", "text": ""})
        await send(ws, {"type": "update_config", "turn_detect": {"threshold": 5}})
        assert (await recv_json(ws))["type"] == "error"  # no ready came first


async def test_ready_delay(server: LocalServer, http: aiohttp.ClientSession) -> None:
    server.faults = Faults(ready_delay=0.3)
    loop = asyncio.get_running_loop()
    async with http.ws_connect(server.ws_url) as ws:
        started = loop.time()
        await send(ws, config())
        assert (await recv_json(ws))["type"] == "ready"
        assert loop.time() - started >= 0.29


async def test_close_after_config(server: LocalServer, http: aiohttp.ClientSession) -> None:
    server.faults = Faults(close_after_config=True, close_code=4001)
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, config())
        msg = await recv(ws)
        assert msg.type == aiohttp.WSMsgType.CLOSE
        assert msg.data == 4001
    session = server.records.last_session
    await server.records.wait_for(session.closed.is_set)
    assert session.close_code == 4001


async def test_drop_connection_after_frames(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    server.faults = Faults(drop_connection_after_frames=3)
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, config())
        assert (await recv_json(ws))["type"] == "ready"
        await send(ws, {"type": "speak", "text": "a b c d e f"})
        frames = []
        while True:
            msg = await ws.receive(timeout=10)
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            frames.append(msg)
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert len(frames) == 2
    session = server.records.last_session
    await server.records.wait_for(session.closed.is_set)
    assert session.close_code == 1006


async def test_malformed_frames_before_ready(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    server.faults = Faults(malformed_frames=True)
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, config())
        texts = [(await ws.receive(timeout=10)).data for _ in MALFORMED_FRAMES]
        assert texts == list(MALFORMED_FRAMES)
        assert (await recv_json(ws))["type"] == "ready"
    with pytest.raises(ValueError, match="Expecting"):
        json.loads(MALFORMED_FRAMES[0])


async def test_ignore_pings(server: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(server.ws_url, autoping=False) as ws:
        await ws.ping(b"1")
        pong = await ws.receive(timeout=10)
        assert pong.type == aiohttp.WSMsgType.PONG
    server.faults = Faults(ignore_pings=True)
    async with http.ws_connect(server.ws_url, autoping=False) as ws:
        await ws.ping(b"2")
        await send(ws, config())
        # The ready arrives but the ping never gets its pong.
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.TEXT
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.3)


async def test_reject_config_error(server: LocalServer, http: aiohttp.ClientSession) -> None:
    server.faults = Faults(reject_config_error="Timeout waiting for voice providers to be ready")
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, config())
        assert await recv_json(ws) == {
            "type": "error",
            "message": "Timeout waiting for voice providers to be ready",
        }


async def test_faults_over_control_endpoint(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.put(server.url + "/_local/faults", json={"ready_delay": 0.1}) as response:
        assert response.status == 200
        assert (await response.json())["ready_delay"] == 0.1
    assert server.faults.ready_delay == 0.1
    async with http.put(server.url + "/_local/faults", json={"bogus": 1}) as response:
        assert response.status == 400
