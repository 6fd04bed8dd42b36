"""``SaynaSyncClient`` left to garbage collection or interpreter exit: ``ResourceWarning``
for what it still holds open, none for a loop thread alone (a call after ``close()``
starts one, even a call refused at once)."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import warnings
from collections.abc import Iterator

import pytest

from helpers.waiting import eventually_sync
from sayna_client import SaynaNotConnectedError, SaynaSyncClient, Timeouts
from sayna_client.server import LocalServer

from .conftest import stt, tts


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sayna-sync-loop")]


@pytest.fixture(autouse=True)
def _no_leftover_loop_threads() -> Iterator[None]:
    yield
    eventually_sync(lambda: not loop_threads(), what="the loop threads ended")


_SCRIPT = """
import sys
from sayna_client import SaynaNotConnectedError, SaynaSyncClient, STTConfig, TTSConfig
client = SaynaSyncClient(sys.argv[1], STTConfig(provider="deepgram"),
                         TTSConfig(provider="elevenlabs", voice_id="v"))
if sys.argv[2] == "refused after close":
    client.connect()
    client.close()
    try:
        client.speak("too late")  # starts a new loop thread, opens nothing
    except SaynaNotConnectedError:
        print("refused", flush=True)
else:  # REST calls, never closed: the HTTP connections stay open
    assert client.health().status == "OK"
    print("rest", flush=True)
"""


async def _run(url: str, mode: str) -> tuple[bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "always::ResourceWarning",
        "-c",
        _SCRIPT,
        url,
        mode,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    return out, err


async def test_a_call_refused_after_close_leaves_nothing_to_warn_about_at_exit(
    server: LocalServer,
) -> None:
    out, err = await _run(server.url, "refused after close")
    assert b"refused" in out
    assert b"ResourceWarning" not in err, err.decode()


async def test_a_client_with_open_http_connections_still_warns_at_exit(
    server: LocalServer,
) -> None:
    out, err = await _run(server.url, "rest")
    assert b"rest" in out
    assert b"ResourceWarning: unclosed" in err


def _refused(client: SaynaSyncClient) -> bool:
    """``speak()`` refused; its traceback (whose frames hold ``client``) let go of."""
    try:
        client.speak("too late")
    except SaynaNotConnectedError:
        return True
    return False


async def test_a_closed_client_collected_after_a_refused_call_does_not_warn(
    server: LocalServer,
) -> None:
    def scenario() -> list[warnings.WarningMessage]:
        clients = [
            SaynaSyncClient(
                server.url, stt(), tts(sample_rate=16000), timeouts=Timeouts(connect=5, ready=10)
            )
        ]
        clients[0].connect()
        clients[0].close()
        assert _refused(clients[0])
        thread = loop_threads()[0]  # started by the refused call
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clients.clear()
            gc.collect()  # (the refused call's error and its frames form a cycle)
        thread.join(10)
        assert not thread.is_alive()
        return [w for w in caught if issubclass(w.category, ResourceWarning)]

    assert await asyncio.to_thread(scenario) == []


async def test_a_client_collected_with_its_rest_connections_open_warns(
    server: LocalServer,
) -> None:
    def scenario() -> None:
        clients = [SaynaSyncClient(server.url, without_audio=True)]
        assert clients[0].health().status == "OK"
        thread = loop_threads()[0]
        with pytest.warns(ResourceWarning, match="unclosed"):
            clients.clear()
        thread.join(10)
        assert not thread.is_alive()

    await asyncio.to_thread(scenario)
