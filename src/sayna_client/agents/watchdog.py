"""The idle watchdog: notice a conversation that went quiet, and end one that ran too long.

An :class:`IdleEvent` is emitted after ``idle_after`` seconds with neither user speech (an
``stt_result`` with text) nor agent audio (TTS audio arriving, or speech outstanding), and
again after each further ``idle_after`` quiet seconds; ``on_idle`` can re-prompt the user or
end the call. After ``max_duration`` seconds from :meth:`IdleWatchdog.start` an event with
``reason="max_duration"`` is emitted and ``on_max_duration`` runs (by default the client
disconnects). A watchdog started before ``connect()`` counts both from the session's
``ready``. A hook that raises is logged and reported to the session's error callbacks as a
:class:`~sayna_client.CallbackError`; the watchdog goes on.
The watchdog stops by itself when the session ends: a close that an automatic
reconnection follows (``will_reconnect``) does not end it, and the outage counts as neither
quiet nor activity (the quiet spell starts again once the session is back), while
``max_duration`` goes on counting through it.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Optional

from ..errors import SaynaValidationError

if TYPE_CHECKING:
    from ..client import SaynaClient

__all__ = ["IdleEvent", "IdleWatchdog"]

logger = logging.getLogger("sayna_client")

Hook = Callable[["IdleEvent"], Any]


@dataclass(frozen=True)
class IdleEvent:
    """The conversation was quiet for ``idle_for`` seconds (``reason="idle"``; ``count``:
    the idle events since the user last spoke, this one included, so a re-prompt's audio in
    between does not start it again from 1), or the session reached ``max_duration``
    (``reason="max_duration"``)."""

    type: ClassVar[Literal["idle"]] = "idle"

    reason: Literal["idle", "max_duration"]
    idle_for: float
    count: int
    session_seconds: float


class IdleWatchdog:
    """See the module docstring; ``client.idle_watchdog(...)`` makes and starts one.

    Args:
        client: the client to watch.
        idle_after: seconds of quiet before an :class:`IdleEvent`.
        on_idle: called with each idle event (plain or async, awaited on the watchdog's task
            before it watches again), e.g. to ``speak("Are you still there?")``.
        max_duration: seconds after :meth:`start` when the session must end (None: never).
        on_max_duration: called then (default: ``client.disconnect()``).

    Raises:
        SaynaValidationError: ``idle_after`` or ``max_duration`` not a positive number,
            or ``on_idle`` or ``on_max_duration`` not callable.
    """

    def __init__(
        self,
        client: SaynaClient,
        *,
        idle_after: float,
        on_idle: Optional[Hook] = None,
        max_duration: Optional[float] = None,
        on_max_duration: Optional[Hook] = None,
    ) -> None:
        for name, value in (("idle_after", idle_after), ("max_duration", max_duration)):
            if value is None and name == "max_duration":
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise SaynaValidationError(
                    f"{name} must be a positive number of seconds, got {value!r}; e.g. {name}=8.0"
                )
        for name, hook in (("on_idle", on_idle), ("on_max_duration", on_max_duration)):
            if hook is not None and not callable(hook):
                raise SaynaValidationError(
                    f"{name} must be a function (plain or async) taking an IdleEvent, or "
                    f"None, got {type(hook).__name__}"
                )
        self._client = weakref.ref(client)
        self.idle_after = float(idle_after)
        self.on_idle = on_idle
        self.max_duration = None if max_duration is None else float(max_duration)
        self.on_max_duration = on_max_duration
        #: Every event emitted, in order.
        self.history: list[IdleEvent] = []
        self._task: Optional[asyncio.Task[None]] = None
        self._last_speech = 0.0
        self._unsubscribe: list[Callable[[], Any]] = []

    @property
    def running(self) -> bool:
        """The watchdog is watching."""
        return self._task is not None and not self._task.done()

    def start(self) -> IdleWatchdog:
        """Start watching now (call it on the event loop); returns self. Idempotent."""
        client = self._client()
        if client is None or self.running:
            return self
        loop = asyncio.get_running_loop()
        self._last_speech = loop.time()
        self._unsubscribe = [
            client.on("stt_result", self._on_result),
            client.on("closed", self._on_closed),
        ]
        self._task = asyncio.ensure_future(self._watch(loop))
        return self

    def stop(self) -> None:
        """Stop watching (idempotent; a hook that is running is cancelled)."""
        task = self._task
        self.stop_watching()
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def stop_watching(self) -> None:
        """Stop watching without cancelling a hook that is running."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        self._task = None

    def _on_closed(self, event: Any) -> None:
        """The session closed: the watchdog ends with it, unless a reconnection follows
        (the call goes on after it, and so does ``max_duration``)."""
        if not event.will_reconnect:
            self.stop()

    def _on_result(self, result: Any) -> None:
        if (result.transcript or "").strip():
            self._last_speech = asyncio.get_running_loop().time()

    async def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        started = loop.time()
        last_activity = started
        audio_seen = -1
        speech_seen = self._last_speech
        count = 0
        step = min(0.1, self.idle_after / 4)
        first = self._client()
        # Started before connect(): nothing counts (quiet, max_duration) before ready.
        counting = first is None or first.ready or first.reconnecting
        del first
        while True:
            await asyncio.sleep(step)
            client = self._client()
            if client is None:
                return
            now = loop.time()
            if not counting:
                if not client.ready:
                    continue
                counting = True
                started = last_activity = now
            if client.reconnecting:
                # The outage is nobody's silence: the quiet spell starts once it is over
                # (an idle hook could not speak meanwhile anyway).
                last_activity = now
            audio = client.metrics.tts_audio_bytes
            if audio != audio_seen or client.speech.speaking:
                audio_seen, last_activity = audio, now
            if self._last_speech != speech_seen:
                # The user spoke: the next quiet spell counts from 1 (the agent's own
                # audio, a re-prompt, only puts the next event off).
                speech_seen = self._last_speech
                count = 0
                last_activity = max(last_activity, speech_seen)
            if self.max_duration is not None and now - started >= self.max_duration:
                # Detached first: the hook may close the session, which stops the watchdog.
                self.stop_watching()
                event = IdleEvent("max_duration", now - last_activity, count, now - started)
                hook = self.on_max_duration
                await self._fire(client, event, hook if hook is not None else _ender(client))
                return
            if now - last_activity >= self.idle_after:
                count += 1
                event = IdleEvent("idle", now - last_activity, count, now - started)
                await self._fire(client, event, self.on_idle)
                last_activity = loop.time()

    async def _fire(self, client: SaynaClient, event: IdleEvent, hook: Optional[Hook]) -> None:
        self.history.append(event)
        client._emit_local(event)
        if hook is None:
            return
        try:
            outcome = hook(event)
            if asyncio.iscoroutine(outcome):
                await outcome
        except Exception as exc:  # a hook's failure must not stop the watchdog
            # Reported as the dispatcher reports a callback's error (and barge-in its
            # on_barge_in's): a CallbackError to the session's error callbacks.
            name = getattr(hook, "__qualname__", None) or repr(hook)
            logger.error("Sayna callback %s raised while handling 'idle'", name, exc_info=exc)
            report = client.speech.report
            if report is not None:
                report(name, "idle", exc)


def _ender(client: SaynaClient) -> Hook:
    async def disconnect(_event: IdleEvent) -> None:
        await client.disconnect()

    return disconnect
