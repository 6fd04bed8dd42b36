"""Protocol 1.5/1.6 (tenants) and 3.14 (the tokens Sayna signs, participant kinds).

With one API key the caller's tenant is ``default``: ``POST /livekit/token`` creates the
room marked ``{"auth_id":"default"}`` before signing, room lists keep only that tenant's
rooms, and any other room (another tenant's, or one without an owner) answers 404.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from helpers.wire import config, configure
from sayna_client.server import LocalServer

from .conftest import run_upstream

KEY = "fidelity-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TOKEN_REQUEST = {"room_name": "support", "participant_name": "Ann", "participant_identity": "ann"}


def _claims(token: str, server: LocalServer) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token,
        server.livekit_api_secret,
        algorithms=["HS256"],
        options={"verify_aud": False},
    )
    return claims


async def test_token_request_creates_the_room_for_tenant_default(
    http: aiohttp.ClientSession,
) -> None:
    async with LocalServer(api_key=KEY) as server:
        async with http.post(
            server.url + "/livekit/token", json=TOKEN_REQUEST, headers=AUTH
        ) as response:
            assert response.status == 200
        room = server.rooms["support"]
        assert room.metadata == '{"auth_id":"default"}'
        assert room.max_participants == 3  # rooms Sayna creates (section 1.6)
        async with http.get(server.url + "/livekit/rooms/support", headers=AUTH) as response:
            details = await response.json()
        assert (details["metadata"], details["max_participants"]) == ('{"auth_id":"default"}', 3)


async def test_room_lists_and_details_are_filtered_by_owner(http: aiohttp.ClientSession) -> None:
    async with LocalServer(api_key=KEY) as server:
        await server.inject_participant("unowned", "someone")  # created by LiveKit, no owner
        async with http.post(
            server.url + "/livekit/token", json=TOKEN_REQUEST, headers=AUTH
        ) as response:
            assert response.status == 200
        async with http.get(server.url + "/livekit/rooms", headers=AUTH) as response:
            names = [room["name"] for room in (await response.json())["rooms"]]
        assert names == ["support"]
        async with http.get(server.url + "/livekit/rooms/unowned", headers=AUTH) as response:
            assert response.status == 404
            assert await response.json() == {"error": "Room 'unowned' not found or not accessible"}
        remove = {"room_name": "unowned", "participant_identity": "someone"}
        async with http.delete(
            server.url + "/livekit/participant", json=remove, headers=AUTH
        ) as response:
            assert response.status == 404
            assert (await response.json())["code"] == "PARTICIPANT_NOT_FOUND"


async def test_a_room_without_owner_is_adopted_by_token_and_ws(
    http: aiohttp.ClientSession,
) -> None:
    async with LocalServer(api_keys={"k1": "t1", "k2": "t2"}) as server:
        await server.inject_participant("lobby", "someone")
        server.rooms["lobby"].metadata = '{"topic":"x"}'
        body = {**TOKEN_REQUEST, "room_name": "lobby"}
        async with http.post(
            server.url + "/livekit/token", json=body, headers={"Authorization": "Bearer k1"}
        ) as response:
            assert response.status == 200
        # The owner mark is merged in: other keys survive, compact and sorted (1.6).
        assert server.rooms["lobby"].metadata == '{"auth_id":"t1","topic":"x"}'
        async with http.ws_connect(server.ws_url, headers={"Authorization": "Bearer k2"}) as ws:
            await ws.send_str(json.dumps(config(livekit={"room_name": "lobby"})))
            assert json.loads((await ws.receive(timeout=10)).data) == {
                "type": "error",
                "message": "Access denied: room 'lobby' belongs to a different tenant",
            }


async def test_user_token_grants(http: aiohttp.ClientSession) -> None:
    async with LocalServer(api_key=KEY) as server:
        async with http.post(
            server.url + "/livekit/token", json=TOKEN_REQUEST, headers=AUTH
        ) as response:
            token = (await response.json())["token"]
        claims = _claims(token, server)
    assert claims["sub"] == "ann"
    assert claims["name"] == "Ann"
    assert claims["iss"] == server.livekit_api_key
    assert claims["exp"] - claims["nbf"] == 6 * 3600
    # livekit-api 0.4.9 serializes every field of Claims and VideoGrants, in declaration
    # order, defaults included (access_token.rs has no skip_serializing_if).
    assert list(claims) == [
        "exp",
        "iss",
        "nbf",
        "sub",
        "name",
        "video",
        "sip",
        "sha256",
        "metadata",
        "attributes",
        "roomConfig",
    ]
    assert list(claims["video"].items()) == [
        ("roomCreate", True),
        ("roomList", True),
        ("roomRecord", True),
        ("roomAdmin", False),
        ("roomJoin", True),
        ("room", "support"),
        ("destinationRoom", ""),
        ("canPublish", True),
        ("canSubscribe", True),
        ("canPublishData", True),
        ("canPublishSources", []),
        ("canUpdateOwnMetadata", True),
        ("ingressAdmin", False),
        ("hidden", False),
        ("recorder", False),
    ]
    assert claims["sip"] == {"admin": False, "call": False}
    assert (claims["sha256"], claims["metadata"], claims["attributes"]) == ("", "", {})
    assert claims["roomConfig"] is None
    assert jwt.get_unverified_header(token) == {"typ": "JWT", "alg": "HS256"}
    header = token.split(".")[0]
    assert base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)) == (
        b'{"typ":"JWT","alg":"HS256"}'
    )


async def test_sayna_joins_with_an_agent_token_and_is_listed_as_standard(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(livekit={"room_name": "call"}))
        await server.inject_sip_participant(
            "call", "caller", from_phone_number="+1", to_phone_number="+2"
        )
        async with http.get(server.url + "/livekit/rooms/call") as response:
            details = await response.json()
        kinds = {p["identity"]: p["kind"] for p in details["participants"]}
        assert kinds == {"sayna-ai": "STANDARD", "caller": "SIP"}
        agent = server.rooms["call"].participants["sayna-ai"]
        claims = _claims(agent.token, server)
    assert claims["video"]["roomAdmin"] is True
    assert claims["video"]["canPublish"] is True
    assert claims["sip"] == {"admin": True, "call": False}
    assert claims["video"]["canPublishSources"] == []
    assert (claims["video"]["ingressAdmin"], claims["video"]["hidden"]) == (False, False)
    assert claims["video"]["recorder"] is False
    assert (claims["sub"], claims["name"]) == ("sayna-ai", "Sayna AI")


async def test_an_empty_participant_name_is_kept(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    # config_handler.rs:889-897: only an omitted name takes the default "Sayna AI".
    async with http.ws_connect(server.ws_url) as ws:
        ready = await configure(
            ws, config(livekit={"room_name": "r", "sayna_participant_name": ""})
        )
        claims = _claims(server.rooms["r"].participants["sayna-ai"].token, server)
    assert (ready["sayna_participant_identity"], ready["sayna_participant_name"]) == (
        "sayna-ai",
        "",
    )
    assert claims["name"] == ""


async def test_an_empty_participant_identity_fails_the_agent_token(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    # livekit-api 0.4.9 refuses a room_join token without an identity; no ready follows.
    async with http.ws_connect(server.ws_url) as ws:
        await ws.send_str(
            json.dumps(config(livekit={"room_name": "r", "sayna_participant_identity": ""}))
        )
        assert json.loads((await ws.receive(timeout=10)).data) == {
            "type": "error",
            "message": 'Failed to generate agent token: ConnectionFailed("Failed to generate '
            "agent token with SIP grants: invalid claims: token grants room_join but doesn't "
            'have an identity or room")',
        }
        await ws.send_str('{"type":"marker"}')
        assert "unknown variant" in json.loads((await ws.receive(timeout=10)).data)["message"]
    assert server.records.last_session.sent_of_type("ready") == []


async def test_audio_false_agent_token_cannot_publish(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, {"type": "config", "audio": False, "livekit": {"room_name": "r"}})
        claims = _claims(server.rooms["r"].participants["sayna-ai"].token, server)
    assert claims["video"]["canPublish"] is False
    assert claims["video"]["canSubscribe"] is True


_UPSTREAM_TENANT = """
import asyncio, base64, json, sys
from sayna_client import SaynaClient
from sayna_client.errors import SaynaHttpError

async def main():
    client = SaynaClient(sys.argv[1], without_audio=True, api_key=sys.argv[2])
    token = await client.get_livekit_token("support", "Ann", "ann")
    payload = token.token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    rooms = await client.get_livekit_rooms()
    try:
        await client.get_livekit_room("unowned")
        status = 200
    except SaynaHttpError as exc:
        status = exc.status_code
    print(json.dumps({
        "video": claims["video"],
        "rooms": [room.name for room in rooms.rooms],
        "other_room_status": status,
    }))

asyncio.run(main())
"""


async def test_upstream_sdk_sees_tenant_default(upstream_python: Path) -> None:
    async with LocalServer(api_key=KEY) as server:
        await server.inject_participant("unowned", "someone")
        result = await run_upstream(upstream_python, _UPSTREAM_TENANT, server.url, KEY)
        assert server.rooms["support"].metadata == '{"auth_id":"default"}'
    assert result["rooms"] == ["support"]
    assert result["other_room_status"] == 404
    assert result["video"]["roomCreate"] is True
    assert result["video"]["roomAdmin"] is False


async def test_sip_hook_owner_marks_the_room_unless_another_tenant_owns_it(
    http: aiohttp.ClientSession,
) -> None:
    # Section 1.6: the hook's auth_id is written before the webhook goes out; a room that
    # belongs to another tenant keeps its owner (only logged) and the webhook still goes.
    from sayna_client.server import SipHook

    hooks = [SipHook("h.example.com", "http://127.0.0.1:9/hook", auth_id="t-hook")]
    async with LocalServer(hook_secret="hook-secret-0123456789", sip_hooks=hooks) as server:
        await server.inject_sip_participant(
            "new", "c1", from_phone_number="+1", to_phone_number="+2", sip_host="h.example.com"
        )
        assert server.rooms["new"].metadata == '{"auth_id":"t-hook"}'
        assert server.rooms["new"].max_participants == 0  # created by LiveKit, not Sayna
        await server.inject_participant("taken", "someone")
        server.rooms["taken"].set_auth_id("other")
        await server.inject_sip_participant(
            "taken", "c2", from_phone_number="+1", to_phone_number="+2", sip_host="h.example.com"
        )
        assert server.rooms["taken"].metadata == '{"auth_id":"other"}'
        await server.records.wait_for(lambda: len(server.records.webhooks) == 2)
