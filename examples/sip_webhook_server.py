"""Receive Sayna's signed SIP webhooks in an aiohttp app.

    export SAYNA_WEBHOOK_SECRET=change-me-to-a-long-random-secret
    sayna serve --hook-secret "$SAYNA_WEBHOOK_SECRET"           # terminal 1
    python examples/sip_webhook_server.py --simulate             # terminal 2

When a phone call reaches a LiveKit room through SIP, Sayna POSTs a signed JSON body
to the hook registered for the caller's SIP host. This app serves ``POST /sayna/sip``,
verifies each request with ``WebhookReceiver`` over the raw body bytes and answers
200 (accepted, or a duplicate already handled), 401 (not signed by Sayna: stale,
forged or malformed; the reason is in the body) or 400 (signed but unreadable).
On start it registers itself for ``--sip-host`` with ``set_sip_hooks``, and removes
the hook on exit. Sayna makes one delivery attempt with a 5 s timeout, so answer
at once and do slow work (routing the call, CRM look-ups) in the background.

``--simulate`` (local server only) makes the server place a SIP caller in a room,
which triggers one webhook, then sends one forged request to show a 401, and exits.
The local server signs only when started with a hook secret (``sayna serve
--hook-secret``, ``LocalServer(hook_secret=...)``) equal to this app's secret.

The same endpoint in FastAPI (Starlette's ``request.body()`` is the raw body)::

    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from sayna_client import WebhookReceiver, WebhookVerificationError

    app = FastAPI()
    receiver = WebhookReceiver(dedupe=True)  # secret from SAYNA_WEBHOOK_SECRET

    @app.post("/sayna/sip")
    async def sip_webhook(request: Request) -> JSONResponse:
        try:
            call = receiver.receive(request.headers, await request.body())
        except WebhookVerificationError as exc:
            if exc.reason == "duplicate_event":
                return JSONResponse({"status": "duplicate"})
            status = 400 if exc.reason == "invalid_body" else 401
            return JSONResponse({"error": exc.reason}, status_code=status)
        print(f"call from {call.from_phone_number} in room {call.room.name}")
        return JSONResponse({"status": "accepted"})
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Union

import aiohttp
from aiohttp import web

from sayna_client import (
    SaynaClient,
    SaynaError,
    SipHook,
    WebhookReceiver,
    WebhookSIPOutput,
    WebhookVerificationError,
)
from sayna_client.webhooks import receive_aiohttp

PATH = "/sayna/sip"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3001", help="Sayna server URL")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SAYNA_API_KEY"),
        help="API key (default: $SAYNA_API_KEY)",
    )
    parser.add_argument(
        "--secret",
        default=os.environ.get("SAYNA_WEBHOOK_SECRET"),
        help="hook signing secret, 16+ characters (default: $SAYNA_WEBHOOK_SECRET)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8787, help="port to listen on (0: any)")
    parser.add_argument(
        "--public-url", default=None, help=f"URL Sayna posts to (default: http://HOST:PORT{PATH})"
    )
    parser.add_argument("--sip-host", default="sip.example.com", help="SIP domain to route")
    parser.add_argument(
        "--auth-id",
        default="",
        help="tenant owning the rooms of these calls (required when the server checks API keys)",
    )
    parser.add_argument(
        "--simulate", action="store_true", help="local server only: trigger one call and exit"
    )
    return parser.parse_args()


#: What the endpoint received: a verified call, or the reason a request was rejected.
Delivery = Union[WebhookSIPOutput, WebhookVerificationError]


def make_app(receiver: WebhookReceiver, deliveries: asyncio.Queue[Delivery]) -> web.Application:
    async def sip_webhook(request: web.Request) -> web.Response:
        try:
            # Reads the raw body: the signature covers the exact bytes Sayna sent.
            call = await receive_aiohttp(receiver, request)
        except WebhookVerificationError as exc:
            if exc.reason == "duplicate_event":  # a redelivery we already accepted
                return web.json_response({"status": "duplicate"})
            status = 400 if exc.reason == "invalid_body" else 401
            print(f"rejected with {status}: {exc.reason}", flush=True)
            deliveries.put_nowait(exc)
            return web.json_response({"error": exc.reason, "message": str(exc)}, status=status)
        print(
            f"SIP call from {call.from_phone_number} to {call.to_phone_number} "
            f"via {call.sip_host}: participant {call.participant.identity} "
            f"in room {call.room.name}, headers {call.sip_headers}",
            flush=True,
        )
        deliveries.put_nowait(call)  # handle it elsewhere; answer Sayna now
        return web.json_response({"status": "accepted"})

    app = web.Application()
    app.router.add_post(PATH, sip_webhook)
    return app


async def simulate_call(args: argparse.Namespace) -> None:
    """Local server only: a SIP caller joins a room, so the server sends the webhook."""
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    body = {
        "identity": "sip-caller-1",
        "from_phone_number": "+15551230000",
        "to_phone_number": "+15559990000",
        "sip_host": args.sip_host,
        "headers": {"X-Customer-Id": "42"},
    }
    async with aiohttp.ClientSession(headers=headers, raise_for_status=True) as http:
        await http.post(f"{args.url.rstrip('/')}/_local/rooms/sip-call-1/sip", json=body)


async def send_forged_request(hook_url: str) -> int:
    """Anyone can POST to the hook URL; without the secret the signature cannot match."""
    now = str(int(time.time()))
    headers = {
        "X-Sayna-Signature": "v1=" + "0" * 64,
        "X-Sayna-Timestamp": now,
        "X-Sayna-Event-Id": "forged-1",
    }
    forged = b'{"participant": {"identity": "attacker"}}'
    async with (
        aiohttp.ClientSession() as http,
        http.post(hook_url, data=forged, headers=headers) as r,
    ):
        return r.status


async def serve(args: argparse.Namespace, deliveries: asyncio.Queue[Delivery], url: str) -> None:
    if args.simulate:
        await simulate_call(args)
        try:
            delivery = await asyncio.wait_for(deliveries.get(), 10)
        except asyncio.TimeoutError:
            delivery = None
        if not isinstance(delivery, WebhookSIPOutput):
            raise SystemExit(
                "no valid webhook arrived: start the server with --hook-secret equal to "
                "this app's --secret / $SAYNA_WEBHOOK_SECRET"
            )
        status = await send_forged_request(url)
        print(f"forged request answered {status}", flush=True)
        return
    print("waiting for calls; press Ctrl-C to stop", flush=True)
    while True:
        delivery = await deliveries.get()
        if isinstance(delivery, WebhookSIPOutput):
            # Route the call here, e.g. a SaynaClient session with
            # LiveKitConfig(room_name=delivery.room.name) to talk to the caller.
            print(f"(would answer the call in room {delivery.room.name})", flush=True)


async def main(args: argparse.Namespace) -> None:
    # Raises SaynaValidationError when the secret is missing or shorter than 16 chars.
    receiver = WebhookReceiver(args.secret, dedupe=True)
    deliveries: asyncio.Queue[Delivery] = asyncio.Queue()
    runner = web.AppRunner(make_app(receiver, deliveries))
    await runner.setup()
    try:
        await web.TCPSite(runner, args.host, args.port).start()
        port = runner.addresses[0][1]
        hook_url = args.public_url or f"http://{args.host}:{port}{PATH}"
        print(f"listening on {hook_url}", flush=True)
        async with SaynaClient(args.url, without_audio=True, api_key=args.api_key) as client:
            table = await client.set_sip_hooks(
                [SipHook(host=args.sip_host, url=hook_url, auth_id=args.auth_id)]
            )
            print("SIP hooks:", ", ".join(f"{h.host} -> {h.url}" for h in table.hooks), flush=True)
            try:
                await serve(args, deliveries, hook_url)
            finally:
                await client.delete_sip_hooks([args.sip_host])
                print(f"removed the hook for {args.sip_host}")
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except SaynaError as exc:
        sys.exit(f"error: {exc}")
    except OSError as exc:  # a file or folder that cannot be read or written
        sys.exit(f"error: {exc.filename or ''}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass
