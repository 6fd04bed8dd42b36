"""``sayna``: the command line, built on the public API only.

``sayna demo`` runs the whole story on an embedded local server; ``sayna serve``
starts that server; the other subcommands wrap REST and streaming calls against
any Sayna server (``--url``, ``--api-key`` or ``SAYNA_API_KEY``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from . import audio
from ._version import __version__
from .client import SaynaClient
from .errors import SaynaError
from .protocol.events import STTResultMessage, TTSPlaybackCompleteMessage
from .types import SipHook, STTConfig, TTSConfig

__all__ = ["main"]

DEFAULT_URL = "http://127.0.0.1:3001"


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _client(args: argparse.Namespace, **kwargs: Any) -> SaynaClient:
    return SaynaClient(args.url, without_audio=True, api_key=args.api_key, **kwargs)


class _Progress:
    """Progress on stderr: a live bar on a terminal, a line per quarter otherwise (logs, CI)."""

    def __init__(self, label: str, total: float, unit: str) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.enabled = sys.stderr.isatty()
        self._last = 0.0
        self._quarter = 0

    def update(self, done: float, extra: str = "") -> None:
        if not self.enabled:
            quarter = int(4 * done / self.total) if self.total else 4
            if quarter > self._quarter:
                self._quarter = quarter
                print(
                    f"{self.label}: {25 * quarter}% ({done:.1f}/{self.total:.1f} {self.unit})",
                    file=sys.stderr,
                )
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < self.total:
            return
        self._last = now
        width = 30
        filled = int(width * min(1.0, done / self.total)) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(
            f"\r{self.label} [{bar}] {done:.1f}/{self.total:.1f} {self.unit} {extra[:40]:<40}"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


# --- REST subcommands -----------------------------------------------------------------


async def _cmd_health(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        health = await client.health()
    _print_json(health.model_dump())
    return 0


async def _cmd_voices(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        voices = await client.get_voices()
    if args.json:
        _print_json({p: [v.model_dump() for v in vs] for p, vs in voices.items()})
    else:
        for provider, items in voices.items():
            print(f"{provider} ({len(items)} voices)")
            for v in items:
                print(f"  {v.id:<28} {v.name:<24} {v.language} {v.gender} {v.accent}")
    return 0


async def _cmd_speak(args: argparse.Namespace) -> int:
    tts = TTSConfig(
        provider=args.provider,
        voice_id=args.voice,
        audio_format="linear16",
        sample_rate=args.sample_rate,
        speaking_rate=args.rate,
    )
    async with _client(args) as client:
        data, headers = await client.speak_rest(args.text, tts)
    rate = int(headers.get("x-sample-rate", args.sample_rate))
    await asyncio.to_thread(audio.write_wav, args.output, data, rate)
    seconds = audio.duration_ms(len(data), rate) / 1000
    print(f"wrote {args.output}: {seconds:.2f} s at {rate} Hz ({len(data)} bytes of PCM)")
    return 0


async def _cmd_token(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        token = await client.get_livekit_token(args.room, args.name, args.identity)
    _print_json({**token.model_dump(), "token": token.token})
    return 0


async def _cmd_rooms(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        if args.room:
            details = await client.get_livekit_room(args.room)
            _print_json(details.model_dump())
        else:
            rooms = await client.get_livekit_rooms()
            _print_json(rooms.model_dump())
    return 0


async def _cmd_hooks(args: argparse.Namespace) -> int:
    async with _client(args) as client:
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
    async with _client(args) as client:
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
    progress = _Progress(label, len(frames) * frame_ms / 1000, "s")
    latest = [""]

    def on_result(result: STTResultMessage) -> None:
        if result.is_final and result.transcript:
            finals.append(result.transcript)
        latest[0] = result.transcript or latest[0]

    unsubscribe = client.register_on_stt_result(on_result)
    try:
        sent = 0
        async for frame in audio.paced(frames, frame_ms=frame_ms, speed=speed):
            await client.on_audio_input(frame)
            sent += 1
            progress.update(sent * frame_ms / 1000, latest[0])
        # The file ends where it ends, maybe mid-word: trailing silence lets the
        # recogniser close the utterance, and finish_audio() waits for its final.
        await client.finish_audio()
    finally:
        progress.close()
        unsubscribe()
    return finals


async def _cmd_transcribe(args: argparse.Namespace) -> int:
    wav = await asyncio.to_thread(audio.read_wav, args.file)
    stt = STTConfig(provider=args.provider, sample_rate=wav.sample_rate, channels=wav.channels)
    tts = TTSConfig(provider=args.provider)
    frames = list(audio.wav_frames(wav, frame_ms=20, stt_config=stt))
    async with SaynaClient(args.url, stt, tts, api_key=args.api_key) as client:
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


def _pick_engine(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        from .server.engines.local import LocalEngine  # noqa: F401
    except ImportError:
        print(
            "(local speech engines not installed: using the fake engine; "
            "pip install 'sayna-client[local]' for real speech)"
        )
        return "fake"
    return "local"


async def _demo(args: argparse.Namespace) -> int:
    from .server import LocalServer

    engine = _pick_engine(args.engine)
    out_dir = Path(args.output_dir)
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    async with LocalServer(engine=engine, port=0) as server:
        print(f"1. Local Sayna server ({engine} engine) listening on {server.url}")
        stt = STTConfig(provider="deepgram", model="nova-2", sample_rate=16000)
        tts = TTSConfig(provider="elevenlabs", voice_id="en-us+f2", sample_rate=16000)
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
            await client.speak(args.text)
            await asyncio.wait_for(done.wait(), 60)
            seconds = audio.duration_ms(len(received), 16000) / 1000
            print(f"6. speak(): received {len(received)} bytes ({seconds:.2f} s) of TTS audio")
            frames = list(audio.wav_frames(audio.WavAudio(bytes(received), 16000, 1), frame_ms=20))
            finals = await _transcribe(client, frames, 20, args.speed, "7. streaming audio back")
            print(f"8. transcript: {' '.join(finals) or '(nothing recognised)'}")
    print("Done: the whole Sayna flow ran locally, no account and no network.")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(args))


# --- parser ---------------------------------------------------------------------------


def _add_conn(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=DEFAULT_URL, help=f"server URL (default {DEFAULT_URL})")
    p.add_argument("--api-key", default=None, help="API key (default: $SAYNA_API_KEY)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sayna", description="Sayna voice SDK command line")
    parser.add_argument("--version", action="version", version=f"sayna-client {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the whole flow on an embedded local server")
    p.add_argument("--engine", choices=["auto", "local", "fake"], default="auto")
    p.add_argument("--text", default=DEMO_TEXT)
    p.add_argument("--speed", type=float, default=1.0, help="streaming speed x real time")
    p.add_argument("--output-dir", default=".", help="where to write sayna-demo-speak.wav")

    sub.add_parser(
        "serve", help="run the local Sayna server (see `sayna serve --help`)", add_help=False
    )

    p = sub.add_parser("health", help="GET / (server health)")
    _add_conn(p)
    p = sub.add_parser("voices", help="list voices")
    _add_conn(p)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("speak", help="synthesize TEXT to a WAV file with POST /speak")
    _add_conn(p)
    p.add_argument("text")
    p.add_argument("-o", "--output", default="speech.wav")
    p.add_argument("--provider", default="deepgram")
    p.add_argument("--voice", default=None)
    p.add_argument("--rate", type=float, default=1.0)
    p.add_argument("--sample-rate", type=int, default=24000)
    p = sub.add_parser("transcribe", help="stream a 16-bit WAV file and print the transcript")
    _add_conn(p)
    p.add_argument("file")
    p.add_argument("--provider", default="deepgram")
    p.add_argument("--speed", type=float, default=1.0, help="x real time (0 = as fast as possible)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("token", help="issue a LiveKit token")
    _add_conn(p)
    p.add_argument("room")
    p.add_argument("identity")
    p.add_argument("--name", default="")
    p = sub.add_parser("rooms", help="list LiveKit rooms, or show one")
    _add_conn(p)
    p.add_argument("room", nargs="?")
    p = sub.add_parser("hooks", help="SIP hooks: list, set, delete")
    hooks = p.add_subparsers(dest="action", required=True)
    hp = hooks.add_parser("list", help="show the SIP routing table")
    _add_conn(hp)
    hp = hooks.add_parser("set", help="add or replace the hook of HOST")
    _add_conn(hp)
    hp.add_argument("host")
    hp.add_argument("hook_url")
    hp.add_argument("--auth-id", default="")
    hp = hooks.add_parser("delete", help="remove the hooks of HOSTS")
    _add_conn(hp)
    hp.add_argument("hosts", nargs="+")
    p = sub.add_parser("recording", help="download a session recording")
    _add_conn(p)
    p.add_argument("stream_id")
    p.add_argument("-o", "--output", default=None)
    return parser


_ASYNC_COMMANDS = {
    "health": _cmd_health,
    "voices": _cmd_voices,
    "speak": _cmd_speak,
    "transcribe": _cmd_transcribe,
    "token": _cmd_token,
    "rooms": _cmd_rooms,
    "hooks": _cmd_hooks,
    "recording": _cmd_recording,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``sayna``; returns the exit status (0 ok, 1 Sayna error, 2 usage)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        from .server.cli import serve_main

        return serve_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "recording" and not args.output:
        args.output = f"{args.stream_id}.ogg"
    if args.command == "token" and not args.name:
        args.name = args.identity
    try:
        if args.command == "demo":
            return _cmd_demo(args)
        return asyncio.run(_ASYNC_COMMANDS[args.command](args))
    except SaynaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
