"""The webhook receiver end to end: the local server signs and delivers, an aiohttp
endpoint verifies with ``receive_aiohttp``."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from sayna_client import SipHook, WebhookReceiver, WebhookSIPOutput, WebhookVerificationError
from sayna_client.server import LocalServer
from sayna_client.webhooks import receive_aiohttp

from .conftest import make_client, start_app

SECRET = "local-webhook-secret-0123456789"


async def _endpoint(
    receiver: WebhookReceiver, got: asyncio.Queue[object]
) -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.Response:
        try:
            payload = await receive_aiohttp(receiver, request)
        except WebhookVerificationError as exc:
            await got.put(exc)
            return web.json_response({"error": exc.reason}, status=401)
        await got.put(payload)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/sayna", handler)
    runner, base = await start_app(app)
    return runner, base + "/sayna"


@pytest.mark.parametrize("secret", [SECRET, "a-different-secret-of-length"])
async def test_signed_sip_webhook_is_verified(secret: str) -> None:
    got: asyncio.Queue[object] = asyncio.Queue()
    runner, url = await _endpoint(WebhookReceiver(secret), got)
    try:
        async with LocalServer(hook_secret=SECRET) as server, make_client(server) as client:
            await client.set_sip_hooks([SipHook(host="sip.example.com", url=url, auth_id="")])
            await server.inject_sip_participant(
                "sip-call-1",
                "sip_caller",
                from_phone_number="+15551230000",
                to_phone_number="+15559990000",
                sip_host="sip.example.com",
                headers={"X-Custom": "yes"},
            )
            result = await asyncio.wait_for(got.get(), 10)
            record = server.records.webhooks[0]
            assert record.headers["X-Sayna-Signature"].startswith("v1=")
    finally:
        await runner.cleanup()
    if secret != SECRET:
        assert isinstance(result, WebhookVerificationError)
        assert result.reason == "signature_mismatch"
        return
    assert isinstance(result, WebhookSIPOutput)
    assert result.from_phone_number == "+15551230000"
    assert result.to_phone_number == "+15559990000"
    assert result.sip_host == "sip.example.com"
    assert result.room.name == "sip-call-1"
    assert result.participant.identity == "sip_caller"
    assert result.sip_headers is not None
    assert result.sip_headers["x-custom"] == "yes"
