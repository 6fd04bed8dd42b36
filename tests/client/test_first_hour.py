"""What a newcomer meets in the first hour of library use: errors that say what the
server said and what to change, in the caller's terms."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import socket
import ssl
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

import aiohttp
import pytest

from sayna_client import (
    RetryPolicy,
    SaynaAuthenticationError,
    SaynaClient,
    SaynaConnectionError,
    SaynaSyncClient,
    SaynaValidationError,
)
from sayna_client.server import LocalServer

from .conftest import ThreadedServer, make_client, stt, tts

THREADED_KEY = "first-hour-key"


@pytest.fixture(scope="module")
def server_thread() -> Iterator[str]:
    """URL of a LocalServer (API key ``THREADED_KEY``) on its own thread."""
    with ThreadedServer(api_key=THREADED_KEY) as server:
        yield server.url


@pytest.mark.parametrize(
    ("key", "server_reason", "fix"),
    [
        (
            "wrong",
            "Unauthorized: Invalid API secret",
            "the server refused the API key: pass the right one as api_key= or SAYNA_API_KEY",
        ),
        (
            None,
            "Missing authentication token",
            "the server requires an API key: pass api_key= or set SAYNA_API_KEY",
        ),
    ],
)
async def test_auth_errors_give_the_servers_reason_and_the_fix(
    auth_server: LocalServer, key: Optional[str], server_reason: str, fix: str
) -> None:
    async with SaynaClient(auth_server.url, stt(), tts(), api_key=key) as client:
        with pytest.raises(SaynaAuthenticationError) as rest:
            await client.get_voices()
        with pytest.raises(SaynaAuthenticationError) as ws:
            await client.connect()
    for error in (rest.value, ws.value):
        assert server_reason in str(error)
        assert str(error).endswith(fix)
        assert error.status_code == 401
        assert isinstance(error.body, dict)
        assert server_reason in error.body["message"]
    assert ws.value.endpoint == "GET /ws"
    assert ws.value.code in ("unauthorized", "missing_auth_header")


# --- connection errors without aiohttp internals ------------------------------------------


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A loopback URL that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_unreachable_server_is_named_plainly(refusing_url: str) -> None:
    retry = RetryPolicy(max_retries=0)
    async with SaynaClient(refusing_url, stt(), tts(), retry=retry) as client:
        with pytest.raises(SaynaConnectionError) as rest:
            await client.get_voices()
        with pytest.raises(SaynaConnectionError) as ws:
            await client.connect()
    assert str(rest.value) == (
        f"GET /voices failed: cannot reach {refusing_url}: connection refused; "
        "is the server running there?"
    )
    assert str(ws.value) == (
        f"Could not open the WebSocket: cannot reach ws{refusing_url[4:]}/ws: connection "
        "refused; is the server running there?"
    )
    for error in (rest.value, ws.value):
        assert "ssl:default" not in str(error)
        assert isinstance(error.cause, aiohttp.ClientConnectorError)


async def test_tls_to_a_plain_server_names_the_cause(server: LocalServer) -> None:
    """https:// and wss:// to a plain-HTTP server: the cause and the fix, not the
    OpenSSL error class read as an OS errno ("operation not permitted")."""
    tls_url = server.url.replace("http://", "https://")
    retry = RetryPolicy(max_retries=0)
    async with SaynaClient(tls_url, stt(), tts(), retry=retry) as client:
        with pytest.raises(SaynaConnectionError) as rest:
            await client.health()
        with pytest.raises(SaynaConnectionError) as ws:
            await client.connect()
    assert str(rest.value) == (
        f"GET / failed: cannot reach {tls_url}: the server does not speak TLS on this port "
        "(a plain HTTP server?); use http:// for it, or the port where it serves TLS"
    )
    assert str(ws.value).startswith(
        f"Could not open the WebSocket: cannot reach wss{tls_url[5:]}/ws: the server does not "
        "speak TLS on this port"
    )
    assert "use ws:// for it" in str(ws.value)
    for error in (rest.value, ws.value):
        assert "not permitted" not in str(error)
        assert isinstance(error.cause, aiohttp.ClientConnectorError)


# --- no "Unclosed client session" in ordinary use --------------------------------------------

SCRIPTS = {
    "REST only, never disconnect()": """
async def main():
    client = SaynaClient(URL, without_audio=True, api_key=KEY)
    print((await client.health()).status, len(await client.get_voices()))
""",
    "REST after leaving async with": """
async def main():
    async with SaynaClient(URL, STTConfig(provider="fake"), TTSConfig(provider="fake"),
                           api_key=KEY) as client:
        await client.connect()
        await client.speak("hello", wait=True)
    print((await client.health()).status, len(await client.get_voices()))
""",
    "Quick Start whose connect() failed": """
async def main():
    client = SaynaClient(URL, STTConfig(provider="fake"), TTSConfig(provider="fake"),
                         api_key="wrong-key")
    client.register_on_stt_result(print)
    await client.health()
    await client.connect()  # raises SaynaAuthenticationError out of asyncio.run
    await client.disconnect()
""",
}


@pytest.mark.parametrize("case", sorted(SCRIPTS))
def test_no_unclosed_session_warnings(case: str, server_thread: str, tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        "import asyncio, sys\n"
        "from sayna_client import SaynaClient, STTConfig, TTSConfig\n"
        f"URL, KEY = {server_thread!r}, {THREADED_KEY!r}\n"
        + SCRIPTS[case]
        + "asyncio.run(main())\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAYNA_")}
    done = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert "Unclosed" not in done.stderr, done.stderr  # client session / connector
    assert "ResourceWarning" not in done.stderr, done.stderr
    if case.startswith("Quick Start"):
        assert done.returncode == 1
        assert "SaynaAuthenticationError" in done.stderr
    else:
        assert (done.returncode, done.stdout) == (0, "OK 3\n"), done.stderr


async def test_rest_before_during_and_after_a_voice_session(server: LocalServer) -> None:
    client = make_client(server)
    assert (await client.health()).status == "OK"
    await client.connect()
    assert (await client.health()).status == "OK"
    await client.speak("hello", wait=True)
    assert len(await client.get_voices()) == 3
    await client.disconnect()
    assert (await client.health()).status == "OK"
    await client.connect()  # a second session after REST calls
    assert client.ready
    await client.disconnect()
    assert (await client.health()).status == "OK"
    del client  # never disconnected after the last call: released quietly
    gc.collect()


# --- a shared aiohttp session -----------------------------------------------------------------


async def test_clients_share_the_users_http_session(server: LocalServer) -> None:
    started: list[str] = []

    async def on_request_start(_: Any, __: Any, params: aiohttp.TraceRequestStartParams) -> None:
        started.append(f"{params.method} {params.url.path}")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as shared:
        for _ in range(2):
            async with make_client(server, http_session=shared) as client:
                await client.health()
                await client.connect()
                await client.speak("hi", wait=True)
            assert not shared.closed  # the client never closes the user's session
        assert started == ["GET /", "GET /ws"] * 2
    async with make_client(server, http_session=shared) as client:
        with pytest.raises(SaynaConnectionError, match="http_session= is closed"):
            await client.health()
    with pytest.raises(SaynaValidationError, match="aiohttp.ClientSession"):
        make_client(server, http_session="not a session")


# --- session(): connect on entry, disconnect on exit ------------------------------------------


async def test_session_context_connects_and_disconnects(server: LocalServer) -> None:
    async with make_client(server).session() as client:
        assert client.ready
        await client.speak("hello", wait=True)
        record = server.records.last_session
    assert not client.connected
    await asyncio.wait_for(record.closed.wait(), 10)
    async with LocalServer(api_key="right") as locked:
        bad = SaynaClient(locked.url, stt(), tts(), api_key="wrong")
        with pytest.raises(SaynaAuthenticationError):
            async with bad.session():
                raise AssertionError("not reached")
        assert not bad.connected


def test_sync_session_context(server_thread: str) -> None:
    with SaynaSyncClient(server_thread, stt(), tts(), api_key=THREADED_KEY).session() as client:
        assert client.ready
        client.speak("hello", wait=True)
        assert client.health().status == "OK"
    assert not client.connected


# --- proxies ----------------------------------------------------------------------------------


class _LoopbackPeer:
    """A raw TCP server on 127.0.0.1 (``url`` once entered) whose connections are closed
    on exit; subclasses handle each connection in ``_handle``."""

    scheme = "http"
    ssl_context: Optional[ssl.SSLContext] = None

    def __init__(self) -> None:
        self.url = ""
        self._server: Optional[asyncio.AbstractServer] = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", 0, ssl=self.ssl_context
        )
        self.url = f"{self.scheme}://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()


class ForwardProxy(_LoopbackPeer):
    """An HTTP proxy on loopback. Absolute-form requests (``GET http://host/path``, the
    WebSocket upgrade included) go on to the origin; ``CONNECT host:port`` opens a tunnel.
    Then bytes are piped both ways. Plain requests are sent with ``Connection: close``,
    so each request is one connection and ``requests`` lists every one."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []

    async def __aenter__(self) -> ForwardProxy:
        await self._listen()
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        upstream: Optional[asyncio.StreamWriter] = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, _, rest = head.partition(b"\r\n")
            method, target, version = line.decode("latin-1").split(" ")
            self.requests.append(f"{method} {target}")
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                up_reader, upstream = await asyncio.open_connection(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                url = urlsplit(target)
                assert url.hostname is not None
                up_reader, upstream = await asyncio.open_connection(url.hostname, url.port)
                headers = [h for h in rest.split(b"\r\n") if h]
                if not any(h.lower().startswith(b"upgrade:") for h in headers):
                    headers = [h for h in headers if not h.lower().startswith(b"connection:")]
                    headers.append(b"Connection: close")
                path = url.path + (f"?{url.query}" if url.query else "")
                upstream.write(
                    f"{method} {path} {version}\r\n".encode() + b"\r\n".join(headers) + b"\r\n\r\n"
                )
            self._writers.add(upstream)
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for w in (writer, upstream):
                if w is not None:
                    self._writers.discard(w)
                    w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "WS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def _rest_and_voice(client: SaynaClient) -> None:
    assert (await client.health()).status == "OK"
    await client.connect()
    await client.speak("hello", wait=True)
    await client.disconnect()


async def test_proxy_argument_carries_rest_and_the_websocket(
    server: LocalServer, no_proxy_env: pytest.MonkeyPatch
) -> None:
    async with ForwardProxy() as proxy:
        await _rest_and_voice(make_client(server, proxy=proxy.url))
    assert proxy.requests == [f"GET {server.url}/", f"GET {server.url}/ws"]


async def test_proxy_from_the_environment(
    server: LocalServer, no_proxy_env: pytest.MonkeyPatch
) -> None:
    async with ForwardProxy() as proxy:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url)
        await _rest_and_voice(make_client(server))
        assert proxy.requests == [f"GET {server.url}/", f"GET {server.url}/ws"]
        no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
        await _rest_and_voice(make_client(server))
        assert len(proxy.requests) == 2  # NO_PROXY: straight to the server
        # A session of the user's own keeps its own trust_env (off by default).
        no_proxy_env.delenv("NO_PROXY")
        async with aiohttp.ClientSession() as own:
            await _rest_and_voice(make_client(server, http_session=own))
        assert len(proxy.requests) == 2


async def test_unreachable_proxy_is_named(
    server: LocalServer, refusing_url: str, no_proxy_env: pytest.MonkeyPatch
) -> None:
    retry = RetryPolicy(max_retries=0)
    async with make_client(server, proxy=refusing_url, retry=retry) as client:
        with pytest.raises(
            SaynaConnectionError,
            match=r"cannot reach the proxy http://127\.0\.0\.1:\d+ \(the proxy= argument\) for",
        ):
            await client.health()
    with pytest.raises(SaynaValidationError, match="proxy must be an http:// URL"):
        make_client(server, proxy="socks5://127.0.0.1:1080")


class TlsFront(_LoopbackPeer):
    """TLS in front of a plain local server: decrypts on 127.0.0.1 and pipes to it, so a
    client can reach it with https:// and wss:// (through a CONNECT tunnel)."""

    scheme = "https"

    def __init__(self, target_port: int, context: ssl.SSLContext) -> None:
        super().__init__()
        self.target_port = target_port
        self.ssl_context = context
        self.accepted = 0

    async def __aenter__(self) -> TlsFront:
        await self._listen()
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.update((writer, upstream))
        try:
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        finally:
            for w in (writer, upstream):
                self._writers.discard(w)
                w.close()


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) SSL contexts for a self-signed 127.0.0.1 certificate."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    return server_context, client_context


@pytest.mark.parametrize("how", ["argument", "HTTPS_PROXY"])
async def test_https_and_wss_tunnel_through_connect(
    server: LocalServer,
    no_proxy_env: pytest.MonkeyPatch,
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
    how: str,
) -> None:
    server_context, client_context = tls_contexts
    async with TlsFront(server.port, server_context) as front, ForwardProxy() as proxy:
        kwargs: dict[str, Any] = {"ssl": client_context}
        if how == "argument":
            kwargs["proxy"] = proxy.url
        else:
            no_proxy_env.setenv("HTTPS_PROXY", proxy.url)
        client = SaynaClient(front.url, stt(), tts(), **kwargs)
        await _rest_and_voice(client)
        assert not client.connected
    host = front.url[len("https://") :]
    assert proxy.requests
    assert set(proxy.requests) == {f"CONNECT {host}"}
    # Every connection that reached the TLS server came through a tunnel.
    assert front.accepted == len(proxy.requests)


@pytest.mark.parametrize("value", ["no", 0, 1, "True", b"", object()])
def test_a_bad_ssl_argument_is_refused_at_construction(value: object) -> None:
    """aiohttp would raise its own TypeError on every call instead."""
    for cls in (SaynaClient, SaynaSyncClient):
        with pytest.raises(SaynaValidationError) as info:
            cls("http://127.0.0.1:9", stt(), tts(), ssl=value)
        assert str(info.value) == (
            "ssl must be True (verify certificates, the default), False (no verification), "
            "an ssl.SSLContext (e.g. one trusting a private CA) or an aiohttp.Fingerprint; "
            f"got {type(value).__name__}"
        )


@pytest.mark.parametrize("value", [None, True, False, "context"])
async def test_every_accepted_ssl_argument_works(server: LocalServer, value: object) -> None:
    """``None`` is the default (aiohttp deprecates its own ``ssl=None``)."""
    if value == "context":
        value = ssl.create_default_context()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        async with make_client(server, ssl=value) as client:
            assert (await client.health()).status == "OK"
            await client.connect()
