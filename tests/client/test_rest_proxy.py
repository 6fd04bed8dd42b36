"""A proxy that is misconfigured or cannot be reached: ``HTTP_PROXY`` that is not a
URL, a ``proxy=`` that is not one, a proxy whose host name does not resolve or whose
port refuses. Each is a ``SaynaError`` naming the proxy and where it came from
(``HTTP_PROXY``, ``proxy=``), never a raw ``ValueError`` nor the server's URL blamed."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from sayna_client import (
    RetryPolicy,
    SaynaClient,
    SaynaConnectionError,
    SaynaError,
    SaynaValidationError,
    Timeouts,
)

ONCE = RetryPolicy(max_retries=0)
_TIMEOUTS = Timeouts(connect=10, request=10)
PROXY_PASSWORD = "PRX-SECRET-0021"


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "ws_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.delenv("REQUEST_METHOD", raising=False)


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _client(url: str = "http://127.0.0.1:9", **kwargs: object) -> SaynaClient:
    return SaynaClient(url, without_audio=True, timeouts=_TIMEOUTS, retry=ONCE, **kwargs)  # type: ignore[arg-type]


BAD_PROXIES = {
    "port-not-a-number": ("http://proxy:notaport", "http://proxy:notaport"),
    "port-out-of-range": ("http://proxy:99999", "http://proxy:99999"),
    "broken-ipv6": ("http://[bad", "http://[bad"),
    "credentials-and-broken": (f"http://user:{PROXY_PASSWORD}@[bad", "http://***@[bad"),
    "socks": ("socks5://proxy.example:1080", "socks5://proxy.example:1080"),
    "no-scheme": ("proxy.example:3128", "proxy.example:3128"),
}


@pytest.mark.parametrize("name", ["HTTP_PROXY", "http_proxy"])
@pytest.mark.parametrize("bad", sorted(BAD_PROXIES))
async def test_a_malformed_proxy_variable_is_a_validation_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, dead_port: int, name: str, bad: str
) -> None:
    """It was a raw ValueError out of every call (REST and connect()), outside the
    "every exception is a SaynaError" promise: `sayna health` printed a traceback."""
    value, shown = BAD_PROXIES[bad]
    monkeypatch.setenv(name, value)
    async with _client(f"http://127.0.0.1:{dead_port}") as client:
        for call in (client.health, client.get_voices, client.connect):
            with pytest.raises(SaynaValidationError) as info:
                await call()
            message = str(info.value)
            assert f"the environment variable {name} is not a usable proxy URL" in message
            assert f"{shown!r}; set {name} to an http:// URL" in message
            assert "or unset it" in message
            assert PROXY_PASSWORD not in message


@pytest.mark.parametrize("bad", sorted(BAD_PROXIES))
def test_a_malformed_proxy_argument_is_refused_when_the_client_is_made(bad: str) -> None:
    """proxy= was checked for its scheme only: aiohttp refused it at every call, each a
    SaynaConnectionError ("InvalidURL talking to ...") retried as if the network failed."""
    value, shown = BAD_PROXIES[bad]
    with pytest.raises(SaynaValidationError) as info:
        _client(proxy=value)
    message = str(info.value)
    if bad in ("socks", "no-scheme"):
        assert message.startswith("proxy must be an http:// URL")
    else:
        assert message.startswith("the proxy= argument is not a usable proxy URL")
        assert f"{shown!r}; pass an http:// URL such as" in message
    assert PROXY_PASSWORD not in message


def test_a_good_proxy_argument_is_taken() -> None:
    for proxy in ("http://proxy.example:3128", "http://u:p@proxy.example", "https://p.example"):
        _client(proxy=proxy)


async def test_a_proxy_host_name_not_found_names_the_proxy_not_the_url(
    monkeypatch: pytest.MonkeyPatch, dead_port: int
) -> None:
    """aiohttp reports the proxy's failed look-up as its ClientConnectorDNSError, like the
    server's: the message said "cannot reach http://127.0.0.1:P: host name not found;
    check the URL", blaming a URL that was right."""
    server = f"http://127.0.0.1:{dead_port}"
    monkeypatch.setenv("HTTP_PROXY", f"http://user:{PROXY_PASSWORD}@proxy.invalid:3128")
    async with _client(server) as client:
        with pytest.raises(SaynaConnectionError) as info:
            await client.health()
    assert str(info.value) == (
        f"GET / failed: cannot reach the proxy http://proxy.invalid:3128 (from HTTP_PROXY) "
        f"for {server}: host name not found; check HTTP_PROXY, or add the server's host to "
        "NO_PROXY to reach it directly"
    )
    async with _client(server, proxy="http://proxy.invalid:3128") as client:
        with pytest.raises(SaynaConnectionError) as info:
            await client.get_voices()
    assert str(info.value) == (
        "GET /voices failed: cannot reach the proxy http://proxy.invalid:3128 (the proxy= "
        f"argument) for {server}: host name not found; check the proxy= argument"
    )


@pytest.mark.parametrize("url", ["http://bücher.invalid:9", "http://xn--bcher-kva.invalid:9"])
async def test_an_idn_host_not_found_without_a_proxy_is_not_blamed_on_a_proxy(url: str) -> None:
    """No proxy in use, an internationalised host name that does not resolve: aiohttp
    names the host encoded (xn--...), which did not match the URL's decoded host, so the
    message said "cannot reach the proxy xn--bcher-kva.invalid:9"."""
    async with _client(url) as client:
        with pytest.raises(SaynaConnectionError) as info:
            await client.health()
        assert str(info.value) == (
            f"GET / failed: cannot reach {url}: host name not found; check the URL"
        )
        with pytest.raises(SaynaConnectionError) as info:
            await client.connect()
        assert "proxy" not in str(info.value)
        assert "host name not found" in str(info.value)


async def test_a_proxy_that_refuses_is_named_with_its_source(
    monkeypatch: pytest.MonkeyPatch, dead_port: int
) -> None:
    proxy = f"http://127.0.0.1:{dead_port}"
    monkeypatch.setenv("http_proxy", proxy)
    async with _client("http://sayna.example.com") as client:
        with pytest.raises(SaynaConnectionError) as info:
            await client.health()
        assert str(info.value) == (
            f"GET / failed: cannot reach the proxy {proxy} (from http_proxy) for "
            "http://sayna.example.com: connection refused; check http_proxy, or add the "
            "server's host to NO_PROXY to reach it directly"
        )
        with pytest.raises(SaynaError) as ws_info:
            await client.connect()  # the WebSocket takes the same route
        # (Its message says which proxy, not where it came from: the upgrade's errors
        # are worded in realtime/handshake.py, which is not told.)
        assert f"cannot reach the proxy {proxy} for" in str(ws_info.value)
