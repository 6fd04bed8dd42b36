"""``sayna``: the command line, built on the public API only.

``sayna demo`` runs the whole story on an embedded local server; ``sayna serve``
starts that server; the other subcommands wrap REST and streaming calls against
any Sayna server (``--url``, ``--api-key`` or ``SAYNA_API_KEY``).

Everyday mistakes end with one line on stderr naming the problem and the fix, never
a traceback: exit status 2 for usage errors (a bad option, a missing input file),
1 for failures (server unreachable, key refused, a file that cannot be written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Optional

from . import _talk_cli, audio
from ._cli_util import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CliError,
    Parser,
    input_file,
    non_negative_float,
    output_file,
    sample_rate,
    silence_broken_pipe,
    speaking_rate,
)
from ._version import __version__
from .client import SaynaClient
from .errors import (
    SaynaAuthenticationError,
    SaynaConnectionClosedError,
    SaynaConnectionError,
    SaynaError,
    SaynaHttpError,
    SaynaTimeoutError,
    SaynaValidationError,
)
from .protocol.events import STTResultMessage, TTSPlaybackCompleteMessage
from .types import SipHook, STTConfig, TTSConfig

__all__ = ["main"]

DEFAULT_URL = "http://127.0.0.1:3001"


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _client(args: argparse.Namespace, **kwargs: Any) -> SaynaClient:
    return SaynaClient(args.url, without_audio=True, api_key=args.api_key, **kwargs)


class _Progress:
    """A live progress bar on stderr when it is a terminal; silent otherwise (logs, CI,
    pipes), so captured output holds only results."""

    def __init__(self, label: str, total: float, unit: str) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.enabled = sys.stderr.isatty()
        self._last = 0.0
        self._shown = False

    def update(self, done: float, extra: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < self.total:
            return
        self._last = now
        self._shown = True
        width = 30
        filled = int(width * min(1.0, done / self.total)) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(
            f"\r{self.label} [{bar}] {done:.1f}/{self.total:.1f} {self.unit} {extra[:40]:<40}"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


#: Seconds an operation runs before ``_working`` shows that it is still going.
PROGRESS_AFTER = 1.0


@contextlib.asynccontextmanager
async def _working(label: str) -> AsyncIterator[None]:
    """Show ``label... N.N s`` on a terminal's stderr while the block runs longer than
    :data:`PROGRESS_AFTER`; the line is erased at the end. Silent when stderr is not a
    terminal."""
    if not sys.stderr.isatty():
        yield
        return
    started = time.monotonic()
    shown = [False]

    async def tick() -> None:
        await asyncio.sleep(PROGRESS_AFTER)
        while True:
            shown[0] = True
            sys.stderr.write(f"\r{label}... {time.monotonic() - started:.1f} s")
            sys.stderr.flush()
            await asyncio.sleep(0.2)

    task = asyncio.get_running_loop().create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if shown[0]:
            sys.stderr.write("\r" + " " * (len(label) + 16) + "\r")
            sys.stderr.flush()


# --- REST subcommands -----------------------------------------------------------------


async def _cmd_health(args: argparse.Namespace) -> int:
    async with _client(args) as client, _working("waiting for the server"):
        health = await client.health()
    _print_json(health.model_dump())
    return 0


async def _cmd_voices(args: argparse.Namespace) -> int:
    async with _client(args) as client, _working("waiting for the server"):
        voices = await client.get_voices()
    if args.json:
        _print_json({p: [v.model_dump() for v in vs] for p, vs in voices.items()})
    else:
        for provider, items in voices.items():
            print(f"{provider} ({len(items)} voices)")
            for v in items:
                print(f"  {v.id:<28} {v.name:<24} {v.language} {v.gender} {v.accent}")
    return 0


async def _check_voice(client: SaynaClient, provider: str, voice: str) -> None:
    """Refuse a ``--voice`` the server does not list for ``provider`` (when it lists any)."""
    voices = await client.get_voices()
    known = [v.id for v in voices.get(provider, [])]
    if known and voice not in known:
        raise CliError(
            f"unknown --voice {voice!r} for provider {provider!r}; known voices: "
            f"{', '.join(known)} (`sayna voices` lists every provider's)",
            EXIT_USAGE,
        )


async def _cmd_speak(args: argparse.Namespace) -> int:
    tts = TTSConfig(
        provider=args.provider,
        voice_id=args.voice,
        audio_format="linear16",
        sample_rate=args.sample_rate,
        speaking_rate=args.rate,
    )
    async with _client(args) as client, _working("synthesizing"):
        if args.voice is not None:
            await _check_voice(client, args.provider, args.voice)
        data, headers = await client.speak_rest(args.text, tts)
    rate = int(headers.get("x-sample-rate", args.sample_rate))
    await asyncio.to_thread(audio.write_wav, args.output, data, rate)
    seconds = audio.duration_ms(len(data), rate) / 1000
    print(f"wrote {args.output}: {seconds:.2f} s at {rate} Hz ({len(data)} bytes of PCM)")
    return 0


async def _cmd_token(args: argparse.Namespace) -> int:
    async with _client(args) as client, _working("waiting for the server"):
        token = await client.get_livekit_token(args.room, args.name, args.identity)
    _print_json({**token.model_dump(), "token": token.token})
    return 0


async def _cmd_rooms(args: argparse.Namespace) -> int:
    async with _client(args) as client, _working("waiting for the server"):
        if args.room:
            details = await client.get_livekit_room(args.room)
            _print_json(details.model_dump())
        else:
            rooms = await client.get_livekit_rooms()
            _print_json(rooms.model_dump())
    return 0


async def _cmd_hooks(args: argparse.Namespace) -> int:
    async with _client(args) as client, _working("waiting for the server"):
        if args.action == "list":
            result = await client.get_sip_hooks()
        elif args.action == "set":
            result = await client.set_sip_hooks(
                [SipHook(host=args.host, url=args.hook_url, auth_id=args.auth_id)]
            )
        else:
            result = await client.delete_sip_hooks(args.hosts)
    _print_json(result.model_dump())
    return 0


async def _cmd_recording(args: argparse.Namespace) -> int:
    async with _client(args) as client, _working("downloading"):
        data, headers = await client.get_recording(args.stream_id)
    await asyncio.to_thread(Path(args.output).write_bytes, data)
    print(f"wrote {args.output}: {len(data)} bytes ({headers.get('Content-Type', '?')})")
    return 0


# --- streaming ------------------------------------------------------------------------


async def _transcribe(
    client: SaynaClient, frames: Sequence[bytes], frame_ms: int, speed: float, label: str
) -> list[str]:
    """Stream ``frames`` paced at ``speed`` × real time; return the final transcripts."""
    finals: list[str] = []
    loop = asyncio.get_running_loop()
    # A turn is open from its first words until its speech-final; recognisers may send
    # several turns per stream (one per utterance).
    turn_open = [False]
    last_result = [loop.time()]
    changed = asyncio.Event()
    progress = _Progress(label, len(frames) * frame_ms / 1000, "s")
    latest = [""]

    def on_result(result: STTResultMessage) -> None:
        if result.is_final and result.transcript:
            finals.append(result.transcript)
        latest[0] = result.transcript or latest[0]
        turn_open[0] = not result.is_speech_final
        last_result[0] = loop.time()
        changed.set()

    unsubscribe = client.register_on_stt_result(on_result)
    try:
        sent = 0
        async for frame in audio.paced(frames, frame_ms=frame_ms, speed=speed):
            await client.on_audio_input(frame)
            sent += 1
            progress.update(sent * frame_ms / 1000, latest[0])
        # The file ends where it ends, maybe mid-word: trailing silence in the session's
        # own format lets the recogniser close the last utterance.
        try:
            await client.finish_audio(timeout=15.0)
        except SaynaTimeoutError:
            pass  # a recogniser still busy: the wait below tells when it is done
        # The server may still be decoding a backlog: done once no turn is open and
        # nothing new arrived for a second.
        # Nothing heard yet: give a backlogged server 5 s for its first result.
        deadline = loop.time() + (15.0 if finals or latest[0] else 5.0)
        while True:
            now = loop.time()
            quiet = now - last_result[0]
            heard = bool(finals or latest[0])
            if now >= deadline or (heard and not turn_open[0] and quiet >= 1.0):
                break
            if heard and not turn_open[0]:
                wait = min(deadline - now, 1.0 - quiet)
            else:
                wait = deadline - now
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), wait)
            except asyncio.TimeoutError:
                pass
    finally:
        progress.close()
        unsubscribe()
    return finals


def _read_wav(path: Path) -> audio.WavAudio:
    try:
        wav = audio.read_wav(path)
    except SaynaValidationError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if not wav.pcm:
        raise CliError(f"{path} holds no audio; pass a WAV file with speech in it", EXIT_USAGE)
    return wav


async def _cmd_transcribe(args: argparse.Namespace) -> int:
    wav = await asyncio.to_thread(_read_wav, args.file)
    stt = STTConfig(provider=args.provider, sample_rate=wav.sample_rate, channels=wav.channels)
    tts = TTSConfig(provider=args.provider)
    frames = list(audio.wav_frames(wav, frame_ms=20, stt_config=stt))
    async with SaynaClient(args.url, stt, tts, api_key=args.api_key) as client:
        async with _working("connecting"):
            await client.connect()
        finals = await _transcribe(client, frames, 20, args.speed, "transcribing")
    text = " ".join(finals)
    if args.json:
        _print_json({"transcript": text, "segments": finals})
    else:
        print(text)
    return 0


# --- demo -----------------------------------------------------------------------------

DEMO_TEXT = "Hello from Sayna. I would like a cup of coffee, please."
#: Names the demo's recogniser should expect (the local engine's keyword hint).
DEMO_HINT = "Sayna"
#: Packages without which the local engine cannot run at all (the neural models have
#: their own fallback inside the engine).
_LOCAL_CORE = ("numpy", "soxr", "espeakng_loader", "pocketsphinx")


def _local_missing() -> list[str]:
    import importlib.util

    def missing(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is None
        except (ImportError, ValueError):  # broken or blocked (sys.modules[name] = None)
            return True

    return [name for name in _LOCAL_CORE if missing(name)]


async def _demo(args: argparse.Namespace) -> int:
    from ._wer import word_error_rate
    from .server import LocalServer

    engine = "local" if args.engine == "auto" else args.engine
    if engine == "local" and _local_missing():
        print(
            "error: sayna demo speaks and listens with the local engine, which is not "
            f"installed (missing: {', '.join(_local_missing())}). Install it with:\n"
            "    pip install 'sayna-client[local]'\n"
            "or run `sayna demo --engine fake` for the tone-burst engine (no real speech).",
            file=sys.stderr,
        )
        return 1
    if args.output_dir is None:
        out_dir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="sayna-demo-"))
    else:
        out_dir = Path(args.output_dir)
        await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    voice = "en_US-joe-medium" if engine == "local" else None
    async with LocalServer(engine=engine, port=0, stt_hint=DEMO_HINT) as server:
        print(f"1. Local Sayna server ({engine} engine) listening on {server.url}")
        stt = STTConfig(provider="deepgram", model="nova-2", sample_rate=16000)
        tts = TTSConfig(provider="elevenlabs", voice_id=voice, sample_rate=16000)
        async with SaynaClient(server.url, stt, tts) as client:
            health = await client.health()
            print(f"2. health(): status={health.status}")
            voices = await client.get_voices()
            counts = ", ".join(f"{p}: {len(v)}" for p, v in voices.items())
            print(f"3. get_voices(): {counts}")
            data, headers = await client.speak_rest(args.text, tts)
            wav_path = out_dir / "sayna-demo-speak.wav"
            await asyncio.to_thread(audio.write_wav, wav_path, data, int(headers["x-sample-rate"]))
            print(
                f"4. speak_rest(): {len(data)} bytes of {headers['x-audio-format']} at "
                f"{headers['x-sample-rate']} Hz -> {wav_path}"
            )
            received = bytearray()
            done = asyncio.Event()

            def on_complete(_: TTSPlaybackCompleteMessage) -> None:
                done.set()

            client.register_on_tts_audio(received.extend)
            client.register_on_tts_playback_complete(on_complete)
            await client.connect()
            print(f"5. connect(): ready, stream_id={client.received_stream_id}")
            print(f"6. speak(): said    {args.text!r}")
            await client.speak(args.text)
            await asyncio.wait_for(done.wait(), 60)
            seconds = audio.duration_ms(len(received), 16000) / 1000
            print(f"   received {len(received)} bytes ({seconds:.2f} s) of TTS audio")
            frames = list(audio.wav_frames(audio.WavAudio(bytes(received), 16000, 1), frame_ms=20))
            # Printed on every output (the progress bar below shows on a terminal only),
            # so captured output has all the steps.
            print("7. on_audio_input(): streaming that audio back as microphone input")
            finals = await _transcribe(client, frames, 20, args.speed, "   streaming")
            heard = " ".join(finals)
            print(f"8. transcript: heard {heard!r}" if heard else "8. transcript: (nothing heard)")
            if engine == "local":
                print(f"   word error rate: {word_error_rate(args.text, heard):.0%}")
    print("Done: the whole Sayna flow ran locally, no account and no network.")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(args))


# --- parser ---------------------------------------------------------------------------

_KEY_FIX = "pass --api-key KEY or set SAYNA_API_KEY"


def _add_conn(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--url",
        default=DEFAULT_URL,
        help="Sayna server URL, http(s):// or ws(s):// (default: %(default)s, "
        "where `sayna serve` listens)",
    )
    p.add_argument(
        "--api-key",
        default=None,
        help="API key sent as `Authorization: Bearer` (default: $SAYNA_API_KEY; none when unset)",
    )


def _sub(
    sub: Any, name: str, summary: str, examples: Sequence[str], description: str = ""
) -> argparse.ArgumentParser:
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=description or summary, epilog=epilog
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The ``sayna`` argument parser (``sayna serve`` has its own, in ``server.cli``)."""
    parser = Parser(
        prog="sayna",
        description="Sayna voice SDK command line. `sayna COMMAND --help` explains each "
        "command's options, with their defaults and an example.",
        epilog="examples:\n  sayna demo\n  sayna serve --engine local\n"
        "  sayna speak 'Hello there' -o hello.wav\n  sayna transcribe hello.wav\n"
        "  sayna talk --input caller.wav --output agent.wav\n\n"
        "exit status: 0 ok, 1 failure (server unreachable, key refused, ...), "
        "2 usage error, 130 Ctrl-C (sayna serve: 0, Ctrl-C is how it stops)",
    )
    parser.add_argument("--version", action="version", version=f"sayna-client {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _sub(
        sub,
        "demo",
        "run the whole flow on an embedded local server",
        ["sayna demo", "sayna demo --engine fake --speed 4 --output-dir /tmp/sayna"],
    )
    p.add_argument(
        "--engine",
        choices=["auto", "local", "fake"],
        default="auto",
        help="speech engine: local (Whisper + Piper; needs the local extra), fake (tone "
        "bursts), or auto, which means local (default: %(default)s)",
    )
    p.add_argument("--text", default=DEMO_TEXT, help="sentence to speak (default: %(default)r)")
    p.add_argument(
        "--speed",
        type=non_negative_float,
        default=1.0,
        help="streaming speed x real time, 0 = as fast as possible (default: %(default)s)",
    )
    p.add_argument(
        "--output-dir",
        default=None,
        help="where to write sayna-demo-speak.wav (default: a new temporary directory)",
    )

    sub.add_parser(
        "serve", help="run the local Sayna server (see `sayna serve --help`)", add_help=False
    )

    p = _sub(
        sub,
        "health",
        "check the server is up (GET /)",
        ["sayna health --url http://127.0.0.1:3001"],
    )
    _add_conn(p)
    p = _sub(
        sub,
        "voices",
        "list the server's voices by provider",
        ["sayna voices", "sayna voices --json"],
    )
    _add_conn(p)
    p.add_argument("--json", action="store_true", help="print JSON (default: a table)")
    p = _sub(
        sub,
        "speak",
        "synthesize TEXT to a 16-bit WAV file with POST /speak",
        [
            "sayna speak 'Hello there' -o hello.wav",
            "sayna speak 'Hola' --voice fake-bravo --rate 1.25 --sample-rate 16000",
        ],
    )
    _add_conn(p)
    p.add_argument("text", help="the text to speak")
    p.add_argument(
        "-o",
        "--output",
        type=output_file,
        default=Path("speech.wav"),
        help="WAV file to write; its folder must exist (default: %(default)s)",
    )
    p.add_argument("--provider", default="deepgram", help="TTS provider (default: %(default)s)")
    p.add_argument(
        "--voice",
        default=None,
        help="voice id from `sayna voices`; checked against the server's list "
        "(default: the provider's default voice)",
    )
    p.add_argument(
        "--rate",
        type=speaking_rate,
        default=1.0,
        help="speaking rate from 0.25 to 4, 1 = normal (default: %(default)s)",
    )
    p.add_argument(
        "--sample-rate",
        type=sample_rate,
        default=24000,
        metavar="HZ",
        help="output sample rate: 8000, 16000, 22050, 24000, 32000, 44100 or 48000 "
        "(default: %(default)s)",
    )
    p = _sub(
        sub,
        "transcribe",
        "stream a 16-bit PCM WAV file like a microphone and print the transcript",
        ["sayna transcribe speech.wav", "sayna transcribe speech.wav --speed 0 --json"],
    )
    _add_conn(p)
    p.add_argument("file", type=input_file, help="a 16-bit PCM WAV file (any rate, mono or stereo)")
    p.add_argument("--provider", default="deepgram", help="STT provider (default: %(default)s)")
    p.add_argument(
        "--speed",
        type=non_negative_float,
        default=1.0,
        help="streaming speed x real time, 0 = as fast as possible (default: %(default)s)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print {transcript, segments} as JSON (default: the transcript as text)",
    )
    p = _sub(
        sub,
        "talk",
        "a voice conversation with an agent: microphone and speaker, or WAV files",
        [
            "sayna talk",
            "sayna talk --input caller.wav --output agent.wav --agent rules",
            "sayna talk --reply mybot.py:reply",
        ],
        "Talk to an agent through the server: your microphone (or --input WAV) is "
        "transcribed, each turn goes to the agent, its answer is spoken on your speaker (or "
        "--output WAV); talking over it interrupts it. The agent is the built-in echo or "
        "rule table, or your own async function reply(text) yielding text pieces. The sound "
        "card needs: pip install 'sayna-client[devices]'.",
    )
    _add_conn(p)
    _talk_cli.add_parser(p)
    p = _sub(
        sub,
        "token",
        "issue a LiveKit access token for ROOM",
        ["sayna token my-room user-1", "sayna token my-room user-1 --name 'Jane Doe'"],
    )
    _add_conn(p)
    p.add_argument("room", help="LiveKit room name")
    p.add_argument("identity", help="participant identity")
    p.add_argument("--name", default="", help="participant display name (default: the identity)")
    p = _sub(
        sub, "rooms", "list LiveKit rooms, or show one ROOM", ["sayna rooms", "sayna rooms my-room"]
    )
    _add_conn(p)
    p.add_argument("room", nargs="?", help="show this room (default: list all rooms)")
    p = _sub(
        sub,
        "hooks",
        "SIP hooks: list, set, delete",
        [
            "sayna hooks list",
            "sayna hooks set sip.example.com https://example.com/hook --auth-id tenant-1",
            "sayna hooks delete sip.example.com",
        ],
    )
    hooks = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    hp = _sub(hooks, "list", "show the SIP routing table", ["sayna hooks list"])
    _add_conn(hp)
    hp = _sub(
        hooks,
        "set",
        "add or replace the hook of HOST",
        ["sayna hooks set sip.example.com https://example.com/hook --auth-id tenant-1"],
    )
    _add_conn(hp)
    hp.add_argument("host", help="SIP host whose calls go to HOOK_URL")
    hp.add_argument("hook_url", help="webhook URL that receives the calls")
    hp.add_argument("--auth-id", default="", help="tenant the hook belongs to (default: none)")
    hp = _sub(hooks, "delete", "remove the hooks of HOSTS", ["sayna hooks delete sip.example.com"])
    _add_conn(hp)
    hp.add_argument("hosts", nargs="+", help="SIP hosts whose hooks to remove")
    p = _sub(
        sub,
        "recording",
        "download the recording of a session",
        ["sayna recording call-42", "sayna recording call-42 -o call.ogg"],
    )
    _add_conn(p)
    p.add_argument("stream_id", help="the session's stream_id")
    p.add_argument(
        "-o",
        "--output",
        type=output_file,
        default=None,
        help="file to write; its folder must exist (default: STREAM_ID.ogg)",
    )
    return parser


_ASYNC_COMMANDS = {
    "health": _cmd_health,
    "voices": _cmd_voices,
    "speak": _cmd_speak,
    "transcribe": _cmd_transcribe,
    "talk": _talk_cli.run,
    "token": _cmd_token,
    "rooms": _cmd_rooms,
    "hooks": _cmd_hooks,
    "recording": _cmd_recording,
}


def _server_reason(exc: SaynaHttpError) -> str:
    """What the server said, from the error body (``message``, else ``error``)."""
    body = exc.body
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    if isinstance(body, str) and body.strip():
        return body.strip()[:200]
    return f"HTTP {exc.status_code}"


def _explain(exc: SaynaError, args: argparse.Namespace) -> tuple[str, int]:
    """One line for ``exc`` in the command line's terms, and the exit status."""
    if isinstance(exc, SaynaAuthenticationError):
        reason = _server_reason(exc)
        if args.api_key or os.environ.get("SAYNA_API_KEY"):
            fix = "pass the right key with --api-key KEY or set SAYNA_API_KEY"
            return f"the server refused the API key ({reason}): {fix}", EXIT_FAILURE
        return f"the server requires an API key ({reason}): {_KEY_FIX}", EXIT_FAILURE
    if isinstance(exc, SaynaConnectionError) and not isinstance(exc, SaynaConnectionClosedError):
        url = str(getattr(args, "url", DEFAULT_URL)).rstrip("/")
        return f"cannot reach {url}: start `sayna serve` or pass --url", EXIT_FAILURE
    if isinstance(exc, SaynaValidationError):
        return str(exc), EXIT_USAGE
    return str(exc), EXIT_FAILURE


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return _cmd_demo(args)
    return asyncio.run(_ASYNC_COMMANDS[args.command](args))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``sayna``; returns the exit status.

    Returns:
        0 on success, 1 on a failure (unreachable server, refused key, unwritable
        file), 2 on a usage error (bad option value, missing or unreadable input
        file), 130 on Ctrl-C. Errors are one line on stderr, never a traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        from .server.cli import serve_main

        return serve_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "recording" and not args.output:
        args.output = Path(f"{args.stream_id}.ogg")
    if args.command == "token" and not args.name:
        args.name = args.identity
    try:
        status = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except CliError as exc:
        message, status = str(exc), exc.status
    except SaynaError as exc:
        message, status = _explain(exc, args)
    except BrokenPipeError:
        return silence_broken_pipe()
    except OSError as exc:
        message, status = _describe_os_error(exc), EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    print(f"error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
