"""``sayna demo``: what it says and hears, where it writes, and what it does without the
``local`` extra. Runs the real entry point on an embedded local server."""

from __future__ import annotations

import os
import re
import signal
import sys
import tempfile
import wave
from pathlib import Path

import pytest

from sayna_client import SaynaClient, STTConfig, TTSConfig, audio
from sayna_client._wer import word_error_rate
from sayna_client.cli import main
from sayna_client.cli.transcribe import stream_and_listen
from sayna_client.server import LocalServer

SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech"


def test_demo_writes_to_a_temporary_directory_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--engine", "fake", "--speed", "0"]) == 0
    out = capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # nothing written into the current directory
    # Captured (not a terminal): every numbered step is still printed, in order.
    steps = [int(n) for n in re.findall(r"^(\d+)\. ", out, re.MULTILINE)]
    assert steps == list(range(1, 9)), out
    written = Path(re.search(r"-> (\S+sayna-demo-speak\.wav)", out).group(1))  # type: ignore[union-attr]
    assert written.is_file()
    assert Path(tempfile.gettempdir()) in written.parents
    written.unlink()
    written.parent.rmdir()


def test_demo_without_the_local_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # as if not installed
    assert main(["demo"]) == 1
    captured = capsys.readouterr()
    assert "pip install 'sayna-client[local]'" in captured.err
    assert "pocketsphinx" in captured.err
    assert "--engine fake" in captured.err
    assert "fake engine" not in captured.out  # no silent switch to the fake engine


def _demo_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, int]:
    """One `sayna demo` run: its output and the word error rate it printed."""
    assert main(["demo", "--speed", "0", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "said    'Hello from Sayna. I would like a cup of coffee, please.'" in out
    assert (tmp_path / "sayna-demo-speak.wav").is_file()
    rate = re.search(r"word error rate: (\d+)%", out)
    assert rate is not None, out
    # Nothing heard is a bug, not bad luck: the demo waits until the server has decoded
    # everything, however loaded the machine (it used to stop listening after 5 s).
    assert "(nothing heard)" not in out, out
    heard = re.search(r"heard '([^']*)'", out)
    if heard is None or "coffee" not in heard.group(1).lower():
        return out, 100  # the key word missed: a miss like any other
    return out, int(rate.group(1))


def test_demo_prints_what_it_said_heard_and_the_word_error_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("pocketsphinx", "espeakng_loader", "soxr", "ctranslate2", "piper"):
        pytest.importorskip(name)
    # Piper samples fresh noise on every synthesis (no seed to fix; three syntheses of the
    # demo's sentence gave three clips of different lengths), so what Whisper hears
    # differs run to run. Misses measured were all "nothing heard" (fixed; see
    # benchmarks/DEMO-load.md) until 2026-12-06: then 1 run in 12 (and 2 in a row once,
    # in CI) whose final decode dropped "Hello from Sayna," that its interims had heard
    # (WER 27 %): Whisper, given the hint as the bare previous text " Sayna", took the
    # first sentence for text it had already heard (fixed: the hint is a glossary sentence;
    # tests/engines: test_a_hint_at_the_end_of_the_first_sentence_does_not_drop_it). Two
    # retries: three misses in a row is a change, not luck.
    out, rate = _demo_run(tmp_path, capsys)
    for _ in range(2):
        if rate <= 10:
            break
        out, rate = _demo_run(tmp_path, capsys)
    assert rate <= 10, out


def _speech_worker_pid() -> int:
    """The local engine's speech worker: the child of this process running speech_child."""
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:  # it ended meanwhile
                continue
            if b"speech_child" in command:
                return int(pid)
    raise AssertionError("no speech worker process found")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the worker in /proc")
async def test_the_demo_listens_until_a_stalled_recogniser_has_decoded_everything() -> None:
    """A loaded machine in the extreme: the recogniser makes no progress at all while
    the audio streams and until the listener waits for it. Listening for a clock (5 s
    after the audio, as the demo did) heard nothing; waiting for the server's word that
    it decoded the audio hears all of it, however late."""
    for name in ("ctranslate2", "onnxruntime", "soxr", "tokenizers"):
        pytest.importorskip(name)
    with wave.open(str(SPEECH / "librivox-0880.wav")) as clip:
        pcm = clip.readframes(clip.getnframes())
    expected = "he was not an ill disposed young man"
    frames = list(audio.wav_frames(audio.WavAudio(pcm, 16000, 1), frame_ms=20))
    stt = STTConfig(provider="deepgram", model="nova-2", sample_rate=16000)
    tts = TTSConfig(provider="elevenlabs")
    async with (
        LocalServer(engine="local", port=0) as server,
        SaynaClient(server.url, stt, tts) as client,
    ):
        await client.connect()
        worker = _speech_worker_pid()
        stream_id = client.received_stream_id or ""
        resumed = []

        async def transcribed(audio_bytes: int) -> int:
            os.kill(worker, signal.SIGCONT)  # only now may the recogniser go on
            resumed.append(audio_bytes)
            return await server.wait_transcribed(stream_id, audio_bytes)

        os.kill(worker, signal.SIGSTOP)
        try:
            finals = await stream_and_listen(client, frames, 20, 0.0, "x", transcribed=transcribed)
        finally:
            os.kill(worker, signal.SIGCONT)
    assert len(resumed) == 1
    assert resumed[0] > len(pcm)  # the clip and the trailing silence
    assert word_error_rate(expected, " ".join(finals)) <= 0.1, finals
