"""A server listening on an IPv6 address names itself with the address in brackets
(``http://[::1]:PORT``), the URL form ``--url`` and every client accept. It printed
``http://::1:PORT``, which ``--url`` refuses."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from helpers.serve import sayna_serve
from sayna_client import SaynaClient
from sayna_client.server import LocalServer


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")


async def test_local_server_urls_bracket_an_ipv6_host() -> None:
    async with LocalServer(host="::1", port=0) as server:
        assert server.url == f"http://[::1]:{server.port}"
        assert server.ws_url == f"ws://[::1]:{server.port}/ws"
        async with SaynaClient(server.url, without_audio=True) as client:
            assert (await client.health()).status == "OK"


async def test_sayna_serve_prints_a_url_that_works(http: aiohttp.ClientSession) -> None:
    async with sayna_serve("--host", "::1", module="sayna_client") as served:
        assert served.url.startswith("http://[::1]:")
        assert f"(WebSocket ws://[::1]:{served.url.rsplit(':', 1)[1]}/ws)" in served.banner
        async with http.get(served.url + "/") as response:
            assert response.status == 200
