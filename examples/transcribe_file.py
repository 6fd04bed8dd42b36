"""Stream a 16-bit WAV file to Sayna like a live microphone and print the transcript.

    sayna serve --engine local                            # terminal 1 (real speech)
    python examples/transcribe_file.py speech.wav         # terminal 2
    python examples/transcribe_file.py speech.wav --speed 4   # four times real time

Interim results overwrite one status line; each final result is printed on its own
line. The file is cut into 20 ms frames in the session's format
(``audio.wav_frames``) and sent at real-time pace (``audio.paced``), because a
streaming recogniser expects audio at the rate a microphone produces it. A file whose
rate has no whole number of samples in 20 ms (11025 Hz: 220.5) is resampled to 16 kHz
mono first, as a microphone at that rate would hear it (``WavMicrophone``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from sayna_client import (
    SaynaClient,
    SaynaError,
    STTConfig,
    STTResultMessage,
    TTSConfig,
    audio,
)
from sayna_client.agents import WavMicrophone

FRAME_MS = 20
#: The rate a file is resampled to when 20 ms of it is no whole number of samples.
RESAMPLED_RATE = 16000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="a 16-bit PCM WAV file")
    parser.add_argument("--url", default="http://127.0.0.1:3001", help="Sayna server URL")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SAYNA_API_KEY"),
        help="API key (default: $SAYNA_API_KEY)",
    )
    parser.add_argument("--provider", default="deepgram", help="STT provider")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="x real time (default 1; 0 = no pacing)"
    )
    args = parser.parse_args()
    if not args.file.is_file():
        problem = "is a directory" if args.file.is_dir() else "does not exist"
        parser.error(f"{args.file} {problem}; pass a 16-bit PCM WAV file")
    return args


class TranscriptPrinter:
    """Interim results on one rewritten line, finals on lines of their own."""

    def __init__(self) -> None:
        self.finals: list[str] = []
        self._width = 0

    def __call__(self, result: STTResultMessage) -> None:
        if result.is_final and result.transcript:
            self.finals.append(result.transcript)
            self._show(f"final:   {result.transcript}", end="\n")
        elif not result.is_final:
            self._show(f"interim: {result.transcript}", end="")
        # A speech-final with an empty transcript only marks the end of the turn.

    def _show(self, text: str, end: str) -> None:
        if not sys.stdout.isatty():  # a pipe or a file: one result per line
            print(text, flush=True)
            return
        # "\r" + padding overwrites the previous interim on a terminal.
        print("\r" + text.ljust(self._width), end=end, flush=True)
        self._width = 0 if end else len(text)


async def main(args: argparse.Namespace) -> None:
    # Reading a file blocks: do it in a thread. A file that is not 16-bit PCM WAV raises
    # SaynaValidationError, which says how to convert it.
    wav = await asyncio.to_thread(audio.read_wav, args.file)
    print(f"{args.file}: {wav.duration_ms / 1000:.2f} s, {wav.sample_rate} Hz, {wav.channels} ch")
    if wav.sample_rate * FRAME_MS % 1000 == 0:
        # Tell the server exactly what we send: the file's own rate and channel count.
        stt = STTConfig(provider=args.provider, sample_rate=wav.sample_rate, channels=wav.channels)
        frames = list(audio.wav_frames(wav, frame_ms=FRAME_MS, stt_config=stt))
    else:  # e.g. 11025 Hz: resampled to 16 kHz mono (pure Python, no extra needed)
        stt = STTConfig(provider=args.provider, sample_rate=RESAMPLED_RATE, channels=1)
        microphone = await asyncio.to_thread(
            WavMicrophone, args.file, sample_rate=RESAMPLED_RATE, speed=0, tail_ms=0
        )
        frames = [frame async for frame in microphone.frames()]
    tts = TTSConfig(provider="deepgram", voice_id="aura-asteria-en")  # unused here

    printer = TranscriptPrinter()
    async with SaynaClient(args.url, stt, tts, api_key=args.api_key) as client:
        client.register_on_stt_result(printer)
        await client.connect()
        async for frame in audio.paced(frames, frame_ms=FRAME_MS, speed=args.speed):
            await client.on_audio_input(frame)
        # The file may end mid-word: send the silence a microphone would have sent, so
        # the recogniser ends the utterance, and wait for its final result.
        await client.finish_audio()
        metrics = client.metrics
    print(f"transcript: {' '.join(printer.finals) or '(nothing recognised)'}")
    if metrics.audio_to_first_final is not None:
        print(f"first final {metrics.audio_to_first_final * 1000:.0f} ms after the first frame")


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except SaynaError as exc:
        sys.exit(f"error: {exc}")
    except OSError as exc:  # a file or folder that cannot be read or written
        sys.exit(f"error: {exc.filename or ''}: {exc.strerror or exc}")
