"""The local server against hostile clients (issue 13, items 10-15): real sockets on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import sys
from typing import Optional

import aiohttp

from sayna_client.server import LocalServer
from sayna_client.server.livekit import access_token

# --- LiveKit webhook secret (item 12) -------------------------------------------------


def livekit_webhook_token(api_key: str, api_secret: str, body: bytes) -> str:
    """A LiveKit webhook JWT: an access token with the body's ``sha256`` claim."""
    header, claims_b64, _ = access_token(api_key, api_secret, "", "", "").split(".")
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=="))
    claims["sha256"] = base64.b64encode(hashlib.sha256(body).digest()).decode()
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    signing = f"{header}.{encoded}"
    signature = hmac.new(api_secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


WEBHOOK_EVENT = json.dumps({"event": "room_started", "id": "EV_1"}).encode()


async def post_webhook(
    http: aiohttp.ClientSession, url: str, key: str, secret: str, body: bytes = WEBHOOK_EVENT
) -> int:
    token = livekit_webhook_token(key, secret, body)
    async with http.post(
        url + "/livekit/webhook", data=body, headers={"Authorization": token}
    ) as response:
        return response.status


async def test_livekit_webhook_refuses_the_well_known_dev_secret(
    http: aiohttp.ClientSession,
) -> None:
    async with LocalServer() as server:
        assert server.livekit_api_secret not in ("", "secret")
        assert len(server.livekit_api_secret) >= 32
        assert await post_webhook(http, server.url, "devkey", "secret") == 401
        assert await post_webhook(http, server.url, server.livekit_api_key, "secret") == 401
        assert (
            await post_webhook(http, server.url, server.livekit_api_key, server.livekit_api_secret)
            == 200
        )
    async with LocalServer() as other:
        assert other.livekit_api_secret != server.livekit_api_secret


async def test_livekit_key_and_secret_are_configurable(http: aiohttp.ClientSession) -> None:
    secret = "a-livekit-secret-of-some-length"
    async with LocalServer(livekit_api_key="APIkey", livekit_api_secret=secret) as server:
        assert (server.livekit_api_key, server.livekit_api_secret) == ("APIkey", secret)
        assert await post_webhook(http, server.url, "APIkey", secret) == 200
        assert await post_webhook(http, server.url, "APIother", secret) == 401


async def run_serve(
    *args: str, env: Optional[dict[str, str]] = None
) -> tuple[asyncio.subprocess.Process, str, str]:
    """Start ``sayna serve`` on a free port; return the process, its URL and its banner."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sayna_client.server",
        "--port",
        "0",
        "--log-level",
        "WARNING",
        *args,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    lines = []
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line, "sayna serve exited early"
        lines.append(line)
        if "Ctrl-C" in line:
            break
    url = lines[0].split("listening on ")[1].split()[0]
    return process, url, "".join(lines)


async def stop_serve(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()


async def test_sayna_serve_takes_livekit_credentials_from_flags_and_environment(
    http: aiohttp.ClientSession,
) -> None:
    secret = "env-livekit-secret-0123456789"
    env = {"LIVEKIT_API_KEY": "APIenv", "LIVEKIT_API_SECRET": secret}
    process, url, banner = await run_serve(env=env)
    try:
        assert "LiveKit API key: APIenv" in banner
        assert secret not in banner
        assert await post_webhook(http, url, "APIenv", secret) == 200
        assert await post_webhook(http, url, "devkey", "secret") == 401
    finally:
        await stop_serve(process)
    process, url, banner = await run_serve(
        "--livekit-api-key", "APIflag", env={"LIVEKIT_API_KEY": "", "LIVEKIT_API_SECRET": ""}
    )
    try:
        assert "LiveKit API key: APIflag" in banner
        assert await post_webhook(http, url, "APIflag", "secret") == 401  # random secret
    finally:
        await stop_serve(process)
