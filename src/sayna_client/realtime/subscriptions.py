"""Subscribing to session events: the pull iterators and the ``register_on_*`` callbacks.

:class:`Subscriptions` is the voice session's part that ``SaynaClient`` forwards
``events()``, ``turns()``, ``on()``, ``off()`` and ``register_on_*`` to. Everything goes
through the session's one :class:`~.hub.EventHub`; callbacks are sugar over the same
stream that ``events()`` yields.
"""

from __future__ import annotations

import asyncio
import difflib
import threading
import warnings
import weakref
from collections.abc import AsyncIterator
from typing import Any, Callable, Optional, TypeVar

from ..errors import SaynaValidationError
from ..protocol.decode import KNOWN_EVENT_TYPES
from ..protocol.events import (
    ConnectionClosed,
    MessageMessage,
    ParticipantConnectedMessage,
    ParticipantDisconnectedMessage,
    ReadyMessage,
    SipTransferErrorMessage,
    STTResultMessage,
    TrackSubscribedMessage,
    TTSPlaybackCompleteMessage,
    VADEventMessage,
)
from .conversation import Turn
from .events import Event
from .hub import EventHub
from .mailbox import CLOSED, EMPTY, Mailbox, OwnDrop
from .registry import Subscription

__all__ = ["ERROR_EVENT_TYPES", "EVENT_TYPES", "Subscriptions", "Unsubscribe", "iterate"]

T = TypeVar("T")
Callback = Callable[[T], Any]

#: Event types error callbacks receive (``lost`` = an unexpected ``ConnectionClosed``).
ERROR_EVENT_TYPES = frozenset(
    {"error", "malformed_message", "callback_error", "events_dropped", "audio_dropped", "lost"}
)

#: The ``type`` of every event ``on()`` can deliver: the server's messages (a type this
#: SDK does not know arrives as ``"unknown"``), then the SDK's own events, the agents'
#: (``turn``, ``turn_metrics``, ``barge_in``, ``idle``) included.
EVENT_TYPES = KNOWN_EVENT_TYPES | frozenset(
    {
        "tts_audio",
        "unknown",
        "malformed_message",
        "closed",
        "callback_error",
        "events_dropped",
        "reconnecting",
        "reconnected",
        "audio_dropped",
        "turn",
        "turn_metrics",
        "barge_in",
        "idle",
    }
)

#: Routes ``on()`` takes besides :data:`EVENT_TYPES`, not listed in its error message:
#: ``lost`` (an unexpected close, as the error callbacks receive it).
_INTERNAL_ROUTES = frozenset({"lost"})


def _checked_event_type(event_type: object) -> str:
    """``event_type`` if ``on()`` can deliver events of it; else the error naming the
    closest known type (a typo, ``tts_playback_completed``) and every one."""
    if not isinstance(event_type, str):
        raise SaynaValidationError(
            f"event_type must be a str such as 'stt_result', got {type(event_type).__name__}"
        )
    if event_type in EVENT_TYPES or event_type in _INTERNAL_ROUTES:
        return event_type
    known = sorted(EVENT_TYPES)
    close = difflib.get_close_matches(event_type, known, n=1)
    guess = f"Did you mean {close[0]!r}? " if close else ""
    raise SaynaValidationError(
        f"no event has the type {event_type!r}: its callback would never be called. "
        f"{guess}The event types are: {', '.join(known)} (a server message of a type this "
        "SDK does not know arrives as 'unknown')"
    )


class Unsubscribe:
    """Returned by ``register_on_*`` and ``on()``: call it to remove that callback."""

    __slots__ = ("_hub", "_subscription")

    def __init__(self, hub: EventHub, subscription: Subscription) -> None:
        self._hub = hub
        self._subscription = subscription

    def __call__(self) -> bool:
        """Remove the callback at once: it is not called for any later event, nor for
        the event being dispatched if its turn has not come (removed by a callback before
        it). True if it was still registered."""
        return self._hub.remove_callback(self._subscription)


class Subscriptions:
    """The session's events, pulled (``events()``, ``turns()``) or pushed to callbacks."""

    __slots__ = ("_hub",)

    def __init__(self, hub: EventHub) -> None:
        self._hub = hub

    def events(self) -> AsyncIterator[Event]:
        """Every event of the session, in arrival order, TTS audio included.

        Subscribes immediately (before the first ``await``), so create the iterator
        before the actions whose events you want. It ends after a ``ConnectionClosed``
        when the client disconnects. It has its own queue, filled by the task reading
        the socket, so slow callbacks never delay it. The queue holds ``max_queue``
        events and ``max_queue_bytes`` bytes of audio; a consumer that falls further
        behind loses its oldest events and receives ``EventsDropped`` with the count.
        """
        mailbox = self._hub.add_iterator(f"events-{id(self._hub):x}")
        return _pull(self._hub, mailbox)

    def turns(self) -> AsyncIterator[Turn]:
        """One :class:`Turn` per user turn (interim and final results joined), in order.

        Subscribes when called; ends when the session ends. ``client.on("turn", cb)``
        delivers the same objects to a callback. It yields only turns: a consumer that
        falls ``max_queue`` turns behind loses its oldest, and the ``EventsDropped`` with
        the count goes to the error callbacks and the ``sayna_client`` log, not here.
        """
        mailbox = self._hub.add_iterator(f"turns-{id(self._hub):x}", frozenset({"turn"}))
        return _pull(self._hub, mailbox, yield_drops=False)

    def on(self, event_type: str, callback: Callback[Any]) -> Unsubscribe:
        """Call ``callback(event)`` for every event of ``event_type`` (e.g. ``"stt_result"``,
        ``"tts_audio"``, ``"closed"``, ``"unknown"``). Plain and async callables work.

        Every callback of the session, plain or async, is called by the session's one
        dispatcher (never by the task reading the socket), one event at a time, in the
        order the server sent them across event types; an async callback is awaited
        before the next event, on the dispatcher's task. A slow callback therefore delays
        the callbacks after it, never the socket, the keepalive or ``events()`` iterators;
        the dispatcher's queue is bounded like an iterator's (``EventsDropped`` to the
        error callbacks). If a callback raises, the error callbacks receive a
        ``CallbackError`` and the session continues.

        Raises:
            SaynaValidationError: ``callback`` is not callable, or no event has the type
                ``event_type`` (a typo: the message names the closest type, and all of
                them, :data:`EVENT_TYPES`).
        """
        if not callable(callback):
            raise SaynaValidationError("callback must be callable")
        route = _checked_event_type(event_type)
        subscription = self._hub.add_callback(callback, frozenset({route}))
        return Unsubscribe(self._hub, subscription)

    def off(self, callback: Callback[Any]) -> int:
        """Remove every registration of ``callback`` at once (as :class:`Unsubscribe`
        does); returns how many were removed."""
        subscriptions = self._hub.find_callbacks(callback)
        for subscription in subscriptions:
            self._hub.remove_callback(subscription)
        return len(subscriptions)

    def register_on_ready(self, callback: Callback[ReadyMessage]) -> Unsubscribe:
        """Call ``callback(ReadyMessage)`` when the server sends ``ready``."""
        return self.on("ready", callback)

    def register_on_stt_result(self, callback: Callback[STTResultMessage]) -> Unsubscribe:
        """Call ``callback(STTResultMessage)`` for every transcription result."""
        return self.on("stt_result", callback)

    def register_on_tts_audio(self, callback: Callback[bytes]) -> Unsubscribe:
        """Call ``callback(bytes)`` for every frame of synthesized audio."""
        if not callable(callback):
            raise SaynaValidationError("callback must be callable")
        subscription = self._hub.add_callback(callback, frozenset({"tts_audio"}), audio_bytes=True)
        return Unsubscribe(self._hub, subscription)

    def register_on_error(self, callback: Callback[Any]) -> Unsubscribe:
        """Call ``callback(event)`` for server ``error`` messages and for problems the SDK
        reports: an unexpected close (``ConnectionClosed``), a malformed frame, a callback
        that raised, dropped events. Every one has a ``message`` string."""
        if not callable(callback):
            raise SaynaValidationError("callback must be callable")
        subscription = self._hub.add_callback(callback, ERROR_EVENT_TYPES)
        return Unsubscribe(self._hub, subscription)

    def register_on_message(self, callback: Callback[MessageMessage]) -> Unsubscribe:
        """Call ``callback(MessageMessage)`` for LiveKit data messages."""
        return self.on("message", callback)

    def register_on_participant_connected(
        self, callback: Callback[ParticipantConnectedMessage]
    ) -> Unsubscribe:
        """Call ``callback(ParticipantConnectedMessage)`` when someone joins the room."""
        return self.on("participant_connected", callback)

    def register_on_participant_disconnected(
        self, callback: Callback[ParticipantDisconnectedMessage]
    ) -> Unsubscribe:
        """Call ``callback(ParticipantDisconnectedMessage)`` when someone leaves (the server
        ends the session about 100 ms later)."""
        return self.on("participant_disconnected", callback)

    def register_on_track_subscribed(
        self, callback: Callback[TrackSubscribedMessage]
    ) -> Unsubscribe:
        """Call ``callback(TrackSubscribedMessage)`` when Sayna subscribes to a track."""
        return self.on("track_subscribed", callback)

    def register_on_tts_playback_complete(
        self, callback: Callback[TTSPlaybackCompleteMessage]
    ) -> Unsubscribe:
        """Call ``callback(TTSPlaybackCompleteMessage)`` when the TTS queue drained."""
        return self.on("tts_playback_complete", callback)

    def register_on_sip_transfer_error(
        self, callback: Callback[SipTransferErrorMessage]
    ) -> Unsubscribe:
        """Call ``callback(SipTransferErrorMessage)`` when a WebSocket ``sip_transfer`` fails."""
        return self.on("sip_transfer_error", callback)

    def register_on_vad_event(self, callback: Callback[VADEventMessage]) -> Unsubscribe:
        """Call ``callback(VADEventMessage)`` (defined by the protocol; not sent today)."""
        return self.on("vad_event", callback)

    def register_on_close(self, callback: Callback[ConnectionClosed]) -> Unsubscribe:
        """Call ``callback(ConnectionClosed)`` whenever the socket closes, for any reason."""
        return self.on("closed", callback)

    def register_on_audio(self, callback: Callback[bytes]) -> Unsubscribe:
        """Deprecated alias of :meth:`register_on_tts_audio`."""
        warnings.warn("use register_on_tts_audio()", DeprecationWarning, stacklevel=2)
        return self.register_on_tts_audio(callback)


def _pull(hub: EventHub, mailbox: Mailbox, yield_drops: bool = True) -> AsyncIterator[Any]:
    """The iterator of ``mailbox``, whose queue is let go of when it ends, is closed, or
    is dropped: also one dropped before its first step, which never runs its
    ``finally`` (its queue would otherwise stay subscribed, and fill, until the session
    ends). ``yield_drops``: see :func:`iterate`."""
    iterator = iterate(hub, mailbox, yield_drops)
    try:
        loop: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
    except RuntimeError:  # (made outside any event loop)
        loop = None
    finalizer = weakref.finalize(iterator, _let_go, hub, mailbox, loop, threading.get_ident())
    finalizer.atexit = False
    return iterator


def _let_go(
    hub: EventHub, mailbox: Mailbox, loop: Optional[asyncio.AbstractEventLoop], thread: int
) -> None:
    """Unsubscribe ``mailbox`` from ``hub``, on the thread of the loop it was made on
    (an iterator is dropped in whatever thread lets go of it last: a sync client's, say,
    while the loop thread changes the hub's consumers)."""
    if loop is None or threading.get_ident() == thread or loop.is_closed():
        hub.remove_iterator(mailbox)
        return
    try:
        loop.call_soon_threadsafe(hub.remove_iterator, mailbox)
    except RuntimeError:  # closed meanwhile: nothing reads the hub any more
        pass


async def iterate(hub: EventHub, mailbox: Mailbox, yield_drops: bool = True) -> AsyncIterator[Any]:
    """Yield what ``mailbox`` receives until it is closed; report its own overflow (to
    the log and the error callbacks) and, if ``yield_drops``, yield it too (``turns()``
    does not: it is typed as yielding only turns)."""
    try:
        while True:
            event = mailbox.get_nowait()
            if event is EMPTY:
                event = await mailbox.get()
            if event is CLOSED:
                return
            if type(event) is OwnDrop:
                hub.report_overflow(event)
                if not yield_drops:
                    continue
            yield event
    finally:
        hub.remove_iterator(mailbox)
