"""SIP: phone rules, call/transfer, hooks table and signed webhook delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from helpers.wire import config, configure, recv, recv_json, send
from sayna_client.server import LocalServer, SipHook
from sayna_client.server.livekit import access_token
from sayna_client.server.sip import parse_sip_host, validate_phone
from sayna_client.testing import running_server

SECRET = "a-very-long-hook-secret"


class Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps raw requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=204)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/hook", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield target
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("number", "detail"),
    [
        ("  ", "Phone number cannot be empty"),
        ("+", "Phone number must contain at least one digit"),
        ("1+2", "Invalid character '+' at position 1 - plus sign is only allowed at the beginning"),
        (
            "+1 555",
            "Invalid character ' ' at position 2 - only digits (0-9) and optional leading '+' "
            "are allowed",
        ),
    ],
)
def test_phone_validation_details(number: str, detail: str) -> None:
    with pytest.raises(
        ValueError,
        match=r"^" + detail.replace("+", r"\+").replace("(", r"\(").replace(")", r"\)") + "$",
    ):
        validate_phone(number)


def test_phone_normalization_and_sip_host_parsing() -> None:
    assert validate_phone(" +15550100 ") == "tel:+15550100"
    assert validate_phone("1001") == "tel:1001"
    # A sip: URI keeps its port (section 9.1); the full table is in tests/fidelity.
    assert parse_sip_host("<sip:+1555@Sip.Example.COM:5060>;tag=x") == "sip.example.com:5060"
    assert parse_sip_host("sips:bob@example.org") == "example.org"
    assert parse_sip_host("10.0.0.5:5060") == "10.0.0.5"
    assert parse_sip_host("no-dots") is None


async def test_sip_call_adds_participant_and_transfer_completes(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    call = {
        "room_name": "pstn",
        "participant_name": "Callee",
        "participant_identity": "callee",
        "from_phone_number": "+15550100",
        "to_phone_number": "+15550199",
    }
    async with http.post(server.url + "/sip/call", json=call) as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "initiated"
    assert body["participant_id"].startswith("PA_")
    assert body["sip_call_id"].startswith("SCL_")
    assert server.rooms["pstn"].participants["callee"].kind == "SIP"
    for number, detail in (("x", "Invalid to_phone_number"), ("", "Invalid to_phone_number")):
        async with http.post(
            server.url + "/sip/call", json={**call, "to_phone_number": number}
        ) as r:
            assert r.status == 400
            error = await r.json()
            assert error["code"] == "INVALID_PHONE_NUMBER"
            assert error["error"].startswith(detail)
    async with http.post(server.url + "/sip/call", json={**call, "participant_name": " "}) as r:
        assert await r.json() == {
            "error": "Participant name cannot be empty",
            "code": "INVALID_PHONE_NUMBER",
        }
    transfer = {"room_name": "pstn", "participant_identity": "callee", "transfer_to": "+1555"}
    async with http.post(server.url + "/sip/transfer", json=transfer) as response:
        assert response.status == 200
        assert await response.json() == {
            "status": "completed",
            "room_name": "pstn",
            "participant_identity": "callee",
            "transfer_to": "tel:+1555",
        }
    for override, status, code in (
        ({"transfer_to": "abc"}, 400, "INVALID_PHONE_NUMBER"),
        ({"room_name": "nope"}, 404, "ROOM_ACCESS_DENIED"),
        ({"participant_identity": ""}, 400, "PARTICIPANT_NOT_FOUND"),
        ({"participant_identity": "ghost"}, 404, "PARTICIPANT_NOT_FOUND"),
    ):
        async with http.post(server.url + "/sip/transfer", json={**transfer, **override}) as r:
            assert r.status == status
            assert (await r.json())["code"] == code
    assert server.records.sip_transfers == [
        {"room_name": "pstn", "participant_identity": "callee", "transfer_to": "tel:+1555"}
    ]


async def test_sip_call_without_outbound_address(http: aiohttp.ClientSession) -> None:
    async with running_server(sip_outbound_address=None) as server:
        call = {
            "room_name": "r",
            "participant_name": "n",
            "participant_identity": "i",
            "from_phone_number": "1",
            "to_phone_number": "2",
        }
        async with http.post(server.url + "/sip/call", json=call) as response:
            assert response.status == 500
            assert (await response.json())["code"] == "OUTBOUND_ADDRESS_NOT_CONFIGURED"
        call["sip"] = {"outbound_address": "pbx.example.com:5060"}  # type: ignore[assignment]
        async with http.post(server.url + "/sip/call", json=call) as response:
            assert response.status == 200


async def test_ws_sip_transfer(server: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, {"type": "config", "audio": False, "livekit": {"room_name": "t"}})
        await send(ws, {"type": "sip_transfer", "transfer_to": "+1555"})
        assert await recv_json(ws) == {
            "type": "sip_transfer_error",
            "message": "No SIP participant found in room to transfer",
        }
        await server.inject_sip_participant(
            "t", "caller", from_phone_number="+1444", to_phone_number="+1555"
        )
        assert (await recv_json(ws))["type"] == "participant_connected"
        await send(ws, {"type": "sip_transfer", "transfer_to": "+1666"})
        # LiveKit's cold transfer takes the caller out of the room, so Sayna sends
        # participant_disconnected and closes 100 ms later (config_handler.rs:1108-1143).
        left = await recv_json(ws)
        assert left["type"] == "participant_disconnected"
        assert left["participant"]["identity"] == "caller"
        close = await recv(ws)
        assert close.type == aiohttp.WSMsgType.CLOSE
        assert close.data == 0  # payload-less Close (1005)
    assert server.records.sip_transfers == [
        {"room_name": "t", "participant_identity": "caller", "transfer_to": "tel:+1666"}
    ]


async def test_rest_sip_transfer_takes_the_caller_out_of_the_room(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    await server.inject_sip_participant(
        "pstn", "caller", from_phone_number="+1444", to_phone_number="+1555"
    )
    transfer = {"room_name": "pstn", "participant_identity": "caller", "transfer_to": "+1666"}
    async with http.post(server.url + "/sip/transfer", json=transfer) as response:
        assert response.status == 200
        assert (await response.json())["status"] == "completed"
    await server.records.wait_for(lambda: "caller" not in server.rooms["pstn"].participants)
    async with http.get(server.url + "/livekit/rooms/pstn") as response:
        assert (await response.json())["participants"] == []
    # A session in the room hears the caller leave, then closes.
    await server.inject_sip_participant(
        "pstn", "caller-2", from_phone_number="+1444", to_phone_number="+1555"
    )
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, {"type": "config", "audio": False, "livekit": {"room_name": "pstn"}})
        transfer["participant_identity"] = "caller-2"
        async with http.post(server.url + "/sip/transfer", json=transfer) as response:
            assert response.status == 200
        left = await recv_json(ws)
        assert left["type"] == "participant_disconnected"
        assert left["participant"]["identity"] == "caller-2"
        assert (await recv(ws)).type == aiohttp.WSMsgType.CLOSE


async def test_hooks_table(server: LocalServer, http: aiohttp.ClientSession) -> None:
    url = server.url + "/sip/hooks"
    async with http.get(url) as response:
        assert await response.json() == {"hooks": []}
    hooks = [{"host": " Example.COM ", "url": "http://h/1", "auth_id": " t "}]
    async with http.post(url, json={"hooks": hooks}) as response:
        assert response.status == 200
        assert await response.json() == {
            "hooks": [{"host": "example.com", "url": "http://h/1", "auth_id": "t"}]
        }
    dupes = [
        {"host": "a.com", "url": "u", "auth_id": ""},
        {"host": "A.com", "url": "v", "auth_id": ""},
    ]
    async with http.post(url, json={"hooks": dupes}) as response:
        assert response.status == 400
        assert await response.json() == {
            "error": "Validation error: Duplicate host detected: a.com"
        }
    async with http.post(url, json={"hooks": [{"host": "x"}]}) as response:
        assert response.status == 422
        assert "missing field `url`" in await response.text()
    async with http.delete(url, json={}) as response:
        assert response.status == 400
        assert await response.json() == {"error": "No hosts provided to delete."}
    async with http.delete(url, json={"hosts": ["EXAMPLE.com", "unknown.org"]}) as response:
        assert await response.json() == {"hooks": []}


async def test_config_hooks_are_read_only_and_auth_requires_auth_id(
    http: aiohttp.ClientSession,
) -> None:
    fixed = SipHook("Fixed.example", "http://fixed/", "", secret="own-secret")
    async with running_server(api_key="k", sip_hooks=[fixed]) as server:
        headers = {"Authorization": "Bearer k"}
        url = server.url + "/sip/hooks"
        async with http.get(url, headers=headers) as response:
            assert (await response.json())["hooks"] == [
                {"host": "fixed.example", "url": "http://fixed/", "auth_id": ""}
            ]
        entry = {"host": "fixed.example", "url": "http://x/", "auth_id": "t"}
        async with http.post(url, json={"hooks": [entry]}, headers=headers) as response:
            assert response.status == 405
            assert await response.json() == {
                "error": "Host(s) fixed.example are hardcoded in the application config and "
                "cannot be changed."
            }
        async with http.delete(url, json={"hosts": ["FIXED.example"]}, headers=headers) as r:
            assert r.status == 405
        entry = {"host": "new.example", "url": "http://x/", "auth_id": ""}
        async with http.post(url, json={"hooks": [entry]}, headers=headers) as response:
            assert response.status == 400
            assert await response.json() == {
                "error": "Hook for host 'new.example' has empty auth_id. When AUTH_REQUIRED=true, "
                "auth_id must be provided."
            }


async def test_hook_errors_name_hosts_as_sayna_does(http: aiohttp.ClientSession) -> None:
    # hooks.rs: the empty-auth_id error quotes the host as sent; the hardcoded-host error
    # lists each blocked host once, normalized and sorted.
    fixed = [SipHook("b.example.com", "http://b/"), SipHook("a.example.com", "http://a/")]
    async with running_server(api_key="k", sip_hooks=fixed) as server:
        headers = {"Authorization": "Bearer k"}
        url = server.url + "/sip/hooks"
        entry = {"host": " Sip.Example.COM ", "url": "http://x/", "auth_id": " "}
        async with http.post(url, json={"hooks": [entry]}, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["error"] == (
                "Hook for host ' Sip.Example.COM ' has empty auth_id. When AUTH_REQUIRED=true, "
                "auth_id must be provided."
            )
        blocked = (
            "Host(s) a.example.com, b.example.com are hardcoded in the application config and "
            "cannot be changed."
        )
        hooks = [
            {"host": host, "url": "http://x/", "auth_id": "t"}
            for host in ("b.example.com", "A.example.com", " a.EXAMPLE.com")
        ]
        async with http.post(url, json={"hooks": hooks}, headers=headers) as response:
            assert response.status == 405
            assert await response.json() == {"error": blocked}
        hosts = ["b.example.com", "a.example.com", "B.example.com"]
        async with http.delete(url, json={"hosts": hosts}, headers=headers) as response:
            assert response.status == 405
            assert await response.json() == {"error": blocked}


def _verify(headers: dict[str, str], body: bytes, secret: str) -> None:
    timestamp = headers["X-Sayna-Timestamp"]
    event_id = headers["X-Sayna-Event-Id"]
    message = f"v1:{timestamp}:{event_id}:".encode() + body
    expected = "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Sayna-Signature"], expected)
    assert headers["X-Sayna-Signature-Version"] == "v1"
    assert headers["Content-Type"] == "application/json"
    assert abs(int(timestamp) - time.time()) < 60


async def test_sip_participant_triggers_signed_webhook(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async with running_server(hook_secret=f"  {SECRET} ") as server:
        # A sip: URI keeps its port, so the hook names it too (section 9.1).
        hook = {"host": "sip.acme.test:5060", "url": receiver.url, "auth_id": "acme"}
        async with http.post(server.url + "/sip/hooks", json={"hooks": [hook]}) as response:
            assert response.status == 200
        participant = await server.inject_sip_participant(
            "sip-call-1",
            "sip_caller",
            name="Caller",
            from_phone_number="+15550100",
            to_phone_number="+15550199",
            sip_host="SIP.acme.test:5060",
            headers={"X-Custom": "1"},
        )
        await server.records.wait_for(lambda: receiver.requests)
        webhook = server.records.webhooks[0]
        await server.records.wait_for(lambda: webhook.done)
        assert webhook.status == 204
        room = server.rooms["sip-call-1"]
    headers, body = receiver.requests[0]
    _verify(headers, body, SECRET)
    assert headers["X-Sayna-Event-Id"].startswith("EV_")
    assert body == webhook.body
    payload: dict[str, Any] = json.loads(body)
    assert list(payload) == [
        "participant",
        "room",
        "from_phone_number",
        "to_phone_number",
        "room_prefix",
        "sip_host",
        "sip_headers",
    ]
    assert b" " not in body.replace(b"Caller", b"")
    assert payload["participant"] == {
        "name": "Caller",
        "identity": "sip_caller",
        "sid": participant["sid"],
    }
    assert payload["room"] == {"name": "sip-call-1", "sid": room.sid}
    assert payload["from_phone_number"] == "+15550100"
    assert payload["to_phone_number"] == "+15550199"
    assert payload["sip_host"] == "sip.acme.test:5060"
    assert payload["room_prefix"] == "sip-"
    assert payload["sip_headers"] == {"to": "<sip:+15550199@SIP.acme.test:5060>", "x-custom": "1"}
    assert room.metadata == '{"auth_id":"acme"}'


async def test_no_secret_no_webhook_and_control_endpoint(
    server: LocalServer, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    hook = {"host": "h.test", "url": receiver.url, "auth_id": ""}
    async with http.post(server.url + "/sip/hooks", json={"hooks": [hook]}) as response:
        assert response.status == 200
    body = {
        "identity": "c",
        "from_phone_number": "1",
        "to_phone_number": "2",
        "sip_host": "h.test",
    }
    async with http.post(server.url + "/_local/rooms/r/sip", json=body) as response:
        assert response.status == 200
        assert (await response.json())["kind"] == "SIP"
    assert server.records.webhooks == []


async def test_livekit_webhook_endpoint_forwards_sip_join(
    http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async with running_server(hook_secret=SECRET) as server:
        async with http.post(
            server.url + "/sip/hooks",
            json={"hooks": [{"host": "pbx.test", "url": receiver.url, "auth_id": ""}]},
        ) as response:
            assert response.status == 200
        event = {
            "event": "participant_joined",
            "id": "EV_fromlivekit",
            "room": {"name": "sip-x", "sid": "RM_x"},
            "participant": {
                "sid": "PA_x",
                "identity": "caller",
                "name": "",
                "attributes": {
                    "sip.phoneNumber": "+1",
                    "sip.trunkPhoneNumber": "+2",
                    "sip.h.x-to-ip": "pbx.test",
                },
            },
        }
        raw = json.dumps(event).encode()
        jwt = access_token(server.livekit_api_key, server.livekit_api_secret, "", "", "")
        # Add the body hash claim LiveKit signs.
        header, claims_b64, _ = jwt.split(".")
        claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=="))
        claims["sha256"] = base64.b64encode(hashlib.sha256(raw).digest()).decode()
        signing = (
            header
            + "."
            + base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        )
        signature = hmac.new(
            server.livekit_api_secret.encode(), signing.encode(), hashlib.sha256
        ).digest()
        token = signing + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
        async with http.post(server.url + "/livekit/webhook", data=raw) as response:
            assert response.status == 401
            assert await response.read() == b""
        async with http.post(
            server.url + "/livekit/webhook", data=raw, headers={"Authorization": token}
        ) as response:
            assert response.status == 200
            assert await response.json() == {"status": "received"}
        await server.records.wait_for(lambda: receiver.requests)
    headers, body = receiver.requests[0]
    assert headers["X-Sayna-Event-Id"] == "EV_fromlivekit"
    _verify(headers, body, SECRET)
    assert json.loads(body)["sip_headers"] == {"x-to-ip": "pbx.test"}


def livekit_signature(server: LocalServer, raw: bytes) -> str:
    """The ``Authorization`` LiveKit sends with a webhook body: a JWT of the server's LiveKit
    key carrying the body's SHA-256."""
    claims = {
        "iss": server.livekit_api_key,
        "exp": int(time.time()) + 600,
        "sha256": base64.b64encode(hashlib.sha256(raw).digest()).decode(),
    }

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    signing = part({"alg": "HS256", "typ": "JWT"}) + "." + part(claims)
    signature = hmac.new(
        server.livekit_api_secret.encode(), signing.encode(), hashlib.sha256
    ).digest()
    return signing + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


JOINED: dict[str, Any] = {
    "event": "participant_joined",
    "id": "EV_1",
    "room": {"name": "sip-x", "sid": "RM_x"},
    "participant": {"identity": "caller", "sid": "PA_1", "name": "", "attributes": {}},
}


@pytest.mark.parametrize(
    "event",
    [
        {**JOINED, "participant": {**JOINED["participant"], "attributes": [1]}},
        {**JOINED, "participant": {**JOINED["participant"], "attributes": {"a": 1}}},
        {**JOINED, "participant": {**JOINED["participant"], "identity": 7}},
        {**JOINED, "participant": "caller"},
        {**JOINED, "room": "sip-x"},
        {**JOINED, "room": {"name": ["sip-x"]}},
        {**JOINED, "event": 1},
        {**JOINED, "id": {}},
        [JOINED],
    ],
    ids=[
        "attributes-list",
        "attribute-number",
        "identity-number",
        "participant-string",
        "room-string",
        "room-name-list",
        "event-number",
        "id-object",
        "not-an-object",
    ],
)
async def test_a_signed_webhook_of_the_wrong_shape_is_400_empty(
    server: LocalServer, http: aiohttp.ClientSession, event: Any
) -> None:
    # Section 3.13: Sayna parses the event as LiveKit's WebhookEvent; data that does not
    # fit is 400 with an empty body (it was a 500 and a traceback).
    raw = json.dumps(event).encode()
    headers = {"Authorization": livekit_signature(server, raw)}
    async with http.post(server.url + "/livekit/webhook", data=raw, headers=headers) as response:
        assert response.status == 400
        assert await response.read() == b""
    raw = json.dumps(JOINED).encode()  # the right shape, for contrast
    headers = {"Authorization": livekit_signature(server, raw)}
    async with http.post(server.url + "/livekit/webhook", data=raw, headers=headers) as response:
        assert response.status == 200
        assert await response.json() == {"status": "received"}


async def test_session_config_records(server: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(server.ws_url + "?x=1") as ws:
        await configure(ws, config(stream_id="abc"))
    session = server.records.last_session
    assert session.config is not None
    assert session.config["stream_id"] == "abc"
    assert session.query == {"x": "1"}
    assert session.sent[0]["type"] == "ready"
