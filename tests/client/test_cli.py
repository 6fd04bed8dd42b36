"""The ``sayna`` command line against a local server running in its own thread."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import pty
import socket
import subprocess
import sys
import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from aiohttp import web

from helpers.cli import one_line_error
from sayna_client import audio
from sayna_client.cli import build_parser, main

from .conftest import ThreadedServer


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("SAYNA_API_KEY", raising=False)
    with ThreadedServer(api_key="cli-key") as server:
        monkeypatch.setenv("SAYNA_API_KEY", "cli-key")
        yield server.url


def test_health_and_voices_json(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out) == {"status": "OK"}
    assert main(["voices", "--url", url, "--json"]) == 0
    voices = json.loads(capsys.readouterr().out)
    assert voices["fake"][0]["id"]


def test_speak_to_wav_then_transcribe(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.wav"
    assert (
        main(
            [
                "speak",
                "one two three",
                "-o",
                str(out),
                "--url",
                url,
                "--provider",
                "fake",
                "--sample-rate",
                "16000",
            ]
        )
        == 0
    )
    with wave.open(str(out)) as w:
        assert w.getframerate() == 16000
        assert w.getnframes() > 0
    capsys.readouterr()
    assert (
        main(["transcribe", str(out), "--url", url, "--provider", "fake", "--speed", "0", "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["transcript"] == "word word word"


def test_token_rooms_hooks(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "room-x", "user-1", "--url", url]) == 0
    token = json.loads(capsys.readouterr().out)
    assert token["room_name"] == "room-x"
    assert token["token"].count(".") == 2
    assert main(["rooms", "--url", url]) == 0
    assert "rooms" in json.loads(capsys.readouterr().out)
    hook = ["hooks", "set", "sip.example.com", "http://127.0.0.1:9/h", "--auth-id", "t1"]
    assert main([*hook, "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["hooks"][0]["host"] == "sip.example.com"
    assert main(["hooks", "list", "--url", url]) == 0
    capsys.readouterr()
    assert main(["hooks", "delete", "sip.example.com", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["hooks"] == []


def test_errors_exit_1_with_a_message(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recording", "missing", "--url", url, "-o", "/dev/null"]) == 1
    assert "404" in capsys.readouterr().err
    assert main(["voices", "--url", url, "--api-key", "wrong"]) == 1
    assert "refused the API key" in capsys.readouterr().err


def test_demo_with_the_fake_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--engine", "fake", "--speed", "0", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "heard 'word word" in out
    assert audio.read_wav(tmp_path / "sayna-demo-speak.wav").sample_rate == 16000


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()  # one line, no usage block
    assert "invalid choice: 'no-such-command'" in line
    assert "see `sayna --help`" in line


# --- everyday mistakes through the real entry point --------------------------------------

ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).with_name("sayna")
#: The installed console script when there is one (the venv's), else ``python -m``.
SAYNA = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sayna_client"]


def run_cli(
    *args: str, cwd: Path, env: Optional[dict[str, str]] = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SAYNA_")}
    environment.update(env or {})
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(
        [*SAYNA, *args],
        text=True,
        timeout=60,
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        check=False,
        **kwargs,
    )


@pytest.fixture
def not_wav(tmp_path: Path) -> Path:
    path = tmp_path / "notes.wav"
    path.write_text("these are notes, not audio\n")
    return path


MISTAKES = {
    "missing input": (["transcribe", "missing.wav"], 2, ["missing.wav: no such file"]),
    "folder as input": (["transcribe", "."], 2, [". is a directory; pass a file"]),
    "not a WAV": (["transcribe", "notes.wav"], 2, ["not a PCM WAV file", "convert it with"]),
    "missing output folder": (
        ["speak", "hi", "-o", "/nonexistent/dir/x.wav"],
        2,
        ["the folder /nonexistent/dir does not exist", "create it"],
    ),
    "output is a folder": (["speak", "hi", "-o", "."], 2, ["is a directory"]),
    "negative rate": (["speak", "hi", "--rate", "-1"], 2, ["--rate", "between 0.25 and 4"]),
    "huge rate": (["speak", "hi", "--rate", "100"], 2, ["--rate", "between 0.25 and 4"]),
    "zero sample rate": (["speak", "hi", "--sample-rate", "0"], 2, ["0 Hz", "use one of 8000"]),
    "7 Hz": (["speak", "hi", "--sample-rate", "7"], 2, ["7 Hz is not supported", "16000"]),
    "negative speed": (["transcribe", "notes.wav", "--speed", "-2"], 2, ["--speed", ">= 0"]),
    "port out of range": (
        ["serve", "--port", "99999"],
        2,
        ["99999 is not a TCP port", "0 for any"],
    ),
    "unknown engine": (["serve", "--engine", "nope"], 2, ["invalid choice: 'nope'", "'local'"]),
    "unknown demo engine": (["demo", "--engine", "nope"], 2, ["invalid choice: 'nope'"]),
    "missing argument": (["speak"], 2, ["required: text", "sayna speak --help"]),
    "hooks without an action": (
        ["hooks", "--url", "http://127.0.0.1:9"],
        2,
        ["missing ACTION: choose one of: list, set, delete", "sayna hooks list --url URL"],
    ),
    "hooks alone": (["hooks"], 2, ["missing ACTION", "list, set, delete", "sayna hooks --help"]),
    "reply file missing": (
        ["talk", "--reply", "nofile.py:f"],
        2,
        ["--reply: no file nofile.py", "expected --reply path/to/file.py:function_name"],
    ),
    "empty identity": (
        ["token", "my-room", ""],
        2,
        ["sayna token: error: argument IDENTITY: must not be empty"],
    ),
    "blank room": (["token", " ", "user-1"], 2, ["argument ROOM: must not be empty"]),
    "empty room to show": (["rooms", ""], 2, ["argument ROOM: must not be empty"]),
    "rules as JSON text": (
        ["talk", "--agent", "rules", "--rules", '{"hello": "hi"}'],
        2,
        ["argument --rules: takes a file, not JSON text", "--rules rules.json"],
    ),
    "demo output dir is a file": (
        ["demo", "--engine", "fake", "--output-dir", "notes.wav"],
        2,
        ["argument --output-dir: notes.wav is not a directory; pass a folder"],
    ),
    "demo empty text": (
        ["demo", "--engine", "fake", "--text", ""],
        2,
        ["sayna demo: error: argument --text: must not be empty"],
    ),
    "empty provider": (
        ["speak", "hi", "--provider", ""],
        2,
        ["TTSConfig.provider: string should have at least 1 character"],
    ),
}


@pytest.mark.usefixtures("not_wav")
@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_everyday_mistakes_are_one_line(case: str, tmp_path: Path) -> None:
    args, status, parts = MISTAKES[case]
    one_line_error(run_cli(*args, cwd=tmp_path), status, *parts)


def test_demo_output_dir_that_cannot_be_made(tmp_path: Path) -> None:
    done = run_cli(
        "demo", "--engine", "fake", "--speed", "0", "--output-dir", "/proc/nope/x", cwd=tmp_path
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (1, 2)
    last = done.stderr.splitlines()[-1]  # `error: ...` or the parser's `sayna demo: error: ...`
    assert "error: " in last
    assert "/proc/nope" in last


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("command", [["voices"], ["speak", "hi"], ["transcribe", "tone.wav"]])
@pytest.mark.parametrize(
    "credentials", ["", "admin:hunter2-secret@", "?api_key=sk-live-secret-123"]
)
def test_server_down_names_the_url_and_the_fix(
    command: list[str], credentials: str, refusing_port: int, tmp_path: Path
) -> None:
    """A local server not running: the SDK's diagnosis (refused), the URL without its
    credentials, and the fix in the command line's terms."""
    tone_wav(tmp_path / "tone.wav", words=1)
    bare = f"127.0.0.1:{refusing_port}"
    if credentials.startswith("?"):
        url = f"http://{bare}/{credentials}"
    else:
        url = f"http://{credentials}{bare}"
    line = one_line_error(
        run_cli(*command, "--url", url, cwd=tmp_path),
        1,
        "cannot reach ",
        f"://{bare}",
        "connection refused",
        "one with `sayna serve`, or pass --url",
    )
    for secret in ("hunter2", "admin", "sk-live", "api_key"):
        assert secret not in line
    assert "ssl:default" not in line
    assert "Connect call failed" not in line


def test_tls_to_a_plain_server_keeps_the_diagnosis(url: str, tmp_path: Path) -> None:
    """Not every connection error is a server that is not running: https:// to a
    plain-HTTP server says so, without the `sayna serve` advice."""
    line = one_line_error(
        run_cli("health", "--url", url.replace("http://", "https://"), cwd=tmp_path),
        1,
        "does not speak TLS",
        "http://",
    )
    assert "sayna serve" not in line


def test_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("serve", "--port", str(port), "--log-level", "ERROR", cwd=tmp_path)
    one_line_error(done, 1, f"port {port} on 127.0.0.1 is already in use", "--port 0")


def test_broken_pipe_is_quiet(url: str, tmp_path: Path) -> None:
    """`sayna voices | head -1`: the reader left; no traceback, no 'Exception ignored'."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        done = run_cli(
            "voices", "--url", url, cwd=tmp_path, env={"SAYNA_API_KEY": "cli-key"}, stdout=write_end
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 1


def test_example_with_a_missing_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "transcribe_file.py"), "nope.wav"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert "Traceback" not in done.stderr
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].endswith(
        "nope.wav does not exist; pass a 16-bit PCM WAV file"
    )


@pytest.mark.parametrize("transport", ["REST", "WebSocket"])
def test_wrong_or_missing_key_says_why_and_how(url: str, transport: str, tmp_path: Path) -> None:
    tone_wav(tmp_path / "tone.wav", words=1)
    command = ["voices"] if transport == "REST" else ["transcribe", "tone.wav", "--speed", "0"]
    wrong = run_cli(*command, "--url", url, "--api-key", "wrong", cwd=tmp_path)
    one_line_error(
        wrong,
        1,
        "the server refused the API key (Unauthorized: Invalid API secret)",
        "--api-key KEY or set SAYNA_API_KEY",
    )
    wrong_env = run_cli(*command, "--url", url, cwd=tmp_path, env={"SAYNA_API_KEY": "wrong"})
    one_line_error(wrong_env, 1, "the server refused the API key")
    missing = run_cli(*command, "--url", url, cwd=tmp_path)
    one_line_error(
        missing,
        1,
        "the server requires an API key (Missing authentication token",
        "pass --api-key KEY or set SAYNA_API_KEY",
    )
    in_url = run_cli(*command, "--url", f"{url}/?api_key=wrong-url-key", cwd=tmp_path)
    one_line_error(in_url, 1, "the server refused the API key (Unauthorized")
    for done in (wrong, wrong_env, missing, in_url):
        assert "api_key=" not in done.stderr
        assert "wrong-url-key" not in done.stderr


def test_unknown_voice_lists_the_known_ones(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        ["speak", "hi", "--url", url, "--provider", "fake", "--voice", "nope", "-o", "/dev/null"]
    )
    assert status == 2
    line = capsys.readouterr().err.strip()
    assert line == (
        "error: unknown --voice 'nope' for provider 'fake'; known voices: fake-alpha, "
        "fake-bravo, fake-charlie (`sayna voices` lists every provider's)"
    )


# --- help ---------------------------------------------------------------------------------


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                if name != "serve":
                    yield child
                    yield from _subparsers(child)


def test_talk_rules_help_says_it_takes_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["talk", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "[--rules FILE]" in text
    assert '--rules FILE the rule table of --agent rules: a JSON file holding {"regex"' in text
    assert "--rules JSON" not in text


def test_serve_fault_drop_help_counts_every_frame_sent() -> None:
    """The fault counts every frame the server sends (ready, results, audio), not
    audio frames only."""
    from sayna_client.server.cli import build_parser as serve_parser

    text = " ".join(serve_parser().format_help().split())
    assert (
        "--fault-drop-after-frames N drop the connection (no Close frame) after sending N "
        "frames to the client, any kind: ready, results, audio..."
    ) in text
    assert "N audio frames" not in text


def test_every_option_has_help_with_its_default_and_an_example() -> None:
    from sayna_client.server.cli import build_parser as serve_parser

    parsers = [*_subparsers(build_parser()), serve_parser()]
    assert {p.prog for p in parsers} >= {"sayna speak", "sayna transcribe", "sayna serve"}
    for parser in parsers:
        assert "examples:\n  sayna " in (parser.epilog or ""), parser.prog
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{parser.prog} {action.dest}: no help"
            if action.option_strings:
                assert "default" in action.help, f"{parser.prog} {action.dest}: no default"
        parser.format_help()  # %(default)s expands


def test_help_through_the_entry_point(tmp_path: Path) -> None:
    done = run_cli("speak", "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "speaking rate from 0.25 to 4, 1 = normal; Sayna passes it to Google" in " ".join(
        done.stdout.split()
    )
    assert "examples:\n  sayna speak 'Hello there' -o hello.wav" in done.stdout


# --- progress -----------------------------------------------------------------------------


def tone_wav(path: Path, words: int, rate: int = 16000) -> None:
    """A WAV the fake engine hears as ``words`` words (120 ms tones, 60 ms apart)."""
    tone = [int(9000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(rate * 120 // 1000)]
    samples = (tone + [0] * (rate * 60 // 1000)) * words
    audio.write_wav(path, b"".join(s.to_bytes(2, "little", signed=True) for s in samples), rate)


def run_on_terminal(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``sayna`` with stderr on a real pseudo-terminal; return status, stdout, stderr."""
    master, slave = pty.openpty()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SAYNA_")}
    process = subprocess.Popen(
        [*SAYNA, *args],
        cwd=cwd,
        env={**environment, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen.extend(chunk)
    os.close(master)
    assert process.stdout is not None
    out = process.stdout.read()
    process.stdout.close()
    return process.wait(60), out, seen.decode(errors="replace")


def test_transcribing_silence_says_nothing_was_heard(url: str, tmp_path: Path) -> None:
    """Nothing heard is an empty transcript, not a failure: stdout stays empty (the JSON
    transcript is ""), stderr says so in one line, and the exit status is 0."""
    audio.write_wav(tmp_path / "quiet.wav", bytes(16000), 16000)  # 0.5 s of silence
    args = ("transcribe", "quiet.wav", "--url", url, "--provider", "fake", "--speed", "0")
    done = run_cli(*args, cwd=tmp_path, env={"SAYNA_API_KEY": "cli-key"})
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == "(no speech heard in quiet.wav)\n"


def test_progress_on_a_terminal_only(url: str, tmp_path: Path) -> None:
    tone_wav(tmp_path / "two.wav", words=2)
    args = ("transcribe", "two.wav", "--url", url, "--provider", "fake", "--speed", "0")
    env = {"SAYNA_API_KEY": "cli-key"}
    status, out, err = run_on_terminal(*args, cwd=tmp_path, env=env)
    assert (status, out) == (0, "word word\n")
    assert "transcribing [" in err
    piped = run_cli(*args, cwd=tmp_path, env=env)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "word word\n", "")


class SlowSpeakServer:
    """POST /speak answers only when ``release`` is set (a slow TTS provider)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.release = threading.Event()
        self.runner: Optional[web.AppRunner] = None
        self.url = ""

    async def _speak(self, request: web.Request) -> web.Response:
        await asyncio.to_thread(self.release.wait, 60)
        return web.Response(body=b"\0\0" * 1600, headers={"x-sample-rate": "16000"})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/speak", self._speak)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def __enter__(self) -> SlowSpeakServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_slow_request_shows_progress_after_a_second(tmp_path: Path) -> None:
    with SlowSpeakServer() as slow:
        master, slave = pty.openpty()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SAYNA_")}
        process = subprocess.Popen(
            [*SAYNA, "speak", "hi", "--url", slow.url, "-o", "out.wav"],
            cwd=tmp_path,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        seen = bytearray()
        try:
            while b"synthesizing... " not in seen:  # shown while the server is slow
                chunk = os.read(master, 4096)
                assert chunk, seen
                seen.extend(chunk)
            slow.release.set()
            assert process.wait(60) == 0
        finally:
            os.close(master)
            if process.returncode is None:
                process.kill()
                process.wait()
        assert process.stdout is not None
        assert process.stdout.read().startswith("wrote out.wav: 0.10 s at 16000 Hz")
        process.stdout.close()


class FailingRecognizerServer:
    """A Sayna WebSocket peer whose recognizer fails on the first audio frame (an
    ``error`` message, as the local engine sends when its speech worker dies) and then
    recovers: the second frame is heard as ``later words``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: Optional[web.AppRunner] = None
        self.url = ""

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        frames = 0
        async for message in ws:
            if message.type == web.WSMsgType.TEXT and json.loads(message.data)["type"] == "config":
                await ws.send_json({"type": "ready", "stream_id": "failing"})
            elif message.type == web.WSMsgType.BINARY:
                frames += 1
                if frames == 1:
                    error = {"type": "error", "message": "speech recognition was interrupted"}
                    await ws.send_json(error)
                elif frames == 2:
                    result = {"transcript": "later words", "is_final": True, "confidence": 1.0}
                    await ws.send_json({"type": "stt_result", "is_speech_final": True, **result})
        return ws

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def __enter__(self) -> FailingRecognizerServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_a_server_error_while_transcribing_is_shown_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The transcript may miss part of the file: say why on stderr and exit 1, after
    printing what was heard (it used to be a partial transcript and exit 0)."""
    tone_wav(tmp_path / "two.wav", words=2)
    with FailingRecognizerServer() as server:
        args = ["transcribe", str(tmp_path / "two.wav"), "--url", server.url, "--speed", "0"]
        assert main(args) == 1
    out, err = capsys.readouterr()
    assert out == "later words\n"
    assert "error: speech recognition was interrupted\n" in err
    assert "no speech heard" not in err


class DroppingServer(FailingRecognizerServer):
    """A Sayna WebSocket peer that hears ``words before the drop`` in the first audio
    frame, then ends the TCP connection without a Close frame (a crash, a network
    drop: code 1006)."""

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == web.WSMsgType.TEXT and json.loads(message.data)["type"] == "config":
                await ws.send_json({"type": "ready", "stream_id": "dropping"})
            elif message.type == web.WSMsgType.BINARY:
                result = {
                    "transcript": "words before the drop",
                    "is_final": True,
                    "confidence": 1.0,
                }
                await ws.send_json({"type": "stt_result", "is_speech_final": True, **result})
                assert request.transport is not None
                request.transport.close()  # what was sent goes first, then FIN
                break
        return ws


@pytest.mark.parametrize("as_json", [False, True])
def test_a_connection_lost_while_transcribing_prints_what_was_heard(
    as_json: bool, tmp_path: Path
) -> None:
    """What was heard before the drop is printed; the drop is one line in the command
    line's terms (no Python advice such as `client.connect()`), and the exit status 1."""
    tone_wav(tmp_path / "three.wav", words=3)
    with DroppingServer() as server:
        done = run_cli(
            "transcribe",
            "three.wav",
            "--url",
            server.url,
            "--speed",
            "0",
            *(["--json"] if as_json else []),
            cwd=tmp_path,
        )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr
    if as_json:
        assert json.loads(done.stdout) == {
            "transcript": "words before the drop",
            "segments": ["words before the drop"],
        }
    else:
        assert done.stdout == "words before the drop\n"
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        "error: the connection to the server was lost before the transcription finished "
        "(Connection closed (code 1006)"
    ), line
    assert line.endswith("the transcript holds only what was heard before")
    assert "client.connect()" not in line
