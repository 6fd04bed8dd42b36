"""The REST commands: ``health``, ``voices``, ``speak``, ``token``, ``rooms``, ``hooks``,
``recording``. Each prints the server's answer (JSON, a table, or the file it wrote)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Callable

from .. import audio
from .._cli_util import (
    EXIT_USAGE,
    CliError,
    non_empty,
    output_file,
    sample_rate,
    speaking_rate,
)
from .._http_errors import printable
from ..client import SaynaClient
from ..types import SipHook, TTSConfig
from .common import add_command, add_conn, client, print_json, working, write_output

__all__ = ["COMMANDS", "HOOK_ACTIONS", "add_parsers"]

#: The actions of ``sayna hooks``, in the order its help lists them.
HOOK_ACTIONS = ("list", "set", "delete")


async def cmd_health(args: argparse.Namespace) -> int:
    """``sayna health``: print ``GET /`` as JSON."""
    async with client(args) as rest, working("waiting for the server"):
        health = await rest.health()
    print_json(health.model_dump())
    return 0


async def cmd_voices(args: argparse.Namespace) -> int:
    """``sayna voices``: the voices by provider, as a table or JSON."""
    async with client(args) as rest, working("waiting for the server"):
        voices = await rest.get_voices()
    if args.json:
        print_json({p: [v.model_dump() for v in vs] for p, vs in voices.items()})
    else:
        # The server's words, with control characters as \xNN: a terminal would act on
        # them (a voice named "\x1b[2J" cleared the screen).
        for provider, items in voices.items():
            print(f"{printable(provider, lines=False)} ({len(items)} voices)")
            for v in items:
                voice_id, name, language, gender, accent = (
                    printable(text, lines=False)
                    for text in (v.id, v.name, v.language, v.gender, v.accent)
                )
                print(f"  {voice_id:<28} {name:<24} {language} {gender} {accent}")
    return 0


async def _check_voice(rest: SaynaClient, provider: str, voice: str) -> None:
    """Refuse a ``--voice`` the server does not list for ``provider`` (when it lists any)."""
    voices = await rest.get_voices()
    known = [v.id for v in voices.get(provider, [])]
    if known and voice not in known:
        raise CliError(
            f"unknown --voice {voice!r} for provider {provider!r}; known voices: "
            f"{', '.join(known)} (`sayna voices` lists every provider's)",
            EXIT_USAGE,
        )


async def cmd_speak(args: argparse.Namespace) -> int:
    """``sayna speak``: synthesize ``args.text`` with ``POST /speak`` into a WAV file."""
    tts = TTSConfig(
        provider=args.provider,
        voice_id=args.voice,
        audio_format="linear16",
        sample_rate=args.sample_rate,
        speaking_rate=args.rate,
    )
    async with client(args) as rest, working("synthesizing"):
        if args.voice is not None:
            await _check_voice(rest, args.provider, args.voice)
        data, headers = await rest.speak_rest(args.text, tts)
    # speak_rest refused an x-sample-rate that is not a rate in Hz (exit 1).
    rate = int(headers.get("x-sample-rate", args.sample_rate))
    if len(data) % 2:
        raise CliError(
            f"the server's answer to POST /speak is unusable: {len(data)} bytes of 16-bit "
            "PCM, an odd count (its last sample is cut short); check the server"
        )
    await asyncio.to_thread(write_output, args.output, audio.pcm_to_wav_bytes(data, rate))
    seconds = audio.duration_ms(len(data), rate) / 1000
    print(f"wrote {args.output}: {seconds:.2f} s at {rate} Hz ({len(data)} bytes of PCM)")
    return 0


async def cmd_token(args: argparse.Namespace) -> int:
    """``sayna token``: a LiveKit access token, as JSON (the token in full)."""
    async with client(args) as rest, working("waiting for the server"):
        token = await rest.get_livekit_token(args.room, args.name or args.identity, args.identity)
    print_json({**token.model_dump(), "token": token.token})
    return 0


async def cmd_rooms(args: argparse.Namespace) -> int:
    """``sayna rooms [ROOM]``: every LiveKit room, or one room's details, as JSON."""
    async with client(args) as rest, working("waiting for the server"):
        if args.room:
            details = await rest.get_livekit_room(args.room)
            print_json(details.model_dump())
        else:
            rooms = await rest.get_livekit_rooms()
            print_json(rooms.model_dump())
    return 0


async def cmd_hooks(args: argparse.Namespace) -> int:
    """``sayna hooks list|set|delete``: the SIP hooks table after the action, as JSON."""
    async with client(args) as rest, working("waiting for the server"):
        if args.action == "list":
            result = await rest.get_sip_hooks()
        elif args.action == "set":
            result = await rest.set_sip_hooks(
                [SipHook(host=args.host, url=args.hook_url, auth_id=args.auth_id)]
            )
        else:
            result = await rest.delete_sip_hooks(args.hosts)
    print_json(result.model_dump())
    return 0


async def cmd_recording(args: argparse.Namespace) -> int:
    """``sayna recording``: download a session's recording to ``-o`` (STREAM_ID.ogg)."""
    output = args.output or Path(f"{args.stream_id}.ogg")
    async with client(args) as rest, working("downloading"):
        data, headers = await rest.get_recording(args.stream_id)
    await asyncio.to_thread(write_output, Path(output), data)
    kind = printable(headers.get("Content-Type", "?"), lines=False)
    print(f"wrote {output}: {len(data)} bytes ({kind})")
    return 0


#: The coroutine of each command of this module, by name.
COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "health": cmd_health,
    "voices": cmd_voices,
    "speak": cmd_speak,
    "token": cmd_token,
    "rooms": cmd_rooms,
    "hooks": cmd_hooks,
    "recording": cmd_recording,
}


def add_parsers(sub: Any) -> None:
    """Add this module's commands to the subparsers ``sub`` (``health`` to ``speak``)."""
    p = add_command(
        sub,
        "health",
        "check the server is up (GET /)",
        ["sayna health --url http://127.0.0.1:3001"],
    )
    add_conn(p)
    p = add_command(
        sub,
        "voices",
        "list the server's voices by provider",
        ["sayna voices", "sayna voices --json"],
    )
    add_conn(p)
    p.add_argument("--json", action="store_true", help="print JSON (default: a table)")
    p = add_command(
        sub,
        "speak",
        "synthesize TEXT to a 16-bit WAV file with POST /speak",
        [
            "sayna speak 'Hello there' -o hello.wav",
            "sayna speak 'Hola' --provider elevenlabs --voice fake-bravo --rate 1.25 "
            "--sample-rate 16000",
        ],
    )
    add_conn(p)
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
        help="speaking rate from 0.25 to 4, 1 = normal; Sayna passes it to Google, "
        "ElevenLabs and Azure, Deepgram and Cartesia ignore it (default: %(default)s)",
    )
    p.add_argument(
        "--sample-rate",
        type=sample_rate,
        default=24000,
        metavar="HZ",
        help="output sample rate: 8000, 16000, 22050, 24000, 32000, 44100 or 48000 "
        "(default: %(default)s)",
    )


def add_livekit_sip_parsers(sub: Any) -> None:
    """Add ``token``, ``rooms``, ``hooks`` and ``recording`` to the subparsers ``sub``."""
    p = add_command(
        sub,
        "token",
        "issue a LiveKit access token for ROOM",
        ["sayna token my-room user-1", "sayna token my-room user-1 --name 'Jane Doe'"],
    )
    add_conn(p)
    p.add_argument("room", metavar="ROOM", type=non_empty, help="LiveKit room name")
    p.add_argument("identity", metavar="IDENTITY", type=non_empty, help="participant identity")
    p.add_argument("--name", default="", help="participant display name (default: the identity)")
    p = add_command(
        sub, "rooms", "list LiveKit rooms, or show one ROOM", ["sayna rooms", "sayna rooms my-room"]
    )
    add_conn(p)
    p.add_argument(
        "room",
        metavar="ROOM",
        nargs="?",
        type=non_empty,
        help="show this room (default: list all rooms)",
    )
    p = add_command(
        sub,
        "hooks",
        "SIP hooks: " + ", ".join(HOOK_ACTIONS),
        [
            "sayna hooks list",
            "sayna hooks set sip.example.com https://example.com/hook --auth-id tenant-1",
            "sayna hooks delete sip.example.com",
        ],
        "SIP hooks: " + ", ".join(HOOK_ACTIONS) + ". The action comes first, then its "
        "options (--url, --api-key).",
    )
    hooks = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    hp = add_command(hooks, "list", "show the SIP routing table", ["sayna hooks list"])
    add_conn(hp)
    hp = add_command(
        hooks,
        "set",
        "add or replace the hook of HOST",
        ["sayna hooks set sip.example.com https://example.com/hook --auth-id tenant-1"],
    )
    add_conn(hp)
    hp.add_argument("host", help="SIP host whose calls go to HOOK_URL")
    hp.add_argument("hook_url", help="webhook URL that receives the calls")
    hp.add_argument("--auth-id", default="", help="tenant the hook belongs to (default: none)")
    hp = add_command(
        hooks, "delete", "remove the hooks of HOSTS", ["sayna hooks delete sip.example.com"]
    )
    add_conn(hp)
    hp.add_argument("hosts", nargs="+", help="SIP hosts whose hooks to remove")
    p = add_command(
        sub,
        "recording",
        "download the recording of a session",
        ["sayna recording call-42", "sayna recording call-42 -o call.ogg"],
    )
    add_conn(p)
    p.add_argument("stream_id", help="the session's stream_id")
    p.add_argument(
        "-o",
        "--output",
        type=output_file,
        default=None,
        help="file to write; its folder must exist (default: STREAM_ID.ogg)",
    )
