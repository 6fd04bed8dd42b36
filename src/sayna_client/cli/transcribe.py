"""``sayna transcribe``: stream a WAV file like a microphone and print what was heard.

:func:`stream_and_listen` is the streaming half, shared with ``sayna demo``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any, Callable, Optional

from .. import audio
from .._cli_util import EXIT_USAGE, CliError, input_file, non_negative_float
from .._http_errors import printable
from ..agents.devices import WavMicrophone
from ..client import SaynaClient
from ..errors import (
    SaynaConnectionError,
    SaynaNotConnectedError,
    SaynaTimeoutError,
    SaynaValidationError,
)
from ..protocol.events import ConnectionClosed, ErrorMessage, STTResultMessage
from ..types import STTConfig, TTSConfig
from .common import (
    Progress,
    add_command,
    add_conn,
    connection_lost_reported,
    print_json,
    stream_timeouts,
    working,
)

__all__ = ["add_parser", "cmd_transcribe", "stream_and_listen"]

#: The frame length files are streamed in.
FRAME_MS = 20
#: The rate a file is resampled to when :data:`FRAME_MS` is no whole number of its samples.
RESAMPLED_RATE = 16000


async def stream_and_listen(
    client: SaynaClient,
    frames: Sequence[bytes],
    frame_ms: int,
    speed: float,
    label: str,
    errors: Optional[list[str]] = None,
    transcribed: Optional[Callable[[int], Awaitable[int]]] = None,
) -> list[str]:
    """Stream ``frames`` paced at ``speed`` × real time; return the final transcripts.

    Returns once the server has nothing more to say. With ``transcribed`` (a server in
    this process, such as ``sayna demo``'s), the server says so itself:
    ``transcribed(sent)`` waits until it has decoded the session's first ``sent``
    bytes of audio and returns how many ``stt_result`` messages it sent for them
    (:meth:`~sayna_client.server.LocalServer.wait_transcribed`; the session must have
    sent no audio before this call); listening ends when that many have arrived, so a
    slow or loaded machine takes longer but hears the same. Without it (a remote
    server, which cannot be asked), listening ends when no turn is open and nothing
    new came for a second after the audio ends (at most 15 s; 5 s when nothing at all
    was heard). The server's ``error`` messages meanwhile (the engine failed on part
    of the audio, say) are printed on stderr as ``error: MESSAGE`` once streaming
    ends, and appended to ``errors`` when it is given: the transcript may then miss
    part of the audio. So is a connection lost midway (the server or the network
    closed it): streaming stops there and the transcripts heard before it are
    returned.
    """
    finals: list[str] = []
    reported: list[str] = [] if errors is None else errors
    loop = asyncio.get_running_loop()
    # A turn is open from its first words until its speech-final; recognisers may send
    # several turns per stream (one per utterance).
    turn_open = [False]
    last_result = [loop.time()]
    changed = asyncio.Event()
    progress = Progress(label, len(frames) * frame_ms / 1000, "s")
    latest = [""]
    received = [0]

    def on_result(result: STTResultMessage) -> None:
        received[0] += 1
        if result.is_final and result.transcript:
            finals.append(result.transcript)
        latest[0] = result.transcript or latest[0]
        turn_open[0] = not result.is_speech_final
        last_result[0] = loop.time()
        changed.set()

    def on_error(event: Any) -> None:
        if isinstance(event, ErrorMessage):  # the server's error messages
            reported.append(event.message)

    unsubscribe = client.register_on_stt_result(on_result)
    unsubscribe_errors = client.register_on_error(on_error)
    closed = [False]
    lost: list[ConnectionClosed] = []
    ended = asyncio.Event()

    def on_close(info: Any) -> None:
        closed[0] = True  # no more results will come
        if isinstance(info, ConnectionClosed) and not info.initiated_by_client:
            lost.append(info)
        ended.set()
        changed.set()

    unsubscribe_close = client.register_on_close(on_close)
    sent = 0
    try:
        try:
            async for frame in audio.paced(frames, frame_ms=frame_ms, speed=speed):
                await client.on_audio_input(frame)
                sent += 1
                progress.update(sent * frame_ms / 1000, latest[0])
            # The file ends where it ends, maybe mid-word: trailing silence in the
            # session's own format lets the recogniser close the last utterance.
            try:
                await client.finish_audio(timeout=15.0)
            except SaynaTimeoutError:
                pass  # a recogniser still busy: the wait below tells when it is done
        except (SaynaNotConnectedError, SaynaConnectionError):
            # The connection dropped: keep what was heard, report the drop below. The
            # close callback says why (it may run just after the send failed).
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(ended.wait(), 5.0)
            if not lost:
                raise
        if closed[0]:
            pass  # nothing more will come
        elif transcribed is not None:
            # No clock: the server's count of results for this audio says when all came.
            expected = await transcribed(client.metrics.audio_bytes_sent)
            while received[0] < expected and not closed[0]:
                changed.clear()
                await changed.wait()
        else:
            await _wait_until_quiet(finals, latest, turn_open, last_result, changed, closed)
    finally:
        progress.close()
        unsubscribe()
        unsubscribe_errors()
        unsubscribe_close()
    if lost:
        reported.append(
            "the connection to the server was lost before the transcription finished "
            f"({lost[0].message}); the transcript holds only what was heard before"
        )
    for message in reported:
        print(f"error: {printable(message)}", file=sys.stderr)
    return finals


async def _wait_until_quiet(
    finals: list[str],
    latest: list[str],
    turn_open: list[bool],
    last_result: list[float],
    changed: asyncio.Event,
    closed: list[bool],
) -> None:
    """A remote server may still be decoding a backlog: done once no turn is open and
    nothing new arrived for a second (at most 15 s; nothing heard yet: 5 s for its
    first result), or the connection closed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (15.0 if finals or latest[0] else 5.0)
    while True:
        now = loop.time()
        quiet = now - last_result[0]
        heard = bool(finals or latest[0])
        ended = heard and not turn_open[0]
        if now >= deadline or (ended and quiet >= 1.0) or closed[0]:
            break
        wait = min(deadline - now, 1.0 - quiet) if ended else deadline - now
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), wait)
        except asyncio.TimeoutError:
            pass


def _read_wav(path: Path) -> audio.WavAudio:
    try:
        wav = audio.read_wav(path)
    except SaynaValidationError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if not wav.pcm:
        raise CliError(f"{path} holds no audio; pass a WAV file with speech in it", EXIT_USAGE)
    return wav


async def cmd_transcribe(args: argparse.Namespace) -> int:
    """``sayna transcribe FILE``: print the transcript (text, or JSON with ``--json``).

    Nothing heard is not an error: the transcript is empty (no line on stdout; with
    ``--json``, an empty ``transcript``), stderr says ``(no speech heard in FILE)``, and
    the exit status is 0. A server ``error`` while streaming (the transcript may miss
    part of the file) is printed on stderr as ``error: MESSAGE``; what was heard still
    goes to stdout, and the exit status is 1. So is a connection lost midway: what was
    heard before it is printed, and one ``error:`` line says it was lost, and why.
    """
    wav = await asyncio.to_thread(_read_wav, args.file)
    if wav.sample_rate * FRAME_MS % 1000 == 0:  # streamed at the file's own rate
        stt = STTConfig(provider=args.provider, sample_rate=wav.sample_rate, channels=wav.channels)
        frames = list(audio.wav_frames(wav, frame_ms=FRAME_MS, stt_config=stt))
    else:
        # 20 ms is no whole number of samples (220.5 at 11025 Hz): resampled to 16 kHz
        # mono as a microphone at that rate would be (pure Python, no extra needed).
        stt = STTConfig(provider=args.provider, sample_rate=RESAMPLED_RATE, channels=1)
        microphone = await asyncio.to_thread(
            WavMicrophone, args.file, sample_rate=RESAMPLED_RATE, speed=0, tail_ms=0
        )
        frames = [frame async for frame in microphone.frames()]
    tts = TTSConfig(provider=args.provider)
    errors: list[str] = []
    with connection_lost_reported():
        async with SaynaClient(
            args.url, stt, tts, api_key=args.api_key, timeouts=stream_timeouts(args)
        ) as client:
            async with working("connecting"):
                await client.connect()
            finals = await stream_and_listen(
                client, frames, FRAME_MS, args.speed, "transcribing", errors
            )
    text = " ".join(finals)
    if args.json:
        print_json({"transcript": text, "segments": finals})
    elif text:
        print(printable(text))  # a server's words: no control sequence reaches the terminal
    if not text and not errors:
        print(f"(no speech heard in {args.file})", file=sys.stderr)
    return 1 if errors else 0


def add_parser(sub: Any) -> None:
    """Add ``transcribe`` to the subparsers ``sub``."""
    p = add_command(
        sub,
        "transcribe",
        "stream a 16-bit PCM WAV file like a microphone and print the transcript",
        ["sayna transcribe speech.wav", "sayna transcribe speech.wav --speed 0 --json"],
        "stream a 16-bit PCM WAV file like a microphone and print the transcript\n\n"
        "When nothing is heard, stdout stays empty (--json: an empty transcript), stderr\n"
        "says so, and the exit status is 0. A server error while streaming (part of the\n"
        "file may be missing) is printed on stderr and the exit status is 1; so is a\n"
        "connection lost midway, after printing what was heard before it.",
    )
    add_conn(p, streaming=True)
    p.add_argument(
        "file",
        type=input_file,
        help="a 16-bit PCM WAV file, mono or stereo, at any rate (streamed at its own rate; "
        "one where 20 ms is not a whole number of samples, such as 11025 Hz, is resampled "
        "to 16000 Hz mono)",
    )
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
