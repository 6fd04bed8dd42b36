"""Protocol 9.1: SIP hook hosts come from ``parse_sip_domain`` exactly.

``sip:``/``sips:`` URIs keep their ``:port`` (``sip:+1555@host:5063`` matches a hook for
``host:5063``, not ``host``); the plain-host form meant for ``x-to-ip`` loses a numeric
port; upper-case schemes, missing users or domains, and unbalanced brackets give what
the real parser gives.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Optional

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from sayna_client.server import LocalServer, SipHook
from sayna_client.server.sip import parse_sip_host
from sayna_client.webhooks import WebhookReceiver, receive_aiohttp

from .conftest import run_upstream

SECRET = "fidelity-hook-secret-0123456789"

# Every row of the 9.1 results table.
TABLE: list[tuple[str, Optional[str]]] = [
    ("sip:user@host.example.com:5063", "host.example.com:5063"),
    ("sip:user@example.com:5060", "example.com:5060"),
    ("sip:user@Example.COM", "example.com"),
    ("sip:user@example.com;user=phone", "example.com"),
    ("sip:nodomain", None),
    ("sip:example.com", None),
    ("sip:example.com:5060", None),
    ("SIP:user@Example.com", None),
    ("Sip:user@example.com", None),
    ("SIP:example.com", "sip:example.com"),
    ("sips:user@secure.example.com:5061", "secure.example.com:5061"),
    ("sips:example.com", None),
    ("tel:+15551234567", None),
    ("<tel:+15551234567>", None),
    ("tel:+15551234567;phone-context=example.com", None),
    ("tel:+1.555.0100", "tel:+1.555.0100"),
    ("<sip:+15551234567@example-sip.sayna.ai:5063>", "example-sip.sayna.ai:5063"),
    ('"Alice" <sip:alice@Example.com:5060;transport=tcp>;tag=abc', "example.com:5060"),
    ("<sip:alice@example.com", None),
    ("< sip:alice@example.com>", None),
    ("sip:user@", ""),
    ("example.com:5060", "example.com"),
    ("192.168.1.100:5060", "192.168.1.100"),
    ("SIP-Server.EXAMPLE.COM:5060", "sip-server.example.com"),
    ("example.com", "example.com"),
    ("example.com:", "example.com:"),
    ("localhost:5060", None),
    ("[2001:db8::1]:5060", None),
    ("user@example.com", None),
    ("", None),
    ("   ", None),
]


@pytest.mark.parametrize(("header", "host"), TABLE)
def test_parse_sip_domain_table(header: str, host: Optional[str]) -> None:
    assert parse_sip_host(header) == host


def test_a_closing_bracket_before_the_opening_one_gives_no_host() -> None:
    # The real parser panics on this input; a compatible server need not copy that.
    assert parse_sip_host("a> <sip:b@example.com") is None


class _Receiver:
    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self.verifier = WebhookReceiver(SECRET)

    async def handle(self, request: web.Request) -> web.Response:
        event = await receive_aiohttp(self.verifier, request)
        self.events.append(event.model_dump())
        return web.Response(status=204)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[tuple[_Receiver, str]]:
    target = _Receiver()
    app = web.Application()
    app.router.add_post("/hook", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield target, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


async def test_a_hook_for_host_and_port_matches_a_to_header_with_that_port(
    receiver: tuple[_Receiver, str],
) -> None:
    target, url = receiver
    hooks = [SipHook("example-sip.sayna.ai:5063", url), SipHook("example-sip.sayna.ai", url)]
    async with LocalServer(hook_secret=SECRET, sip_hooks=hooks) as server:
        await server.inject_sip_participant(
            "sip-1",
            "caller",
            from_phone_number="+15550100",
            to_phone_number="+15550199",
            sip_host="example-sip.sayna.ai:5063",
        )
        await server.records.wait_for(lambda: target.events)
        # x-to-ip is the plain-host form: its port is dropped, so the port-less hook matches.
        await server.inject_sip_participant(
            "sip-2",
            "caller",
            from_phone_number="+15550100",
            to_phone_number="+15550199",
            sip_host="example-sip.sayna.ai:5063",
            headers={"x-to-ip": "Example-Sip.Sayna.AI:5063"},
        )
        await server.records.wait_for(lambda: len(target.events) == 2)
    assert [event["sip_host"] for event in target.events] == [
        "example-sip.sayna.ai:5063",
        "example-sip.sayna.ai",
    ]


async def test_x_to_ip_wins_even_when_it_does_not_parse(receiver: tuple[_Receiver, str]) -> None:
    _target, url = receiver
    async with LocalServer(hook_secret=SECRET, sip_hooks=[SipHook("h.example.com", url)]) as server:
        await server.inject_sip_participant(
            "sip-1",
            "caller",
            from_phone_number="+1",
            to_phone_number="+2",
            sip_host="h.example.com",
            headers={"x-to-ip": "localhost"},
        )
        assert server.records.webhooks == []


_UPSTREAM_HOOKS = """
import asyncio, json, sys
from sayna_client import SaynaClient, SipHook

async def main():
    client = SaynaClient(sys.argv[1], without_audio=True)
    response = await client.set_sip_hooks([SipHook(host=sys.argv[2], url=sys.argv[3], auth_id="")])
    print(json.dumps({"hosts": [hook.host for hook in response.hooks]}))

asyncio.run(main())
"""


async def test_upstream_sdk_registers_a_host_with_its_port(
    receiver: tuple[_Receiver, str], upstream_python: Path
) -> None:
    target, url = receiver
    async with LocalServer(hook_secret=SECRET) as server:
        result = await run_upstream(
            upstream_python, _UPSTREAM_HOOKS, server.url, "Example-SIP.sayna.ai:5063", url
        )
        assert result == {"hosts": ["example-sip.sayna.ai:5063"]}
        await server.inject_sip_participant(
            "sip-1",
            "caller",
            from_phone_number="+15550100",
            to_phone_number="+15550199",
            sip_host="example-sip.sayna.ai:5063",
        )
        await server.records.wait_for(lambda: target.events)
    assert json.loads(json.dumps(target.events[0]))["sip_host"] == "example-sip.sayna.ai:5063"


async def test_http_fixture_is_usable(http: aiohttp.ClientSession) -> None:
    assert not http.closed
