"""Fan-out: where each published event goes, precomputed per event type.

The reader task publishes every event once. :class:`FanOut` appends it to each
interested consumer's mailbox (the session's callback dispatcher, every ``events()`` /
``turns()`` iterator that takes its type), then calls the SDK's own inline observers
(cheap bookkeeping such as the session tracker; they run on the reader task and must
neither block nor raise). Appends never block, so no consumer can stall the reader.

Routes are rebuilt whenever a consumer comes or goes (rare); publishing is one dict
lookup and one call per target. TTS audio has its own entry point,
:meth:`FanOut.publish_audio`: the dispatcher and the audio observers take the frame's
bytes, and a ``TTSAudio`` event is made only when an iterator takes audio.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable, Optional

from ..protocol.events import TTSAudio
from .mailbox import Mailbox

__all__ = ["FanOut", "Route"]

#: One target of an event type.
Route = Callable[[Any], None]


class FanOut:
    """The routing tables of one hub, and publishing through them."""

    __slots__ = ("_audio_bytes", "_audio_mailboxes", "_by_type", "_default")

    def __init__(self) -> None:
        # Tuples, not lists: built once per rebuild, and smaller per idle session.
        self._by_type: dict[str, tuple[Route, ...]] = {}
        self._default: tuple[Route, ...] = ()
        self._audio_bytes: tuple[Callable[[bytes], None], ...] = ()
        self._audio_mailboxes: tuple[Mailbox, ...] = ()

    def rebuild(
        self,
        *,
        callback_types: frozenset[str],
        to_callbacks: Route,
        audio_to_callbacks: Callable[[bytes], None],
        iterators: Sequence[tuple[Mailbox, Optional[frozenset[str]]]],
        observers: Sequence[tuple[str, Route]],
        audio_observers: Sequence[Callable[[bytes], None]],
    ) -> None:
        """Recompute the routes.

        Args:
            callback_types: event types some callback is subscribed to; their events go
                to ``to_callbacks`` (TTS audio to ``audio_to_callbacks``) first.
            iterators: each iterator's mailbox and the types it takes (None: all).
            observers: ``(event type, observer)`` pairs called after the mailboxes.
            audio_observers: called with each TTS frame's bytes, after the callbacks'
                queue and before the iterators.
        """
        by_type: dict[str, list[Route]] = {}
        default: list[Route] = []
        audio_mailboxes: list[Mailbox] = []
        for event_type in callback_types - {"tts_audio"}:
            by_type[event_type] = [to_callbacks]
        for mailbox, types in iterators:
            put = mailbox.put  # one bound method, shared by all its routes
            if types is None:
                default.append(put)
                for routes in by_type.values():
                    routes.append(put)
            else:
                for event_type in types - {"tts_audio"}:
                    by_type.setdefault(event_type, list(default)).append(put)
            if types is None or "tts_audio" in types:
                audio_mailboxes.append(mailbox)
        for event_type, observer in observers:
            by_type.setdefault(event_type, list(default)).append(observer)
        # Types with the same routes share one tuple (most types go to the callbacks only);
        # keyed by identity: a route's owner need not be hashable.
        shared: dict[tuple[int, ...], tuple[Route, ...]] = {}
        self._by_type = {
            event_type: shared.setdefault(tuple(map(id, routes)), tuple(routes))
            for event_type, routes in by_type.items()
        }
        self._default = tuple(default)
        audio_bytes = [audio_to_callbacks] if "tts_audio" in callback_types else []
        self._audio_bytes = (*audio_bytes, *audio_observers)
        self._audio_mailboxes = tuple(audio_mailboxes)

    def publish(self, event: Any) -> None:
        """Route ``event`` (not TTS audio: see :meth:`publish_audio`); never blocks."""
        for route in self._by_type.get(event.type, self._default):
            route(event)

    def publish_audio(self, data: bytes) -> None:
        """Route one TTS audio frame; the ``TTSAudio`` event is made only if an iterator
        takes it. Never blocks."""
        for route in self._audio_bytes:
            route(data)
        mailboxes = self._audio_mailboxes
        if mailboxes:
            event = TTSAudio(data)
            size = len(data)
            for mailbox in mailboxes:
                mailbox.put_sized(event, size)
