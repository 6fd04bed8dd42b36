"""How a session ends: graceful disconnect(), abort(), finish_audio(), and option checks.

Against the local server (fake engine): the seed Quick Start, run as a user runs it,
prints its audio lines; disconnect() lets speech play out and results arrive; abort()
does not wait; cancelling a graceful disconnect still releases everything.
"""

from __future__ import annotations

import asyncio
import math
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from helpers import internals
from helpers.waiting import eventually
from sayna_client import (
    ReconnectPolicy,
    RetryPolicy,
    SaynaClient,
    SaynaNotConnectedError,
    SaynaSyncClient,
    SaynaValidationError,
    Timeouts,
    Turn,
)
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import make_client, stt, tts

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
FRAME_BYTES = 640  # 20 ms of 16 kHz mono PCM


def _sayna_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("sayna") and not t.done()}


def _speech(words: int) -> list[bytes]:
    """Fake-engine speech (tone bursts, one word each) in 20 ms frames, no trailing silence."""
    pcm = render_words(["w"] * words, 16000)
    pcm = pcm[: len(pcm) - len(pcm) % FRAME_BYTES]
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]


async def test_seed_quick_start_prints_its_audio_lines() -> None:
    """The README's Quick Start (the seed's, unchanged but for the URL), as a user runs it."""
    found = re.search(r"## Quick Start\n\n```python\n(.*?)```", README, flags=re.S)
    assert found is not None
    script = found.group(1)
    assert 'await client.speak("Hello, world!")\n    await client.disconnect()' in script
    async with LocalServer(api_key="your-api-key") as server:
        runnable = script.replace("https://api.sayna.ai", server.url)
        assert runnable != script
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            runnable,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        record = server.records.last_session
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    sizes = [
        int(m.group(1))
        for m in map(re.compile(r"Received (\d+) bytes of audio").fullmatch, lines)
        if m
    ]
    assert len(sizes) == len(lines) > 0, lines
    # Every frame the server synthesized reached the callback before the close.
    assert len(sizes) == record.sent_audio_frames
    assert sum(sizes) == record.sent_audio_bytes
    assert record.close_code == 1000


async def test_graceful_disconnect_waits_for_speech_and_playback_complete(
    server: LocalServer,
) -> None:
    client = make_client(server)
    audio: list[bytes] = []
    completions: list[object] = []
    client.register_on_tts_audio(audio.append)
    client.register_on_tts_playback_complete(completions.append)
    await client.connect()
    await client.speak("one two three four five six seven eight")
    await client.disconnect()  # at once: the default is graceful
    record = server.records.last_session
    assert len(completions) == 1
    assert len(audio) == record.sent_audio_frames > 0
    assert sum(map(len, audio)) == record.sent_audio_bytes
    await server.records.wait_for(lambda: record.closed.is_set())
    assert record.close_code == 1000


async def test_graceful_disconnect_waits_for_results_of_audio_sent(server: LocalServer) -> None:
    client = make_client(server)
    finals: list[str] = []
    client.register_on_stt_result(
        lambda r: finals.append(r.transcript) if r.is_final and r.transcript else None
    )
    await client.connect()
    silence = bytes(FRAME_BYTES)
    for frame in _speech(2) + [silence] * 50:  # 1 s of silence: the recogniser ends the turn
        await client.on_audio_input(frame)
    await client.disconnect()
    assert finals == ["word word"]


async def test_abort_returns_within_the_close_timeout_with_speech_pending(
    server: LocalServer,
) -> None:
    client = make_client(server, timeouts=Timeouts(close=2.0))
    completions: list[object] = []
    client.register_on_tts_playback_complete(completions.append)
    await client.connect()
    await client.speak(" ".join(["word"] * 300))  # about a minute of speech
    started = time.monotonic()
    await client.abort()
    assert time.monotonic() - started < 2.0
    assert completions == []
    assert not client.connected
    with pytest.raises(SaynaNotConnectedError):
        await client.speak("again")


async def test_disconnect_not_graceful_is_abort(server: LocalServer) -> None:
    client = make_client(server)
    completions: list[object] = []
    client.register_on_tts_playback_complete(completions.append)
    await client.connect()
    await client.speak(" ".join(["word"] * 300))
    await client.disconnect(graceful=False)
    assert completions == []
    assert not client.connected


async def test_drain_timeout_bounds_a_graceful_disconnect(server: LocalServer) -> None:
    client = make_client(server, timeouts=Timeouts(close=2.0, drain=0.2))
    await client.connect()
    for frame in _speech(2):  # stops mid-utterance: the turn never ends by itself
        await client.on_audio_input(frame)
    await eventually(lambda: internals.turn_pending(client))
    started = time.monotonic()
    await client.disconnect()
    assert time.monotonic() - started < 2.0  # the 0.2 s drain, not the 10 s default wait
    assert not client.connected


async def test_cancelling_a_graceful_disconnect_still_releases_everything(
    server: LocalServer,
) -> None:
    client = make_client(server, timeouts=Timeouts(close=1.0, drain=None))
    blocked = asyncio.Event()
    release = asyncio.Event()

    async def slow_listener(_audio: bytes) -> None:
        blocked.set()
        await release.wait()  # never set: the graceful wait cannot finish

    client.register_on_tts_audio(slow_listener)
    await client.connect()
    await client.speak("one two")
    await asyncio.wait_for(blocked.wait(), 10)
    disconnecting = asyncio.ensure_future(client.disconnect())
    await server.records.wait_for(
        lambda: server.records.last_session.sent_of_type("tts_playback_complete")
    )
    await asyncio.sleep(0.05)  # the scenario: a while passes, the graceful wait holds
    assert not disconnecting.done()
    disconnecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await disconnecting
    record = server.records.last_session
    await server.records.wait_for(lambda: record.closed.is_set())
    await eventually(lambda: not client.connected and not internals.holds_http_session(client))
    await eventually(lambda: not _sayna_tasks())


async def test_finish_audio_yields_the_final_of_a_stream_cut_mid_utterance(
    server: LocalServer,
) -> None:
    client = make_client(server)
    results: list[Any] = []
    client.register_on_stt_result(results.append)
    await client.connect()
    for frame in _speech(3):
        await client.on_audio_input(frame)
    turn = await client.finish_audio()
    assert isinstance(turn, Turn)
    assert turn.text == "word word word"
    assert results[-1].is_speech_final
    # Nothing outstanding any more: it returns at once and sends nothing.
    frames = server.records.last_session.audio_frames
    assert await client.finish_audio() is None
    assert server.records.last_session.audio_frames == frames
    await client.drain(timeout=5)  # the turn has ended: drain() no longer waits for ever
    await client.disconnect()


async def test_finish_audio_speaks_the_sessions_encoding(server: LocalServer) -> None:
    client = SaynaClient(
        server.url,
        stt(encoding="mulaw", sample_rate=8000),
        tts(),
        timeouts=Timeouts(close=2),
    )
    await client.connect()
    await client.on_audio_input(b"\x00" * 160)  # loud mu-law: audio without a result yet
    assert await client.finish_audio(silence_ms=200) is None
    record = server.records.last_session
    silence = bytes(record.audio[160:])
    assert set(silence) == {0xFF}
    assert len(silence) % 160 == 0
    await client.abort()


async def test_finish_audio_refuses_an_encoding_it_cannot_silence(server: LocalServer) -> None:
    client = SaynaClient(server.url, stt(encoding="opus"), tts(), timeouts=Timeouts(close=2))
    await client.connect()
    with pytest.raises(SaynaValidationError, match="opus"):
        await client.finish_audio()
    await client.abort()


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("timeouts", {"connect": 5}, "Timeouts("),
        ("retry", {"max_retries": 1}, "RetryPolicy("),
        ("reconnect", {"max_attempts": 3}, "ReconnectPolicy("),
        ("heartbeat", "20", "heartbeat"),
        ("max_queue", True, "max_queue"),
    ],
)
def test_options_of_the_wrong_type_are_validation_errors(
    option: str, value: object, named: str
) -> None:
    with pytest.raises(SaynaValidationError) as info:
        SaynaClient("http://127.0.0.1:1", stt(), tts(), **{option: value})  # type: ignore[arg-type]
    assert named in str(info.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Timeouts(connect="5"),  # type: ignore[arg-type]
        lambda: Timeouts(drain=-1),
        lambda: Timeouts(connect=math.inf),  # aiohttp would fail with OverflowError
        lambda: RetryPolicy(max_retries="2"),  # type: ignore[arg-type]
        lambda: ReconnectPolicy(max_attempts=2.5),  # type: ignore[arg-type]
    ],
)
def test_settings_objects_check_their_fields(make: Callable[[], object]) -> None:
    with pytest.raises(SaynaValidationError):
        make()


@pytest.mark.parametrize("drain", [-1, -0.5, math.nan, math.inf, True, False, "1"])
async def test_disconnect_drain_argument_is_checked(connected: SaynaClient, drain: object) -> None:
    fix = r"drain must be a positive number of seconds, 0 \(close at once\) or None \(no limit\)"
    with pytest.raises(SaynaValidationError, match=fix):
        await connected.disconnect(drain=drain)  # type: ignore[arg-type]
    assert not connected.connected  # the session is closed all the same


@pytest.mark.parametrize("drain", [0, 0.0])
async def test_disconnect_drain_zero_closes_at_once_with_a_close_handshake(
    server: LocalServer, drain: float
) -> None:
    client = make_client(server, timeouts=Timeouts(close=2.0, drain=None))  # else: no limit
    completions: list[object] = []
    client.register_on_tts_playback_complete(completions.append)
    await client.connect()
    record = server.records.last_session
    await client.speak(" ".join(["word"] * 300))  # about a minute of speech
    await client.disconnect(drain=drain)
    assert completions == []  # not waited for
    assert not client.connected
    await server.records.wait_for(lambda: record.closed.is_set())
    assert record.close_code == 1000  # the Close handshake, as abort()


async def test_leaving_async_with_on_an_exception_aborts(server: LocalServer) -> None:
    completions: list[object] = []
    client = make_client(server)
    client.register_on_tts_playback_complete(completions.append)

    async def fail_mid_speech() -> None:
        async with client:
            await client.connect()
            await client.speak(" ".join(["word"] * 300))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_mid_speech()
    assert completions == []
    assert not client.connected


async def test_sync_client_finish_audio_and_abort(server: LocalServer) -> None:
    def session() -> Any:
        with SaynaSyncClient(server.url, stt(), tts(), timeouts=Timeouts(close=2)) as client:
            client.connect()
            for frame in _speech(2):
                client.on_audio_input(frame)
            turn = client.finish_audio()
            client.speak(" ".join(["word"] * 300))
            client.abort()
            assert not client.connected
            return turn

    turn = await asyncio.to_thread(session)
    assert isinstance(turn, Turn)
    assert turn.text == "word word"


@pytest.mark.parametrize(
    "finals",
    [
        # Today's fake engine: the text final, then an empty speech-final.
        [("word word", True, False), ("", True, True)],
        # The real server's provider-driven shape: the text on the speech-final itself.
        [("word word", True, True)],
    ],
)
async def test_finish_audio_waits_for_either_shape_of_speech_final(
    finals: list[tuple[str, bool, bool]],
) -> None:
    from sayna_client import STTResultMessage
    from sayna_client.realtime.conversation import SessionTracker

    tracker = SessionTracker()
    tracker.on_stt_result(
        STTResultMessage(transcript="word", is_final=False, is_speech_final=False, confidence=0.9)
    )
    ended = tracker.next_speech_final()
    for text, final, speech_final in finals:
        assert not ended.done()
        tracker.on_stt_result(
            STTResultMessage(
                transcript=text, is_final=final, is_speech_final=speech_final, confidence=0.99
            )
        )
    turn = await asyncio.wait_for(ended, 1)
    assert isinstance(turn, Turn)
    assert turn.text == "word word"
    assert not tracker.turn_pending
