"""Engine registry and the fake engine's contract, without a socket."""

from __future__ import annotations

import sys
from array import array

import pytest

from sayna_client.server import LocalServer
from sayna_client.server.engines import LOCAL_EXTRA_HINT, EngineUnavailable, get_engine
from sayna_client.server.engines.base import STTParams, TTSRequest
from sayna_client.server.engines.fake import SPEECH_PEAK, FakeEngine, _is_speech, render_words


async def _synth(engine: FakeEngine, **kwargs: object) -> list[bytes]:
    return [chunk async for chunk in engine.synthesize(TTSRequest(**kwargs))]  # type: ignore[arg-type]


async def test_fake_tts_is_deterministic_and_chunked() -> None:
    engine = FakeEngine()
    first = await _synth(engine, text="hello big world", sample_rate=24000)
    second = await _synth(engine, text="hello big world", sample_rate=24000)
    assert first == second
    assert b"".join(first) == render_words(["a"] * 3, 24000)
    assert {len(c) for c in first[:-1]} == {960}
    assert len(b"".join(first)) == 3 * int(24000 * 0.18) * 2
    assert await _synth(engine, text="   ") == []


def test_fake_stt_speech_test_matches_the_peak_rule_for_every_sample_value() -> None:
    # The quiet-high-byte shortcut must agree with |sample| > SPEECH_PEAK exactly.
    for value in range(-32768, 32768):
        frame = bytearray(array("h", [3, -3, value, 0]).tobytes())
        assert _is_speech(frame, 0, len(frame)) is (abs(value) > SPEECH_PEAK), value
        assert _is_speech(frame, 4, 6) is (abs(value) > SPEECH_PEAK), value
    assert not _is_speech(bytearray(320), 0, 320)


async def test_fake_stt_counts_bursts_in_audio_time() -> None:
    engine = FakeEngine()
    stream = engine.open_stt(STTParams(sample_rate=16000))
    speech = render_words(["a"] * 5, 16000)
    results = await stream.feed(speech)
    assert all(not r.is_final for r in results)
    assert [len(r.transcript.split()) for r in results] == sorted(
        len(r.transcript.split()) for r in results
    )
    results = await stream.feed(bytes(2 * 16000 * 3 // 10))  # +300 ms
    # The utterance ends as real providers end it: one final that is speech-final and
    # carries the text (protocol 6.8); no empty speech-final follows.
    assert [(r.transcript, r.is_final, r.is_speech_final, r.confidence) for r in results] == [
        ("word word word word word", True, True, 0.99)
    ]
    assert await stream.feed(bytes(2 * 16000 * 2)) == []
    assert await stream.finish() == []


async def test_fake_stt_results_do_not_depend_on_how_audio_is_chunked() -> None:
    # Quiet stretches are tested in one go, loud ones window by window: the results
    # must be those of feeding one 10 ms window at a time, whatever the chunk size.
    pcm = bytes(3200) + render_words(["a"] * 4, 16000) + bytes(16000 * 2) + b"\x01\x00" * 99
    window = 320

    async def feed_in(chunk: int) -> list[tuple[str, bool, bool]]:
        stream = FakeEngine().open_stt(STTParams(sample_rate=16000))
        results = []
        for start in range(0, len(pcm), chunk):
            results += await stream.feed(pcm[start : start + chunk])
        results += await stream.finish()
        return [(r.transcript, r.is_final, r.is_speech_final) for r in results]

    expected = await feed_in(window)
    assert ("word word word word", True, True) in expected
    for chunk in (2, 318, 640, 1000, 6400, len(pcm)):
        assert await feed_in(chunk) == expected, chunk


async def test_fake_stt_finish_flushes_a_pending_segment() -> None:
    stream = FakeEngine().open_stt(STTParams(sample_rate=8000))
    await stream.feed(render_words(["a", "b"], 8000))
    (final,) = await stream.finish()
    assert (final.transcript, final.is_final, final.is_speech_final) == ("word word", True, True)


def test_voice_aliases() -> None:
    assert set(FakeEngine(("deepgram",)).voices()) == {"fake", "deepgram"}


def test_registry() -> None:
    assert get_engine("fake").name == "fake"
    with pytest.raises(EngineUnavailable):
        get_engine("nope")
    with pytest.raises(ValueError, match="engine must be one of"):
        LocalServer(engine="nope")


async def test_missing_local_extra_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate the extra being absent: the import of the local engine module fails.
    monkeypatch.setitem(sys.modules, "sayna_client.server.engines.local", None)
    with pytest.raises(EngineUnavailable, match="pip install 'sayna-client\\[local\\]'"):
        get_engine("local")
    server = LocalServer(engine="local")
    with pytest.raises(EngineUnavailable):
        await server.start()
    assert LOCAL_EXTRA_HINT.startswith("the local engine needs")


async def test_local_provider_without_extra_is_a_fatal_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aiohttp

    from helpers.wire import STT, config, recv_json, send

    monkeypatch.setitem(sys.modules, "sayna_client.server.engines.local", None)
    async with LocalServer() as server, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.ws_url)
        await send(ws, config(stt_config={**STT, "provider": "local"}))
        assert await recv_json(ws) == {
            "type": "error",
            "message": f"Failed to create voice manager: {LOCAL_EXTRA_HINT}",
        }
        await ws.close()
