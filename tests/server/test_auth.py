"""Authentication rules of section 1 and tenant isolation."""

from __future__ import annotations

import aiohttp
import pytest

from helpers.wire import config, configure, recv_json, send
from sayna_client.server import LocalServer
from sayna_client.testing import running_server

MISSING = {
    "error": "missing_auth_header",
    "message": "Missing authentication token (Authorization header or api_key query parameter)",
}
INVALID = {
    "error": "invalid_auth_header",
    "message": "Invalid Authorization header format (expected 'Bearer {token}') and missing "
    "api_key query parameter",
}
UNAUTHORIZED = {"error": "unauthorized", "message": "Unauthorized: Invalid API secret"}


@pytest.mark.parametrize(
    ("headers", "query", "status", "body"),
    [
        ({}, "", 401, MISSING),
        ({"Authorization": "Basic abc"}, "", 401, INVALID),
        ({"Authorization": "bearer test-key"}, "", 401, INVALID),
        ({"Authorization": "Bearer "}, "", 401, INVALID),
        ({"Authorization": "Bearer wrong"}, "", 401, UNAUTHORIZED),
        ({}, "?api_key=wrong", 401, UNAUTHORIZED),
        ({}, "?api_key=%20", 401, MISSING),
        ({"Authorization": "Bearer test-key"}, "", 200, None),
        ({}, "?api_key=test-key", 200, None),
        ({"Authorization": "Basic x"}, "?api_key=test-key", 200, None),
        ({"Authorization": "Bearer test-key"}, "?api_key=wrong", 200, None),
        ({"Authorization": "Bearer wrong"}, "?api_key=test-key", 401, UNAUTHORIZED),
    ],
)
async def test_token_extraction_rules(
    auth_server: LocalServer,
    http: aiohttp.ClientSession,
    headers: dict[str, str],
    query: str,
    status: int,
    body: object,
) -> None:
    async with http.get(auth_server.url + "/voices" + query, headers=headers) as response:
        assert response.status == status
        if body is not None:
            assert response.content_type == "application/json"
            assert await response.json() == body


async def test_health_needs_no_auth(auth_server: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.get(auth_server.url + "/") as response:
        assert response.status == 200


async def test_auth_precedes_body_validation(
    auth_server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.post(auth_server.url + "/speak", data=b"x") as response:
        assert response.status == 401


async def test_control_endpoints_require_auth(
    auth_server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(auth_server.url + "/_local/faults") as response:
        assert response.status == 401
    headers = {"Authorization": "Bearer test-key"}
    async with http.get(auth_server.url + "/_local/faults", headers=headers) as response:
        assert response.status == 200


async def test_websocket_upgrade_is_authenticated(
    auth_server: LocalServer, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await http.ws_connect(auth_server.ws_url)
    assert info.value.status == 401
    async with http.get(auth_server.ws_url.replace("ws://", "http://")) as response:
        assert response.status == 401
        assert await response.json() == MISSING
    async with http.ws_connect(auth_server.ws_url + "?api_key=test-key") as ws:
        await configure(ws)
    headers = {"Authorization": "Bearer test-key"}
    async with http.ws_connect(auth_server.ws_url, headers=headers) as ws:
        await configure(ws)
    assert len(auth_server.records.sessions) == 2


async def test_tenant_isolation(http: aiohttp.ClientSession) -> None:
    async with running_server(api_keys={"key-a": "tenant-a", "key-b": "tenant-b"}) as server:
        a = {"Authorization": "Bearer key-a"}
        b = {"Authorization": "Bearer key-b"}
        token = {"room_name": "room-a", "participant_name": "n", "participant_identity": "i"}
        async with http.post(server.url + "/livekit/token", json=token, headers=a) as response:
            assert response.status == 200
        assert server.rooms["room-a"].metadata == '{"auth_id":"tenant-a"}'
        async with http.post(server.url + "/livekit/token", json=token, headers=b) as response:
            assert response.status == 403
            assert await response.json() == {
                "error": "Access denied: room belongs to a different tenant"
            }
        async with http.get(server.url + "/livekit/rooms", headers=b) as response:
            assert await response.json() == {"rooms": []}
        async with http.get(server.url + "/livekit/rooms", headers=a) as response:
            rooms = (await response.json())["rooms"]
            assert [room["name"] for room in rooms] == ["room-a"]
        async with http.get(server.url + "/livekit/rooms/room-a", headers=b) as response:
            assert response.status == 404
            assert await response.json() == {"error": "Room 'room-a' not found or not accessible"}
        remove = {"room_name": "room-a", "participant_identity": "i"}
        async with http.delete(
            server.url + "/livekit/participant", json=remove, headers=b
        ) as response:
            assert response.status == 404
            assert (await response.json())["code"] == "PARTICIPANT_NOT_FOUND"
        async with http.ws_connect(server.ws_url, headers=b) as ws:
            await send(ws, config(livekit={"room_name": "room-a"}))
            assert await recv_json(ws) == {
                "type": "error",
                "message": "Access denied: room 'room-a' belongs to a different tenant",
            }
        assert server.records.sessions[0].auth_id == "tenant-b"
