"""Optional voice-agent helpers over the session API (no protocol change).

* :class:`SentenceSegmenter`: cut an LLM's token stream into ``speak``-sized chunks.
* :class:`SpeechHandle`: what ``client.speak()`` / ``client.speak_stream()`` return:
  await it, interrupt it, read what the user heard.
* :class:`BargeIn`: stop the agent when the user talks over it (``client.barge_in()``).
* :class:`AudioOutput`: the protocol of a speaker the client writes TTS audio to.
* :func:`instrument`: OpenTelemetry spans and metrics of the session (extra ``otel``).

See ``docs/agents.md``.
"""

from .barge_in import DEFAULT_BACKCHANNELS, DEFAULT_FILLERS, BargeIn, BargeInEvent
from .devices import (
    AudioDeviceError,
    Microphone,
    PacedSpeaker,
    SoundDeviceMicrophone,
    SoundDeviceSpeaker,
    Speaker,
    WavMicrophone,
)
from .handle import SpeechHandle
from .metrics import TurnHistory, TurnMetrics, TurnRecord, percentile
from .otel import Telemetry, instrument
from .segmenter import DEFAULT_ABBREVIATIONS, SentenceSegmenter
from .speech import AudioOutput, SpeechQueue, bytes_per_second
from .speech_sync import SyncSpeechHandle
from .watchdog import IdleEvent, IdleWatchdog

__all__ = [
    "DEFAULT_ABBREVIATIONS",
    "DEFAULT_BACKCHANNELS",
    "DEFAULT_FILLERS",
    "AudioDeviceError",
    "AudioOutput",
    "BargeIn",
    "BargeInEvent",
    "IdleEvent",
    "IdleWatchdog",
    "Microphone",
    "PacedSpeaker",
    "SentenceSegmenter",
    "SoundDeviceMicrophone",
    "SoundDeviceSpeaker",
    "Speaker",
    "SpeechHandle",
    "SpeechQueue",
    "SyncSpeechHandle",
    "Telemetry",
    "TurnHistory",
    "TurnMetrics",
    "TurnRecord",
    "WavMicrophone",
    "bytes_per_second",
    "instrument",
    "percentile",
]
