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
from .._wav import ReplacingFile
from ..agents.devices import (
    Microphone,
    PacedSpeaker,
    SoundDeviceMicrophone,
    SoundDeviceSpeaker,
    WavMicrophone,
)
from ..agents.talk import Line, Reply, RuleTable, echo, load_reply, rules_from_json, talk
from ..client import SaynaClient
from ..errors import SaynaError, SaynaValidationError
from ..types import STTConfig, TTSConfig
from .common import add_command, add_conn, cannot_write

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
    add_conn(parser)
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
            return load_reply(args.reply)
        if args.rules is not None:
            return rules_from_json(args.rules.read_bytes())
        if args.agent == "rules":
            return RuleTable()
    except SaynaValidationError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return echo


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
    except SaynaError as exc:  # no sound card, PortAudio or devices extra
        raise CliError(f"{exc}; {_FILES_HINT}", EXIT_FAILURE) from exc


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

    def show(line: Line) -> None:
        print(line, flush=True)

    async with SaynaClient(args.url, stt, tts, api_key=args.api_key) as client:
        await client.connect()
        if args.input is None:
            print("listening: speak now (Ctrl-C to stop)", file=sys.stderr, flush=True)
        async with speaker:
            try:
                await talk(
                    client,
                    microphone,
                    reply,
                    speaker=speaker,
                    barge_in=not args.no_barge_in,
                    max_seconds=args.max_seconds,
                    on_line=show,
                )
            except (SaynaError, OSError):
                raise
            except Exception as exc:  # the agent's own code failed: one line, not a trace
                raise CliError(f"the agent's reply failed: {exc!r}", EXIT_FAILURE) from exc
