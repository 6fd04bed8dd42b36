"""How requests reach the server: the environment's proxy and ``.netrc`` credentials,
looked up once per client (not in two worker threads on every request, as aiohttp's
``trust_env`` would), for REST calls and the WebSocket upgrade alike."""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import os
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import aiohttp
import pytest
from aiohttp import web

from sayna_client import SaynaAuthenticationError, SaynaClient, SaynaError, Timeouts
from sayna_client._http_netrc import netrc_entries
from sayna_client.server import LocalServer

from .conftest import make_client, serving, stt, tts
from .test_first_hour import ForwardProxy

_TIMEOUTS = Timeouts(connect=5, ready=10, request=10, close=2)


def _recording_app(seen: list[tuple[str, str]]) -> web.Application:
    """A server that records each request's path and ``Authorization`` header: ``GET /``
    answers as a healthy Sayna server, the WebSocket upgrade is refused with 401."""

    async def health(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Authorization", "")))
        return web.json_response({"status": "OK"})

    async def ws(request: web.Request) -> web.Response:
        seen.append((request.path, request.headers.get("Authorization", "")))
        return web.json_response({"error": "unauthorized", "message": "no"}, status=401)

    app = web.Application()
    app.router.add_get("/", health)
    app.router.add_get("/ws", ws)
    return app


@pytest.fixture
def netrc_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``.netrc`` (``NETRC``) with credentials for 127.0.0.1; the expected header."""
    path = tmp_path / "netrc"
    path.write_text("machine 127.0.0.1 login alice password s3cret\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    return "Basic " + base64.b64encode(b"alice:s3cret").decode()


async def test_netrc_credentials_are_sent_when_the_client_has_no_key(netrc_file: str) -> None:
    seen: list[tuple[str, str]] = []
    async with (
        serving(_recording_app(seen)) as url,
        SaynaClient(url, stt(), tts(), timeouts=_TIMEOUTS) as client,
    ):
        assert (await client.health()).status == "OK"
        assert (await client.health()).status == "OK"
        with pytest.raises(SaynaAuthenticationError):
            await client.connect()
    # (the refused upgrade may be tried again to read the error's body)
    assert [path for path, _ in seen[:3]] == ["/", "/", "/ws"]
    assert {header for _, header in seen} == {netrc_file}


async def test_an_api_key_wins_over_netrc(netrc_file: str) -> None:
    # aiohttp's own trust_env refused to send an Authorization header when .netrc
    # held credentials for the host ("Cannot combine AUTHORIZATION header ...").
    seen: list[tuple[str, str]] = []
    async with (
        serving(_recording_app(seen)) as url,
        SaynaClient(url, stt(), tts(), api_key="k1", timeouts=_TIMEOUTS) as client,
    ):
        assert (await client.health()).status == "OK"
        with pytest.raises(SaynaAuthenticationError):
            await client.connect()
    assert [path for path, _ in seen[:2]] == ["/", "/ws"]
    assert {header for _, header in seen} == {"Bearer k1"}


async def test_a_users_session_without_trust_env_gets_no_netrc_credentials(
    netrc_file: str,
) -> None:
    seen: list[tuple[str, str]] = []
    async with serving(_recording_app(seen)) as url, aiohttp.ClientSession() as own:
        client = SaynaClient(url, stt(), tts(), http_session=own)
        assert (await client.health()).status == "OK"
        await client.aclose()
    assert seen == [("/", "")]


async def test_a_users_session_with_trust_env_sends_netrc_credentials_once(
    netrc_file: str,
) -> None:
    # aiohttp reads .netrc for such a session itself; a second Authorization header
    # from the client made aiohttp 3.14 refuse every request ("Cannot combine ...").
    seen: list[tuple[str, str]] = []
    async with (
        serving(_recording_app(seen)) as url,
        aiohttp.ClientSession(trust_env=True) as own,
    ):
        client = SaynaClient(url, stt(), tts(), http_session=own, timeouts=_TIMEOUTS)
        assert (await client.health()).status == "OK"
        with pytest.raises(SaynaAuthenticationError):
            await client.connect()
        await client.aclose()
    assert [path for path, _ in seen[:2]] == ["/", "/ws"]
    assert {header for _, header in seen} == {netrc_file}


async def test_the_environment_is_read_at_a_clients_first_request(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        async with make_client(server) as client:
            await client.health()
            monkeypatch.delenv("HTTP_PROXY")
            await client.health()  # the same client keeps the route it looked up
            await client.connect()  # the WebSocket upgrade takes that route too
            await client.disconnect()
        assert proxy.requests == [f"GET {server.url}/"] * 2 + [f"GET {server.url}/ws"]
        async with make_client(server) as fresh:
            await fresh.health()  # a new client reads the environment again
        assert len(proxy.requests) == 3


async def test_a_401_on_netrc_credentials_says_no_key_was_given(netrc_file: str) -> None:
    """The upgrade said "the server refused the API key: pass the right one" when no key
    was given: it saw the .netrc ``Authorization`` header as the key."""
    server = LocalServer(api_key="k")
    await server.start()
    try:
        async with SaynaClient(server.url, stt(), tts(), timeouts=_TIMEOUTS) as client:
            for call in (client.get_voices, client.connect):
                with pytest.raises(SaynaAuthenticationError) as info:
                    await call()
                text = str(info.value)
                assert "refused the API key" not in text
                assert "requires an API key" in text
                assert ".netrc credentials" in text
                assert "pass api_key=" in text
                assert "s3cret" not in text
    finally:
        await server.stop()


async def test_a_key_beside_netrc_on_a_trust_env_session_names_the_clash(
    netrc_file: str,
) -> None:
    """aiohttp 3.14 refuses to send the key beside .netrc credentials ("Cannot combine
    AUTHORIZATION header ..."), aiohttp 3.9 sends the .netrc ones in its place (401):
    either way the error names the cause and the fix."""
    server = LocalServer(api_key="sk-own-key")
    await server.start()
    try:
        async with aiohttp.ClientSession(trust_env=True) as own:
            client = SaynaClient(
                server.url, stt(), tts(), api_key="sk-own-key", http_session=own, timeouts=_TIMEOUTS
            )
            # get_voices, not health(): the server asks no key for health (on aiohttp 3.9
            # the .netrc credentials would get through there).
            for call in (client.get_voices, client.connect):
                with pytest.raises(SaynaError) as info:
                    await call()
                text = str(info.value)
                assert "trust_env=False" in text
                assert ".netrc entry" in text
                assert "s3cret" not in text
                assert "sk-own-key" not in text
            await client.aclose()
    finally:
        await server.stop()


async def test_an_unreadable_netrc_is_logged_once_per_client(
    server: LocalServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiohttp's proxy lookup read ``.netrc`` and the host lookup read it again: a
    ``NETRC`` naming a missing file logged "Could not read .netrc file" twice."""
    monkeypatch.setenv("NETRC", str(tmp_path / "missing" / "netrc"))
    with caplog.at_level(logging.WARNING):
        async with make_client(server) as client:
            await client.health()
            await client.health()
    unreadable = [r for r in caplog.records if "Could not read .netrc" in r.getMessage()]
    assert len(unreadable) == 1


class _CountingExecutor(ThreadPoolExecutor):
    """A real thread pool that notes the name of each function it is given."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.names: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.names.append(getattr(fn, "__name__", repr(fn)))
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def executor() -> Any:
    """A counting pool for the test to make its loop's default executor."""
    pool = _CountingExecutor()
    yield pool
    pool.shutdown(wait=True)


async def test_concurrent_first_calls_and_the_loops_clients_share_one_netrc_read(
    netrc_file: str, executor: _CountingExecutor
) -> None:
    """50 concurrent first calls of a client wait for one read of ``.netrc`` (each used
    to look it up in a worker thread of its own), and the next client of the loop reuses
    it while the file is unchanged."""
    asyncio.get_running_loop().set_default_executor(executor)
    seen: list[tuple[str, str]] = []
    async with serving(_recording_app(seen)) as url:
        async with SaynaClient(url, stt(), tts(), timeouts=_TIMEOUTS) as client:
            answers = await asyncio.gather(*(client.health() for _ in range(50)))
        async with SaynaClient(url, stt(), tts(), timeouts=_TIMEOUTS) as again:
            await again.health()
    assert {a.status for a in answers} == {"OK"}
    assert len(seen) == 51
    assert {header for _, header in seen} == {netrc_file}
    assert executor.names.count("_read_netrc") == 1


async def test_a_changed_netrc_is_read_again(netrc_file: str, tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    async with serving(_recording_app(seen)) as url:
        async with SaynaClient(url, stt(), tts(), timeouts=_TIMEOUTS) as client:
            await client.health()
        (tmp_path / "netrc").write_text("machine 127.0.0.1 login bob password n3w-s3cret\n")
        async with SaynaClient(url, stt(), tts(), timeouts=_TIMEOUTS) as client:
            await client.health()
    changed = "Basic " + base64.b64encode(b"bob:n3w-s3cret").decode()
    assert [header for _, header in seen] == [netrc_file, changed]


async def test_no_netrc_and_no_proxy_need_no_worker_thread(
    server: LocalServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    executor: _CountingExecutor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without a ``.netrc`` file and proxy variables there is nothing to read: the route
    is looked up on the loop, and nothing is logged (as aiohttp logs nothing then)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "NETRC"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    asyncio.get_running_loop().set_default_executor(executor)
    with caplog.at_level(logging.DEBUG, logger="aiohttp"):
        async with make_client(server) as client:
            await client.health()
            await client.connect()
            await client.disconnect()
    assert executor.names == []
    assert not [r for r in caplog.records if "netrc" in r.getMessage()]


def _read_in_a_loop_of_its_own(names: list[str]) -> weakref.ref[Any]:
    """``netrc_entries()`` in a fresh ``asyncio.run`` loop (which shuts its executor
    down: a counting pool of its own, whose names are added to ``names``); a reference to
    that loop."""
    pool = _CountingExecutor()

    async def read() -> weakref.ref[Any]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(pool)
        assert await netrc_entries() is not None
        return weakref.ref(loop)

    try:
        return asyncio.run(read())
    finally:
        names += pool.names


def test_loops_that_read_netrc_are_freed_and_share_the_read(netrc_file: str) -> None:
    """The read was kept per loop as a future, which holds its loop: every
    ``asyncio.run`` and sync client's loop stayed in memory for the process's life."""
    names: list[str] = []
    loops = [_read_in_a_loop_of_its_own(names) for _ in range(3)]
    gc.collect()
    assert [loop() for loop in loops] == [None, None, None]
    assert names.count("_read_netrc") == 1  # what the first read found is kept


def test_a_netrc_whose_mode_changed_is_read_again(netrc_file: str, tmp_path: Path) -> None:
    """A ``chmod`` changes neither size, modification time nor inode: kept reads went on
    serving a file made unreadable."""
    names: list[str] = []
    _read_in_a_loop_of_its_own(names)
    (tmp_path / "netrc").chmod(0o400)
    _read_in_a_loop_of_its_own(names)
    assert names.count("_read_netrc") == 2


def test_a_loop_closed_while_its_netrc_read_runs_is_freed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read still running when its loop closed (a sync client's close gives the
    executor 5 s) kept that loop alive for good. The ``.netrc`` is a FIFO here: its read
    blocks until the test writes it."""
    fifo = tmp_path / "netrc"
    os.mkfifo(fifo)
    monkeypatch.setenv("NETRC", str(fifo))
    pool = _CountingExecutor()
    loop = asyncio.new_event_loop()
    loop.set_default_executor(pool)

    async def start_and_give_up() -> None:
        reading = asyncio.ensure_future(netrc_entries())
        await asyncio.sleep(0)  # the read is submitted
        reading.cancel()

    loop.run_until_complete(start_and_give_up())
    freed = weakref.ref(loop)
    loop.close()  # the read still blocks in its worker thread
    del loop
    with open(fifo, "w") as writer:  # lets the read end
        writer.write("machine 127.0.0.1 login alice password s3cret\n")
    pool.shutdown(wait=True)
    gc.collect()
    assert freed() is None
    assert pool.names == ["_read_netrc"]
