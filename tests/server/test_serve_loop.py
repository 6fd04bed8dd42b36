"""``sayna serve --loop``: the local server on asyncio's event loop (the default) or on
uvloop's (the ``uvloop`` extra), and a clear message naming the extra when it is missing.

Real parts only: ``sayna serve`` in a subprocess, a ``SaynaClient`` over loopback, the
server's own counters (``/_local/bench/sessions``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from helpers.serve import sayna_serve
from sayna_client import SaynaClient, STTConfig, TTSConfig
from sayna_client.server.cli import LOOP_NAMES, loop_runner
from sayna_client.server.engines.fake import render_words

FRAME = 640  # 20 ms of 16 kHz mono linear16


async def _whole_session(url: str, stream_id: str) -> None:
    """Audio up until the fake recogniser's speech-final, a reply spoken and played out,
    a clean close; then the server's counts must equal the client's."""
    client = SaynaClient(
        url,
        STTConfig(provider="deepgram", sample_rate=16000),
        TTSConfig(provider="elevenlabs", voice_id="fake-alpha"),
        stream_id=stream_id,
    )
    finals: list[str] = []
    heard = asyncio.Event()
    audio: list[bytes] = []

    def on_result(result: object) -> None:
        if getattr(result, "is_speech_final", False):
            finals.append(getattr(result, "transcript", ""))
            heard.set()

    client.register_on_stt_result(on_result)
    client.register_on_tts_audio(audio.append)
    # Two words in tone bursts, then silence: the fake recogniser ends the utterance
    # after 300 ms of it.
    caller = render_words(["x", "x"], 16000) + bytes(16000)
    async with client.session():
        for start in range(0, len(caller), FRAME):
            await client.on_audio_input(caller[start : start + FRAME])
        await asyncio.wait_for(heard.wait(), 30)
        speech = await client.speak("okay")
        await asyncio.wait_for(speech, 30)
    assert finals == ["word word"]
    query = f"{url}/_local/bench/sessions?stream_id={stream_id}"
    async with aiohttp.ClientSession() as http, http.get(query) as response:
        (record,) = (await response.json())["sessions"]
    frames = -(-len(caller) // FRAME)
    assert (record["audio_frames"], record["audio_bytes"]) == (frames, len(caller))
    assert record["sent_audio_bytes"] > 0
    assert sum(map(len, audio)) == record["sent_audio_bytes"]  # every TTS byte it sent
    assert record["close_code"] == 1000


@pytest.mark.parametrize("loop", LOOP_NAMES)
async def test_sayna_serve_serves_a_whole_session_on_each_loop(loop: str) -> None:
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        shown = f"event loop: uvloop {uvloop.__version__};"
    else:
        shown = "event loop: asyncio;"
    async with sayna_serve("--loop", loop) as served:
        assert shown in served.banner
        await _whole_session(served.url, f"on-{loop}")
        # SIGTERM (as docker stop): the sessions close and the command exits 0.
        served.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(served.process.wait(), 60) == 0


async def test_the_default_loop_is_asyncios() -> None:
    async with sayna_serve() as served:
        assert "event loop: asyncio;" in served.banner


def test_loop_uvloop_without_the_extra_names_it_and_exits_2() -> None:
    # uvloop made unimportable, as on an install without the extra.
    program = (
        "import sys; sys.modules['uvloop'] = None\n"
        "from sayna_client.server.cli import serve_main\n"
        "sys.exit(serve_main(['--loop', 'uvloop', '--port', '0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "sayna serve: --loop uvloop needs the optional 'uvloop' extra: "
        "pip install 'sayna-client[uvloop]'"
    )
    assert done.stdout == ""  # it never started


@pytest.mark.parametrize(
    ("package", "message"),
    [
        (
            '__version__ = "0.17.0"\n',  # before uvloop.run (0.18)
            "sayna serve: uvloop 0.17.0 is too old for --loop uvloop (0.18 or later has "
            "uvloop.run): pip install 'sayna-client[uvloop]'",
        ),
        (
            'raise ImportError("undefined symbol: PyFoo (built for another Python)")\n',
            "sayna serve: uvloop is installed but cannot be imported (undefined symbol: "
            "PyFoo (built for another Python)): reinstall it with "
            "pip install 'sayna-client[uvloop]'",
        ),
    ],
    ids=["too-old", "broken"],
)
def test_an_unusable_uvloop_is_named_with_the_fix(
    tmp_path: Path, package: str, message: str
) -> None:
    # A uvloop package found before the installed one (PYTHONPATH comes first).
    (tmp_path / "uvloop").mkdir()
    (tmp_path / "uvloop" / "__init__.py").write_text(package)
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "sayna_client", "serve", "--loop", "uvloop", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert (done.returncode, done.stderr.strip(), done.stdout) == (2, message, "")


def test_an_unknown_loop_is_a_usage_error_listing_the_choices() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sayna_client", "serve", "--loop", "trio"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid choice: 'trio' (choose from 'asyncio', 'uvloop')" in done.stderr
    with pytest.raises(ValueError, match="unknown event loop 'trio': choose one of asyncio"):
        loop_runner("trio")


def test_loop_runner_runs_a_coroutine_on_the_named_loop() -> None:
    pytest.importorskip("uvloop")

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__.split(".", 1)[0]

    assert loop_runner("uvloop")(loop_module()) == "uvloop"
    assert loop_runner("asyncio")(loop_module()) == "asyncio"
