"""The agents toolkit's methods on ``SaynaClient``: ``barge_in()`` and ``idle_watchdog()``.

:class:`AgentMethods` is a base class of ``SaynaClient`` (as ``DeprecatedNames`` is), so
``client.barge_in(...)`` attaches a :class:`~.barge_in.BargeIn` policy and
``client.idle_watchdog(...)`` starts an :class:`~.watchdog.IdleWatchdog`, both through
the client's public API, and :meth:`AgentMethods._emit_local` is how the toolkit's
helpers report their own events. It holds no state of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

from .barge_in import DEFAULT_BACKCHANNELS, DEFAULT_FILLERS, BargeIn, BargeInEvent
from .watchdog import IdleEvent, IdleWatchdog

if TYPE_CHECKING:
    from ..client import SaynaClient

__all__ = ["AgentMethods"]


class AgentMethods:
    """``barge_in`` and ``idle_watchdog``, for ``SaynaClient`` (its only subclass)."""

    def barge_in(
        self,
        *,
        min_words: int = 1,
        min_duration: float = 0.0,
        backchannels: Iterable[str] = DEFAULT_BACKCHANNELS,
        fillers: Iterable[str] = DEFAULT_FILLERS,
        resume_on_noise: bool = False,
        on_barge_in: Optional[Callable[[BargeInEvent], Any]] = None,
    ) -> BargeIn:
        """Stop the agent's speech when the user talks over it (see
        :class:`~sayna_client.agents.BargeIn` for the arguments); returns the attached
        policy (``detach()`` it to stop). Each decision is a ``BargeInEvent``, also
        delivered to ``client.on("barge_in", cb)``.

        Raises:
            SaynaValidationError: a bad guard value.
        """
        policy = BargeIn(
            min_words=min_words,
            min_duration=min_duration,
            backchannels=backchannels,
            fillers=fillers,
            resume_on_noise=resume_on_noise,
            on_barge_in=on_barge_in,
        )
        return policy.attach(cast("SaynaClient", self))

    def idle_watchdog(
        self,
        idle_after: float,
        *,
        on_idle: Optional[Callable[[IdleEvent], Any]] = None,
        max_duration: Optional[float] = None,
        on_max_duration: Optional[Callable[[IdleEvent], Any]] = None,
    ) -> IdleWatchdog:
        """Start an :class:`~sayna_client.agents.IdleWatchdog`: an ``IdleEvent`` (also to
        ``client.on("idle", cb)``) after ``idle_after`` seconds with neither user speech
        nor agent audio, ``on_idle`` to re-prompt or hang up, and the end of the session
        after ``max_duration`` seconds (``on_max_duration``, default ``disconnect()``).
        Call it on the event loop; ``stop()`` the returned watchdog to end it.

        Raises:
            SaynaValidationError: a duration that is not a positive number.
        """
        watchdog = IdleWatchdog(
            cast("SaynaClient", self),
            idle_after=idle_after,
            on_idle=on_idle,
            max_duration=max_duration,
            on_max_duration=on_max_duration,
        )
        return watchdog.start()

    def _emit_local(self, event: Any) -> None:
        """An event the agents helpers made (``BargeInEvent``, ``IdleEvent``...): to the
        session's callbacks and iterators, in order with the server's events."""
        cast("SaynaClient", self)._voice.speaking.emit_local(event)
