"""The ``sayna_server`` fixture where its loop would not run during the test.

It served nothing in a plain (sync) test, or when tests ran on a wider loop scope than
the fixtures (``asyncio_default_test_loop_scope = "module"``): the server lived on a
loop not running during the test, and a client failed only after its timeouts (a sync
``health()`` hung for minutes: request timeout x retries) with "check the URL and that
the server is reachable". A plain test now gets a server on a thread of its own; a
client of a local server whose loop is not running fails at once, saying why."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import sayna_client
from sayna_client import SaynaClient, SaynaEventLoopError, SaynaSyncClient, Timeouts
from sayna_client.server import LocalServer

from .conftest import stt, tts

pytest_plugins = ["pytester"]

SHORT = Timeouts(connect=3, ready=3, request=3, close=2)
NOT_RUNNING = "its event loop is not running"


@pytest.fixture
def idle_loop_server() -> Iterator[LocalServer]:
    """A local server started on a loop that then stops running (as a pytest-asyncio
    fixture's loop does while a test runs on another)."""
    loop = asyncio.new_event_loop()
    server = LocalServer()
    loop.run_until_complete(server.start())
    try:
        yield server
    finally:
        loop.run_until_complete(server.stop())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def test_clients_of_a_server_whose_loop_is_not_running_fail_at_once(
    idle_loop_server: LocalServer,
) -> None:
    url = idle_loop_server.url

    async def use() -> list[str]:
        refused = []
        async with SaynaClient(url, stt(), tts(sample_rate=16000), timeouts=SHORT) as client:
            for call in (client.connect, client.health):
                with pytest.raises(SaynaEventLoopError, match=NOT_RUNNING) as info:
                    await call()
                refused.append(str(info.value))
        return refused

    loop = asyncio.new_event_loop()  # the client's, running; the server's is not
    try:
        refused = loop.run_until_complete(use())
    finally:
        loop.close()
    assert refused[0].startswith(f"the local Sayna server at ws://127.0.0.1:{url.rsplit(':')[-1]}")
    assert refused[1].startswith(f"the local Sayna server at {url}")
    for message in refused:
        assert "asyncio_default_fixture_loop_scope" in message
        assert "asyncio.to_thread" in message
    with SaynaSyncClient(url, stt(), tts(sample_rate=16000), timeouts=SHORT) as client:
        with pytest.raises(SaynaEventLoopError, match=NOT_RUNNING):
            client.health()
        with pytest.raises(SaynaEventLoopError, match=NOT_RUNNING):
            client.connect()


async def test_a_server_on_the_running_loop_is_served(server: LocalServer) -> None:
    async with SaynaClient(server.url, stt(), tts(sample_rate=16000), timeouts=SHORT) as client:
        assert (await client.health()).status
        await client.connect()


PLAIN_TESTS = """
import threading

from sayna_client import SaynaSyncClient, STTConfig, TTSConfig, Timeouts


def test_a_plain_test_talks_to_the_fixture(sayna_server):
    timeouts = Timeouts(connect=3, ready=3, request=3, close=2)
    stt, tts = STTConfig(provider="deepgram"), TTSConfig(provider="deepgram", sample_rate=16000)
    with SaynaSyncClient(sayna_server.url, stt, tts, timeouts=timeouts) as client:
        assert client.health().status
        client.connect()
        assert client.speak("hello there", wait=True, timeout=30).text_heard == "hello there"
    assert sayna_server.records.last_session.sent_of_type("tts_playback_complete")


def test_zz_the_servers_thread_is_gone():
    assert [t.name for t in threading.enumerate() if t.name.startswith("sayna")] == []
"""

ASYNC_TEST = """
import pytest

from sayna_client import SaynaClient, SaynaEventLoopError, STTConfig, TTSConfig, Timeouts


def client(url):
    timeouts = Timeouts(connect=3, ready=3, request=3, close=2)
    stt, tts = STTConfig(provider="deepgram"), TTSConfig(provider="deepgram", sample_rate=16000)
    return SaynaClient(url, stt, tts, timeouts=timeouts)


async def test_an_async_test(sayna_server):
    async with client(sayna_server.url) as c:
        if EXPECTED == "refused":
            with pytest.raises(SaynaEventLoopError, match="asyncio_default_test_loop_scope"):
                await c.connect()
            with pytest.raises(SaynaEventLoopError, match="its event loop is not running"):
                await c.health()
        else:
            assert (await c.health()).status
            await c.connect()
            await c.speak("hello", wait=True)
"""


def _run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *options: str
) -> pytest.RunResult:
    """The suite made in ``pytester``, run by pytest in a subprocess on this
    ``sayna_client`` (its folder first on ``PYTHONPATH``) with these ini ``options``."""
    src = str(Path(sayna_client.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (src, os.getenv("PYTHONPATH")))))
    pytester.makeconftest('pytest_plugins = ["sayna_client.testing"]\n')
    args = ["-p", "asyncio", "-p", "no:randomly", "-o", "asyncio_mode=auto"]
    for option in options:
        args += ["-o", option]
    return pytester.runpytest_subprocess(*args, timeout=300)


def test_a_plain_test_gets_a_server_on_a_thread_of_its_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = _run(pytester, monkeypatch, "asyncio_default_fixture_loop_scope=function")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("fixture_scope", "expected"), [("function", "refused"), ("module", "served")]
)
def test_an_async_test_on_a_wider_loop_scope(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fixture_scope: str, expected: str
) -> None:
    pytester.makepyfile(test_scope=f"EXPECTED = {expected!r}\n" + ASYNC_TEST)
    result = _run(
        pytester,
        monkeypatch,
        "asyncio_default_test_loop_scope=module",
        f"asyncio_default_fixture_loop_scope={fixture_scope}",
    )
    result.assert_outcomes(passed=1)


def test_the_fixture_imported_in_a_conftest_serves_an_async_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``from sayna_client.testing import sayna_server`` in a conftest (not the plugin):
    an async test failed with "fixture '_sayna_server_on_a_loop' not found"."""
    src = str(Path(sayna_client.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (src, os.getenv("PYTHONPATH")))))
    pytester.makeconftest("from sayna_client.testing import sayna_server  # noqa: F401\n")
    pytester.makepyfile(
        test_imported="""
        from sayna_client import SaynaClient, STTConfig, TTSConfig

        async def test_async(sayna_server):
            stt = STTConfig(provider="deepgram", model="nova-2", sample_rate=16000)
            tts = TTSConfig(provider="deepgram", voice_id="aura-asteria-en")
            async with SaynaClient(sayna_server.url, stt, tts) as c:
                assert (await c.health()).status == "OK"
                await c.connect()
                await c.speak("hello", wait=True)

        def test_plain(sayna_server):
            assert sayna_server.url
        """
    )
    args = ["-p", "asyncio", "-p", "no:randomly", "-o", "asyncio_mode=auto"]
    result = pytester.runpytest_subprocess(*args, timeout=300)
    result.assert_outcomes(passed=2)


def test_without_pytest_asyncio_the_plugin_names_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-asyncio disabled: one warning naming it at start, not only pytest's
    generic "async def functions are not natively supported"."""
    src = str(Path(sayna_client.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (src, os.getenv("PYTHONPATH")))))
    pytester.makeconftest('pytest_plugins = ["sayna_client.testing"]\n')
    pytester.makepyfile(
        """
        async def test_bot(sayna_server):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:asyncio", timeout=300)
    result.stdout.fnmatch_lines(["*pip install pytest-asyncio*"])
