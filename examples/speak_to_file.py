"""Synthesize text to playable WAV files, once over REST and once over the WebSocket.

    sayna serve                                   # terminal 1: a local Sayna server
    python examples/speak_to_file.py "Hello from Sayna"   # terminal 2

writes ``speak-rest.wav`` (one ``POST /speak`` request) and ``speak-ws.wav`` (a WebSocket
session whose streamed audio chunks go straight into a ``WavWriter``). Sayna returns
headerless 16-bit mono PCM for ``linear16``; the helpers in ``sayna_client.audio`` add
the WAV header so any player opens the files.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from sayna_client import SaynaClient, SaynaError, STTConfig, TTSConfig, audio


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="?", default="Hello from Sayna. Have a nice day!")
    parser.add_argument("--url", default="http://127.0.0.1:3001", help="Sayna server URL")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SAYNA_API_KEY"),
        help="API key (default: $SAYNA_API_KEY)",
    )
    parser.add_argument("--provider", default="deepgram", help="TTS provider")
    parser.add_argument("--voice", default="aura-asteria-en", help="voice_id (see `sayna voices`)")
    parser.add_argument("--sample-rate", type=int, default=24000)
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="where to write the WAVs")
    return parser.parse_args()


async def speak_over_rest(args: argparse.Namespace, tts: TTSConfig) -> None:
    path = args.out_dir / "speak-rest.wav"
    # REST only: no stt_config needed, so open the client as control-only.
    async with SaynaClient(args.url, without_audio=True, api_key=args.api_key) as client:
        pcm, headers = await client.speak_rest(args.text, tts)
    # The server says which rate it produced; trust it over what we asked for.
    rate = int(headers["x-sample-rate"])
    # File writes are blocking: keep them off the event loop.
    await asyncio.to_thread(audio.write_wav, path, pcm, rate)
    seconds = audio.duration_ms(len(pcm), rate) / 1000
    print(f"REST:      {path} ({seconds:.2f} s at {rate} Hz, {headers['x-audio-format']})")


async def speak_over_websocket(args: argparse.Namespace, tts: TTSConfig) -> None:
    path = args.out_dir / "speak-ws.wav"
    stt = STTConfig(provider=args.provider)  # a session always carries both configs
    # The writer is opened first and closed last: leaving `async with SaynaClient`
    # disconnects, which lets the audio callback finish every chunk already received
    # before the WAV header is finalised.
    with audio.WavWriter(path, sample_rate=tts.sample_rate) as wav:
        async with SaynaClient(args.url, stt, tts, api_key=args.api_key) as client:
            client.register_on_tts_audio(wav.write)  # one call per binary frame
            await client.connect()
            # wait=True returns once the server reports the text fully synthesized.
            await client.speak(args.text, wait=True, timeout=60)
            stream_id = client.received_stream_id
    print(
        f"WebSocket: {path} ({wav.duration_ms / 1000:.2f} s at {tts.sample_rate} Hz, "
        f"stream_id={stream_id})"
    )


async def main(args: argparse.Namespace) -> None:
    await asyncio.to_thread(args.out_dir.mkdir, parents=True, exist_ok=True)
    tts = TTSConfig(
        provider=args.provider,
        voice_id=args.voice,
        audio_format="linear16",  # raw 16-bit PCM: what the WAV helpers expect
        sample_rate=args.sample_rate,
    )
    await speak_over_rest(args, tts)
    await speak_over_websocket(args, tts)


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except SaynaError as exc:
        sys.exit(f"error: {exc}")
    except OSError as exc:  # a file or folder that cannot be read or written
        sys.exit(f"error: {exc.filename or ''}: {exc.strerror or exc}")
