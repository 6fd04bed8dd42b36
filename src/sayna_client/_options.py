"""The voice session's arguments, checked once: :class:`SessionOptions`.

``SaynaClient`` and ``SaynaSyncClient`` take the same session arguments; both build a
:class:`SessionOptions`, so every argument is checked in one place, at construction,
with one message naming the problem and the fix. Pure: no I/O, no event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ._checks import check_type
from ._config import ReconnectPolicy, Timeouts, check_seconds
from .errors import SaynaValidationError
from .types import LiveKitConfig, LoadingAudioConfig, STTConfig, TTSConfig

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_MAX_QUEUE_BYTES",
    "SessionOptions",
    "check_configs",
    "check_stream_id",
    "check_without_audio",
]

#: Events one consumer (an ``events()`` iterator, the callbacks) may have queued.
DEFAULT_MAX_QUEUE = 10_000
#: Bytes of TTS audio one consumer may have queued (16 MiB, about 5 minutes of
#: 24 kHz 16-bit mono): past it the oldest events are dropped and reported.
DEFAULT_MAX_QUEUE_BYTES = 16 * 1024 * 1024
#: Seconds within which a dead server is detected by WebSocket ping/pong.
DEFAULT_HEARTBEAT = 20.0

_DEFAULT_TIMEOUTS = Timeouts()


def check_configs(
    stt_config: object = None,
    tts_config: object = None,
    livekit_config: object = None,
    loading_audio: object = None,
) -> None:
    """Raise :class:`SaynaValidationError` for a config of the wrong type (None is fine)."""
    check_type("stt_config", stt_config, STTConfig, "STTConfig(provider='deepgram')")
    check_type("tts_config", tts_config, TTSConfig, "TTSConfig(provider='deepgram')")
    check_type("livekit_config", livekit_config, LiveKitConfig, "LiveKitConfig(room_name=..)")
    check_type("loading_audio", loading_audio, LoadingAudioConfig, "LoadingAudioConfig(..)")


def check_without_audio(value: object) -> None:
    """Raise :class:`SaynaValidationError` unless ``value`` is True or False."""
    if not isinstance(value, bool):
        raise SaynaValidationError(f"without_audio must be True or False, got {value!r}")


def check_stream_id(value: object) -> None:
    """Raise :class:`SaynaValidationError` unless ``value`` is None or a string that can
    name a recording path."""
    if value is not None and (not isinstance(value, str) or "/" in value or ".." in value):
        raise SaynaValidationError(
            "stream_id must be a string without '/' or '..' (it names the recording path)"
        )


def _positive_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value > 0


@dataclass(frozen=True)
class SessionOptions:
    """Everything a voice session is built from, each value checked (see the clients'
    docstrings for what each means).

    Raises:
        SaynaValidationError: a bad value, named with the fix.
    """

    stt_config: Optional[STTConfig] = None
    tts_config: Optional[TTSConfig] = None
    livekit_config: Optional[LiveKitConfig] = None
    without_audio: bool = False
    stream_id: Optional[str] = None
    loading_audio: Optional[LoadingAudioConfig] = None
    timeouts: Timeouts = _DEFAULT_TIMEOUTS
    heartbeat: Optional[float] = DEFAULT_HEARTBEAT
    max_queue: int = DEFAULT_MAX_QUEUE
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    reconnect: Optional[ReconnectPolicy] = None

    def __post_init__(self) -> None:
        check_configs(self.stt_config, self.tts_config, self.livekit_config, self.loading_audio)
        check_without_audio(self.without_audio)
        if not self.without_audio and (self.stt_config is None or self.tts_config is None):
            raise SaynaValidationError(
                "stt_config and tts_config are required when audio is enabled; pass both, "
                "or without_audio=True for a control-only session"
            )
        check_stream_id(self.stream_id)
        if self.timeouts is None:  # the clients' "not given"
            object.__setattr__(self, "timeouts", _DEFAULT_TIMEOUTS)
        check_type("timeouts", self.timeouts, Timeouts, "Timeouts(connect=5)")
        check_type("reconnect", self.reconnect, ReconnectPolicy, "ReconnectPolicy(max_attempts=10)")
        check_seconds("heartbeat", self.heartbeat)
        if not _positive_int(self.max_queue):
            raise SaynaValidationError(
                f"max_queue must be a positive integer, got {self.max_queue!r}"
            )
        if not _positive_int(self.max_queue_bytes):
            raise SaynaValidationError(
                "max_queue_bytes must be a positive integer (bytes of audio a consumer "
                "may have queued, e.g. 16 * 1024 * 1024)"
            )
