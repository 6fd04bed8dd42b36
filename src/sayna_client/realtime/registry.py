"""A session's registered callbacks: what each one receives and how it is called.

:class:`Subscription` is one registration (``on()``, ``register_on_*``);
:class:`Subscriptions` holds a session's registrations in order with the per-event-type
plan the :class:`~.dispatcher.Dispatcher` follows. Registrations are rare and events are
not: every change rebuilds the plan, and each dispatch reads it without locking.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from ..protocol.events import TTSAudio
from .fanout import Table, callback_plan

__all__ = ["Subscription", "Subscriptions"]

Callback = Callable[[Any], Any]

#: One frozenset per distinct set of event types, shared by every subscription that has
#: it (a small frozenset is 216 bytes; each session subscribes the same few sets).
_TYPE_SETS: dict[frozenset[str], frozenset[str]] = {}


def _removed(_item: Any) -> None:
    """What a removed subscription calls: nothing (see :meth:`Subscriptions.remove`)."""
    return None


def _is_async_callable(callback: Callback) -> bool:
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


class Subscription:
    """One registered callback: the event types it receives and how it is called.

    The dispatcher's queue holds TTS audio as the frame's bytes: ``on_audio`` is what
    it calls with them, the callback itself (``register_on_tts_audio``) or, for one
    that takes events (``on("tts_audio", cb)``), an adapter making the ``TTSAudio``.
    """

    __slots__ = ("callback", "is_async", "name", "on_audio", "types")

    def __init__(self, callback: Callback, types: frozenset[str], audio_bytes: bool) -> None:
        self.callback = callback
        self.types = _TYPE_SETS.setdefault(types, types) if len(_TYPE_SETS) < 256 else types
        self.name: str = getattr(callback, "__qualname__", None) or repr(callback)
        self.is_async = _is_async_callable(callback)
        self.on_audio: Callback = callback
        if not audio_bytes and "tts_audio" in types:  # made only when it can be called

            def on_audio(data: bytes) -> Any:
                return callback(TTSAudio(data))

            self.on_audio = on_audio


#: The plan of a dispatcher with no callbacks (shared, never mutated).
_NO_CALLBACKS: Table = {}


class Subscriptions:
    """The registered callbacks in registration order (``all``), and per event type the
    indexes of the ones to call (``by_type``: a plan shared by every session that
    registered callbacks for the same types in the same order, see
    :func:`~.fanout.callback_plan`).

    Both are replaced on every change (registrations are rare, events are not); a
    dispatch takes the two together when it starts an event and keeps them for that
    event, so indexes and callbacks always agree.
    """

    __slots__ = ("all", "all_plain", "audio", "audio_plain", "by_type")

    def __init__(self) -> None:
        self.all: tuple[Subscription, ...] = ()
        self.by_type: Table = _NO_CALLBACKS
        #: The ``tts_audio`` callbacks themselves, for the hottest path.
        self.audio: tuple[Subscription, ...] = ()
        #: No callback is a coroutine function.
        self.all_plain = True
        #: No ``tts_audio`` callback is (see :meth:`~.dispatcher.Dispatcher.put_audio`).
        self.audio_plain = True

    def __iter__(self) -> Any:
        return iter(self.all)

    def add(self, subscription: Subscription) -> None:
        self.all = (*self.all, subscription)
        self._rebuild()

    def remove(self, subscription: Subscription) -> bool:
        """Remove one registration; False if it was not registered.

        Takes effect at once: the subscription is emptied (it calls nothing from now
        on), so an event being dispatched right now, whose callbacks were taken when it
        started, does not reach it either (a callback removing a later one of the same
        event). It stays emptied: a registration removed is never restored.
        """
        registered = self.all
        if subscription not in registered:
            return False
        index = registered.index(subscription)
        self.all = registered[:index] + registered[index + 1 :]
        subscription.callback = subscription.on_audio = _removed
        self._rebuild()
        return True

    def find(self, callback: Callback) -> list[Subscription]:
        return [s for s in self.all if s.callback == callback]

    def returns_awaitables(self, subscription: Subscription) -> None:
        """``subscription`` is a plain function that returned an awaitable: from now on it
        is treated as async (its events go through the dispatcher task)."""
        if not subscription.is_async:
            subscription.is_async = True
            self.all_plain = False
            if subscription in self.audio:
                self.audio_plain = False

    def _rebuild(self) -> None:
        registered = self.all
        self.by_type = callback_plan([s.types for s in registered]) if registered else _NO_CALLBACKS
        self.audio = tuple(registered[i] for i in self.by_type.get("tts_audio", ()))
        self.all_plain = not any(s.is_async for s in registered)
        self.audio_plain = not any(s.is_async for s in self.audio)

    def taking(self, event_type: str) -> tuple[Subscription, ...]:
        """The callbacks of ``event_type`` now, in registration order (not the hot path)."""
        registered = self.all
        return tuple(registered[i] for i in self.by_type.get(event_type, ()))
