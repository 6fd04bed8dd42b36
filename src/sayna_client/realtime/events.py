"""The SDK's own events: what the client reports about itself rather than the server.

A consumer fell behind (:class:`EventsDropped`), a callback raised
(:class:`CallbackError`), the session is being re-established (:class:`Reconnecting`,
:class:`Reconnected`), held audio overflowed (:class:`AudioDropped`). They are not
part of the wire protocol (:mod:`sayna_client.protocol.events` has those), so they
live beside the code that makes them. Pure data: no I/O, no asyncio.
"""

from typing import ClassVar, Literal, Optional, Union

from ..protocol.events import (
    ConnectionClosed,
    ErrorMessage,
    LocalEvent,
    MalformedMessage,
    ServerEvent,
    TTSAudio,
    UnknownEvent,
)

__all__ = [
    "AudioDropped",
    "CallbackError",
    "ErrorEvent",
    "Event",
    "EventsDropped",
    "Reconnected",
    "Reconnecting",
]


class CallbackError(LocalEvent):
    """A user callback raised. The session keeps running; the exception is ``error``."""

    __slots__ = ("callback", "error", "event_type")
    type: ClassVar[Literal["callback_error"]] = "callback_error"

    def __init__(self, callback: str, event_type: str, error: BaseException) -> None:
        self.callback = callback
        self.event_type = event_type
        self.error = error

    @property
    def message(self) -> str:
        return (
            f"Callback {self.callback} raised {type(self.error).__name__} while handling "
            f"{self.event_type!r}: {self.error}"
        )


class EventsDropped(LocalEvent):
    """A consumer fell behind and its bounded queue overflowed: ``count`` events were
    discarded for that consumer only (the oldest ones). Delivered before the next event."""

    __slots__ = ("consumer", "count")
    type: ClassVar[Literal["events_dropped"]] = "events_dropped"

    def __init__(self, consumer: str, count: int) -> None:
        self.consumer = consumer
        self.count = count

    @property
    def message(self) -> str:
        return f"{self.count} events were dropped for slow consumer {self.consumer}"


class Reconnecting(LocalEvent):
    """The session was lost and will be re-established after ``delay`` seconds."""

    __slots__ = ("attempt", "code", "delay", "reason")
    type: ClassVar[Literal["reconnecting"]] = "reconnecting"

    def __init__(self, attempt: int, delay: float, code: Optional[int], reason: str) -> None:
        self.attempt = attempt
        self.delay = delay
        self.code = code
        self.reason = reason


class Reconnected(LocalEvent):
    """The session is ready again; ``replayed_bytes`` of held audio were re-sent."""

    __slots__ = ("attempt", "replayed_bytes", "replayed_frames")
    type: ClassVar[Literal["reconnected"]] = "reconnected"

    def __init__(self, attempt: int, replayed_frames: int, replayed_bytes: int) -> None:
        self.attempt = attempt
        self.replayed_frames = replayed_frames
        self.replayed_bytes = replayed_bytes


class AudioDropped(LocalEvent):
    """Audio that will not reach the server: held during an outage and discarded (the
    reconnect buffer overflowed, the reconnection gave up or was stopped), or, with
    ``unconfirmed`` True, sent to a server the heartbeat then found dead, after the last
    Ping it answered (it may or may not have taken them; they are not replayed)."""

    __slots__ = ("bytes", "frames", "unconfirmed")
    type: ClassVar[Literal["audio_dropped"]] = "audio_dropped"

    def __init__(self, frames: int, bytes: int, *, unconfirmed: bool = False) -> None:
        self.frames = frames
        self.bytes = bytes
        self.unconfirmed = unconfirmed

    @property
    def message(self) -> str:
        if self.unconfirmed:
            return (
                f"{self.frames} audio frames ({self.bytes} bytes) sent after the server's "
                "last answer to a ping may not have reached it: it stopped answering"
            )
        return f"{self.frames} audio frames ({self.bytes} bytes) held during an outage were dropped"


ErrorEvent = Union[
    ErrorMessage, ConnectionClosed, MalformedMessage, CallbackError, EventsDropped, AudioDropped
]
"""What error callbacks receive; every member has a ``message`` string."""

Event = Union[
    ServerEvent,
    TTSAudio,
    UnknownEvent,
    MalformedMessage,
    ConnectionClosed,
    CallbackError,
    EventsDropped,
    Reconnecting,
    Reconnected,
    AudioDropped,
]
"""Everything ``client.events()`` yields."""
