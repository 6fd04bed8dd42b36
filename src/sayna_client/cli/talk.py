"""``sayna talk``: a voice conversation from the terminal (see ``agents.talk``).

The microphone and the speaker (extra ``devices``), or WAV files with ``--input`` /
``--output``; the agent is the built-in echo or rule table, or the user's own
``reply(text)`` function (``--reply path/to/file.py:function_name``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Callable, Optional

from .. import audio
from .._cli_util import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CliError,
    input_file,
    non_negative_float,
    output_file,
    sample_rate,
)
from .._http_errors import printable
from .._wav import ReplacingFile
from ..agents.devices import (
    AudioDeviceError,
    Microphone,
    PacedSpeaker,
    SoundDeviceMicrophone,
    SoundDeviceSpeaker,
    WavMicrophone,
)
from ..agents.talk import (
    Line,
    Reply,
    RuleTable,
    _pieces,
    echo,
    load_reply,
    rules_from_json,
    talk,
)
from ..client import SaynaClient
from ..errors import (
    SaynaConnectionClosedError,
    SaynaConnectionError,
    SaynaNotConnectedError,
    SaynaValidationError,
)
from ..protocol.events import ConnectionClosed
from ..types import STTConfig, TTSConfig
from .common import (
    add_command,
    add_conn,
    cannot_write,
    connection_lost_reported,
    stream_timeouts,
)

__all__ = ["add_parser", "run"]

#: The session's STT rate (the microphone is resampled to it).
STT_RATE = 16000
_FILES_HINT = "or talk through WAV files: sayna talk --input caller.wav --output agent.wav"


def _rules_file(text: str) -> Path:
    """``--rules``: a JSON file (JSON text given in its place is named as such)."""
    if text.lstrip().startswith("{"):
        raise argparse.ArgumentTypeError(
            "takes a file, not JSON text: save the table in a file, e.g. rules.json, and "
            "pass --rules rules.json"
        )
    return input_file(text)


def add_parser(sub: Any) -> None:
    """Add ``talk`` and its options to the subparsers ``sub``."""
    parser = add_command(
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
    add_conn(parser, streaming=True)
    parser.add_argument(
        "--input",
        type=input_file,
        default=None,
        metavar="WAV",
        help="the caller's audio from a 16-bit PCM WAV file (any rate) instead of the "
        "microphone (default: the microphone; needs the devices extra)",
    )
    parser.add_argument(
        "--output",
        type=output_file,
        default=None,
        metavar="WAV",
        help="write the agent's voice to a WAV file instead of the speaker (default: the "
        "speaker; needs the devices extra)",
    )
    parser.add_argument(
        "--agent",
        choices=["echo", "rules"],
        default="echo",
        help="the built-in agent: echo says back what it heard, rules answers from a rule "
        "table (default: %(default)s)",
    )
    parser.add_argument(
        "--rules",
        type=_rules_file,
        default=None,
        metavar="FILE",
        help='the rule table of --agent rules: a JSON file holding {"regex": "answer", ...}, '
        "e.g. --rules rules.json (default: a small built-in table: hello, how are you, "
        "your name, help, goodbye)",
    )
    parser.add_argument(
        "--reply",
        default=None,
        metavar="MODULE:FUNCTION",
        help="your own agent instead: an async function reply(text) yielding text pieces, "
        "as path/to/file.py:function_name or module.name:function_name (default: none)",
    )
    parser.add_argument(
        "--provider", default="deepgram", help="STT and TTS provider (default: %(default)s)"
    )
    parser.add_argument("--voice", default=None, help="TTS voice id (default: the provider's)")
    parser.add_argument(
        "--sample-rate",
        type=sample_rate,
        default=24000,
        metavar="HZ",
        help="TTS sample rate; the speaker is resampled from it (default: %(default)s)",
    )
    parser.add_argument(
        "--speed",
        type=non_negative_float,
        default=1.0,
        help="--input streaming speed x real time, 0 = as fast as possible (default: %(default)s)",
    )
    parser.add_argument(
        "--no-barge-in",
        action="store_true",
        help="let the agent finish even when you talk over it (default: you interrupt it)",
    )
    parser.add_argument(
        "--max-seconds",
        type=non_negative_float,
        default=None,
        help="end the conversation after this many seconds (default: no limit; Ctrl-C ends it)",
    )


def _reply(args: argparse.Namespace) -> Callable[[str], Any]:
    try:
        if args.reply is not None:
            return _guarded(load_reply(args.reply), f"--reply {args.reply}")
        if args.rules is not None:
            return rules_from_json(args.rules.read_bytes())
        if args.agent == "rules":
            return RuleTable()
    except SaynaValidationError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return echo


def _guarded(reply: Reply, option: str) -> Reply:
    """``reply``, whose failures are the agent's: whatever it raises (its LLM
    unreachable, an ``OSError``; a bug, a ``KeyError``) ends the conversation with
    ``the agent's reply (--reply ...) failed: ...``, never blamed on the server."""

    async def guarded(text: str) -> AsyncIterator[str]:
        try:
            async for piece in _pieces(reply, text):
                yield piece
        except Exception as exc:
            raise CliError(f"the agent's reply ({option}) failed: {exc!r}", EXIT_FAILURE) from exc

    return guarded


class _Recording:
    """``--output``: the agent's voice, written beside the file as it plays and put in
    its place at the end, so a conversation that fails leaves the old file as it was."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.path = path
        with cannot_write(path):
            self._file = ReplacingFile(path)
        self._writer = audio.WavWriter(self._file.file, sample_rate)
        self._failure: Optional[OSError] = None

    def write(self, chunk: bytes) -> None:
        """The speaker's sink (on the loop): a write that fails (a full disk) is kept
        for :meth:`end`, and the audio after it dropped."""
        if self._failure is not None:
            return
        try:
            self._writer.write(chunk)
        except OSError as exc:
            self._failure = exc

    @property
    def recorded(self) -> bool:
        return self._writer.frames_written > 0

    def end(self, keep: bool) -> None:
        """Finish the WAV and put it in place (``keep``), or delete it.

        Raises:
            CliError: ``cannot write PATH: REASON`` (with ``keep``: a write failed
                meanwhile, or now; the file is then left as it was).
        """
        with cannot_write(self.path):
            if keep and self._failure is None:
                try:
                    self._writer.close()  # the header's sizes
                except BaseException:
                    self._file.discard()
                    raise
                self._file.commit()
                return
            with contextlib.suppress(OSError):
                self._writer.close()  # or its wave object would write to a closed file
            self._file.discard()
            if keep and self._failure is not None:
                raise self._failure


def _device_problem(exc: AudioDeviceError) -> str:
    """The sound card's problem with the fix in this command's terms (its options
    instead of the library's ``device=...`` and file classes)."""
    instead = {
        "input": "or read the caller from a WAV file: --input caller.wav",
        "output": "or write the agent's voice to a WAV file: --output agent.wav",
    }.get(exc.kind, _FILES_HINT)
    return f"{exc.problem}; {exc.remedy}, {instead}"


def _devices(args: argparse.Namespace) -> tuple[Microphone, PacedSpeaker, Optional[_Recording]]:
    """The microphone, the speaker and the ``--output`` recording (or None)."""
    try:
        if args.input is not None:
            microphone: Microphone = WavMicrophone(
                args.input, sample_rate=STT_RATE, speed=args.speed
            )
        else:
            microphone = SoundDeviceMicrophone(STT_RATE)
        if args.output is not None:
            recording = _Recording(args.output, args.sample_rate)
            return microphone, PacedSpeaker(args.sample_rate, sink=recording.write), recording
        return microphone, SoundDeviceSpeaker(args.sample_rate), None
    except SaynaValidationError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    except AudioDeviceError as exc:  # no sound card, PortAudio or devices extra
        raise CliError(_device_problem(exc), EXIT_FAILURE) from exc


async def run(args: argparse.Namespace) -> int:
    """Run ``sayna talk``; returns the exit status (errors raise ``CliError``/``SaynaError``).

    With ``--output``, the file is replaced only once the conversation ended (or was
    ended with Ctrl-C after the agent said something): any failure leaves it as it was.
    """
    reply = _reply(args)
    microphone, speaker, recording = _devices(args)
    try:
        await _converse(args, microphone, reply, speaker)
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C: keep what was said
        if recording is not None:
            recording.end(keep=recording.recorded)
        raise
    except BaseException:
        if recording is not None:
            recording.end(keep=False)
        raise
    if recording is not None:
        recording.end(keep=True)
    return 0


async def _converse(
    args: argparse.Namespace, microphone: Microphone, reply: Reply, speaker: PacedSpeaker
) -> None:
    stt = STTConfig(provider=args.provider, sample_rate=STT_RATE)
    tts = TTSConfig(provider=args.provider, voice_id=args.voice, sample_rate=args.sample_rate)
    lost: list[ConnectionClosed] = []
    closed = asyncio.Event()

    def show(line: Line) -> None:
        # (the transcript and a TTS error are the server's words: no control sequence
        # reaches the terminal)
        print(printable(str(line)), flush=True)

    def on_close(info: Any) -> None:
        if isinstance(info, ConnectionClosed) and not info.initiated_by_client:
            lost.append(info)
        closed.set()

    with connection_lost_reported():
        async with SaynaClient(
            args.url, stt, tts, api_key=args.api_key, timeouts=stream_timeouts(args)
        ) as client:
            client.register_on_close(on_close)
            await client.connect()
            if args.input is None:
                microphone = _Announced(microphone)
            try:
                async with speaker:
                    await talk(
                        client,
                        microphone,
                        reply,
                        speaker=speaker,
                        barge_in=not args.no_barge_in,
                        max_seconds=args.max_seconds,
                        on_line=show,
                    )
            except AudioDeviceError as exc:  # a listed device that cannot be opened
                raise CliError(_device_problem(exc), EXIT_FAILURE) from exc
            except (SaynaNotConnectedError, SaynaConnectionError) as exc:
                # The server or the network closed the session: one line saying so, not
                # the SDK's advice to call client.connect(). The close callback says
                # why (it may run just after the send failed).
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(closed.wait(), 5.0)
                if lost:
                    raise _lost(lost[0].message) from exc
                if isinstance(exc, SaynaConnectionClosedError):
                    raise _lost(str(exc)) from exc
                raise
            if not client.connected:  # the conversation ended because the session did
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(closed.wait(), 5.0)
            if lost:
                raise _lost(lost[0].message)


class _Announced:
    """The sound card's microphone, which says ``listening: speak now`` once it is open
    (its first frame), not before: a device that cannot be opened says only that."""

    def __init__(self, microphone: Microphone) -> None:
        self._microphone = microphone

    async def frames(self) -> AsyncIterator[bytes]:
        frames = self._microphone.frames()
        try:
            announced = False
            async for frame in frames:
                if not announced:
                    print("listening: speak now (Ctrl-C to stop)", file=sys.stderr, flush=True)
                    announced = True
                yield frame
        finally:
            close = getattr(frames, "aclose", None)
            if close is not None:
                await close()  # the device's stream, now rather than when collected


def _lost(reason: str) -> CliError:
    return CliError(
        f"the connection to the server was lost during the conversation ({reason})",
        EXIT_FAILURE,
    )
