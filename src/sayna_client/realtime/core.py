"""What the voice session's parts need of it: :class:`SessionCore`.

The parts (:mod:`.speaking`, :mod:`.commands`, :mod:`.drain`, :mod:`.lane`,
:mod:`.reconnect`) are typed against this protocol, not against
:class:`~.session.VoiceSession` itself, so imports run one way: the session imports its
parts, no part imports the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Protocol

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from .._config import ReconnectPolicy
    from ..types import STTConfig, TTSConfig
    from .connection import WebSocketConnection
    from .conversation import SessionTracker
    from .hold import AudioHold
    from .hub import EventHub
    from .speaking import Speaking

__all__ = ["AudioSink", "SessionCore"]


class AudioSink(Protocol):
    """Where ``on_audio_input`` sends a frame (the session's audio input part)."""

    async def on_audio_input(self, audio_data: Buffer) -> None: ...

    async def replay(self, hold: AudioHold) -> tuple[int, int]:
        """Send the frames held during a reconnection, counted as the session's."""
        ...


class SessionCore(Protocol):
    """The session as its parts see it."""

    hub: EventHub
    tracker: SessionTracker
    speaking: Speaking
    stt_config: Optional[STTConfig]
    tts_config: Optional[TTSConfig]
    reconnect_policy: Optional[ReconnectPolicy]

    @property
    def audio_in(self) -> AudioSink: ...

    @property
    def reconnecting(self) -> bool:
        """True while an automatic reconnection is in progress."""
        ...

    def ready_connection(self) -> WebSocketConnection:
        """The ready connection for a send, or the error saying why there is none."""
        ...

    def held_audio(self) -> Optional[AudioHold]:
        """Where audio goes while an automatic reconnection runs, until it replayed what
        it held (None: send it now)."""
        ...

    def report(self, event: Any) -> None:
        """An SDK-side problem: to the log, the event stream and the error callbacks."""
        ...

    def redact(self, text: str) -> str:
        """``text`` with the client's secrets masked (for what goes to a log)."""
        ...

    async def reopen(self) -> None:
        """One attempt of an automatic reconnection."""
        ...

    async def close_refused(self) -> None:
        """The reconnection gave up: close the socket a refused config left open."""
        ...

    def end_of_session(self) -> None:
        """The session is over for good."""
        ...
