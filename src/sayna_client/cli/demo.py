"""``sayna demo``: the whole Sayna flow on an embedded local server, step by step."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from .. import audio
from .._cli_util import non_empty, non_negative_float, output_dir
from ..client import SaynaClient
from ..protocol.events import TTSPlaybackCompleteMessage
from ..types import STTConfig, TTSConfig
from .common import add_command, write_output
from .transcribe import stream_and_listen

__all__ = ["DEMO_HINT", "DEMO_TEXT", "add_parser", "cmd_demo"]

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
    from .._wer import word_error_rate
    from ..server import LocalServer

    engine = "local" if args.engine == "auto" else args.engine
    if engine == "local" and _local_missing():
        print(
            "error: sayna demo speaks and listens with the local engine, whose `local` "
            "extra is not installed (or only in part: the modules it needs first, "
            f"{', '.join(_local_missing())}, are missing). Install it with:\n"
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
            wav = audio.pcm_to_wav_bytes(data, int(headers["x-sample-rate"]))
            await asyncio.to_thread(write_output, wav_path, wav)
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
            stream_id = client.received_stream_id or ""

            async def transcribed(audio_bytes: int) -> int:
                # The embedded server says when its recogniser has decoded all the audio
                # (no clock: a loaded machine's engine is slower, and still heard).
                return await server.wait_transcribed(stream_id, audio_bytes)

            finals = await stream_and_listen(
                client, frames, 20, args.speed, "   streaming", transcribed=transcribed
            )
            heard = " ".join(finals)
            print(f"8. transcript: heard {heard!r}" if heard else "8. transcript: (nothing heard)")
            if engine == "local":
                print(f"   word error rate: {word_error_rate(args.text, heard):.0%}")
    print("Done: the whole Sayna flow ran locally, no account and no network.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``sayna demo``: run the flow on its own event loop; returns the exit status."""
    return asyncio.run(_demo(args))


def add_parser(sub: Any) -> None:
    """Add ``demo`` to the subparsers ``sub``."""
    p = add_command(
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
    p.add_argument(
        "--text", type=non_empty, default=DEMO_TEXT, help="sentence to speak (default: %(default)r)"
    )
    p.add_argument(
        "--speed",
        type=non_negative_float,
        default=1.0,
        help="streaming speed x real time, 0 = as fast as possible (default: %(default)s)",
    )
    p.add_argument(
        "--output-dir",
        type=output_dir,
        default=None,
        help="where to write sayna-demo-speak.wav (default: a new temporary directory)",
    )
