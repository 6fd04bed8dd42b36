"""Automatic reconnection: the retry loop and the audio held meanwhile.

The loop is opt-in (``SaynaClient(reconnect=ReconnectPolicy())``). It only runs
after a close the client did not ask for, with a code that means the peer or the
network went away (the rule is :func:`sayna_client.protocol.lifecycle.is_recoverable`);
policy refusals (auth, a rejected config) end it at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Callable, Optional

from .._config import ReconnectPolicy, backoff_delay
from ..errors import (
    SaynaConfigRejectedError,
    SaynaConnectionError,
    SaynaHttpError,
    SaynaNotConnectedError,
    SaynaTimeoutError,
)
from ..protocol.events import ConnectionClosed
from ..protocol.lifecycle import is_recoverable
from .events import Reconnected, Reconnecting
from .hold import AudioHold

if TYPE_CHECKING:
    from .core import SessionCore

__all__ = [
    "STABLE_AFTER",
    "Reconnector",
    "run_reconnect",
]

logger = logging.getLogger("sayna_client")

#: Seconds a re-established session must stay up before its next loss starts a new
#: outage. A session that fails again sooner (the server closes it after ``ready``
#: every time) continues the same outage: the attempt count and the backoff carry
#: on, so the policy's ``max_attempts`` ends the loop instead of reconnecting for ever.
STABLE_AFTER = 30.0


async def run_reconnect(
    policy: ReconnectPolicy,
    info: ConnectionClosed,
    *,
    open_session: Callable[[], Awaitable[None]],
    replay: Callable[[int], Awaitable[Optional[tuple[int, int]]]],
    publish: Callable[[object], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    attempts_used: int = 0,
) -> Optional[int]:
    """Re-open the session with capped exponential backoff and jitter.

    Publishes :class:`Reconnecting` before each attempt and :class:`Reconnected`
    (with what ``replay(attempt)`` re-sent) on success. ``replay`` returns None when the
    session was lost again while it replayed: that loss is an outage of its own (the
    session's close handling took it over), and this one ends with None.

    Args:
        attempts_used: attempts already spent on this outage (a session that was
            re-established and failed again within :data:`STABLE_AFTER`); numbering
            and backoff continue from there.

    Returns:
        The number of the attempt that succeeded, or None when attempts ran out, the
        server refused the session (authentication, rejected config) or the client was
        dropped meanwhile.
    """
    attempt = attempts_used
    while policy.max_attempts is None or attempt < policy.max_attempts:
        attempt += 1
        delay = backoff_delay(
            attempt,
            initial=policy.initial_backoff,
            maximum=policy.max_backoff,
            jitter=policy.jitter,
        )
        publish(Reconnecting(attempt, delay, info.code, info.reason))
        logger.info(
            "Sayna session lost (code %s); reconnect attempt %d in %.2f s",
            info.code,
            attempt,
            delay,
        )
        await sleep(delay)
        try:
            await open_session()
        except SaynaConfigRejectedError as exc:
            logger.error("Reconnect refused by the server: %s", exc.server_message)
            return None
        except SaynaHttpError as exc:
            if exc.status_code < 500 and exc.status_code != 429:
                logger.error("Reconnect refused with HTTP %d; giving up", exc.status_code)
                return None
            logger.info("Reconnect attempt %d failed: %s", attempt, exc)
        except (SaynaConnectionError, SaynaTimeoutError) as exc:
            logger.info("Reconnect attempt %d failed: %s", attempt, exc)
        except SaynaNotConnectedError as exc:
            # The application dropped the client mid-outage: nothing can reopen the
            # session, so the reconnection ends here (not as a task exception nobody reads).
            logger.info("Reconnecting stopped: %s", exc)
            return None
        else:
            replayed = await replay(attempt)
            if replayed is None:
                logger.info("Sayna session lost again while replaying the audio held")
                return None
            frames, size = replayed
            publish(Reconnected(attempt, frames, size))
            logger.info("Sayna session re-established after %d attempt(s)", attempt)
            return attempt
    logger.error("Giving up reconnecting after %d attempts", attempt)
    return None


class Reconnector:
    """A voice session's automatic reconnection: whether a close starts one, the task
    that runs it, and the audio held meanwhile.

    Args:
        session: the session: its ``reconnect_policy``, hub and ready connection;
            ``reopen()`` makes one attempt, ``close_refused()`` and
            ``end_of_session()`` end it when the reconnection gives up.
    """

    def __init__(self, session: SessionCore) -> None:
        self._session = session
        #: The running reconnection, if any.
        self.task: Optional[asyncio.Task[None]] = None
        #: Audio sent during the outage, replayed once the session is ready again.
        self.hold: Optional[AudioHold] = None
        #: (attempts spent, loop time) of the last automatic reconnect that succeeded.
        self._last_recovery: Optional[tuple[int, float]] = None

    def forget(self) -> None:
        """The session's loop was closed: nothing of the old reconnection can run."""
        self.task = None
        self.hold = None

    def attempts_for(self, info: ConnectionClosed, *, was_ready: bool) -> Optional[int]:
        """Whether the close ``info`` starts a reconnection: None when it does not, else
        the attempts already spent on this outage (those of the last recovery when the
        session is lost again within :data:`STABLE_AFTER` seconds of it, else 0)."""
        policy = self._session.reconnect_policy
        if policy is None or not was_ready:
            return None
        if not is_recoverable(info.code, initiated_by_client=info.initiated_by_client):
            return None
        last, self._last_recovery = self._last_recovery, None
        used = 0
        if last is not None and asyncio.get_running_loop().time() - last[1] < STABLE_AFTER:
            used = last[0]
        if policy.max_attempts is not None and used >= policy.max_attempts:
            logger.error(
                "Sayna session lost again within %s s of reconnecting; giving up after %d "
                "attempts (ReconnectPolicy.max_attempts)",
                STABLE_AFTER,
                used,
            )
            return None  # it keeps failing right after recovering: give up
        return used

    def start(self, info: ConnectionClosed, used: int) -> None:
        """Start reconnecting after ``info`` (``used``: from :meth:`attempts_for`)."""
        policy = self._session.reconnect_policy
        assert policy is not None
        hold = self.hold
        if hold is None:
            self.hold = AudioHold(policy.buffer_bytes)
        # (Else lost again while replaying: what was not replayed yet goes first.)
        self.task = asyncio.get_running_loop().create_task(
            self._run(policy, info, used), name="sayna-reconnect"
        )

    async def _run(self, policy: ReconnectPolicy, info: ConnectionClosed, used: int) -> None:
        session = self._session
        me = asyncio.current_task()
        ok = False
        try:
            succeeded = await run_reconnect(
                policy,
                info,
                open_session=session.reopen,
                replay=self._replay_audio,
                publish=session.hub.publish,
                attempts_used=used,
            )
            ok = succeeded is not None
            if succeeded is None and self.task is me:
                # A refused attempt (rejected config) leaves its socket open: the
                # session is over, so close it; later sends raise "not connected".
                await session.close_refused()
        finally:
            # (Else lost again while replaying: the reconnection that loss started owns
            # the session, its task and its hold, from now on.)
            if self.task is me:
                self._ended(ok)

    def _ended(self, ok: bool) -> None:
        """The reconnection ended: reconnected (``ok``), or the session is over."""
        self.task = None
        hold, self.hold = self.hold, None
        report = hold.discard() if hold is not None and not ok else None
        if report is not None:
            self._session.report(report)
        if not ok:
            self._session.end_of_session()

    async def _replay_audio(self, attempt: int) -> Optional[tuple[int, int]]:
        """Send the audio held during the outage, in order; report what overflowed.
        Returns the frames and bytes replayed, or None when the session was lost again
        meanwhile (the frames not sent yet stay held for the reconnection that follows).

        The session holds audio until the hold is let go here, ready or not: a frame
        passed to ``on_audio_input`` once ``ready`` came, or while a replayed frame
        waits for the socket, is held behind the others and replayed in turn, so none
        overtakes the held ones."""
        # Re-established: a loss from now on within STABLE_AFTER continues this outage.
        self._last_recovery = (attempt, asyncio.get_running_loop().time())
        hold = self.hold
        if hold is None:
            return 0, 0
        try:
            sent, size = await self._session.audio_in.replay(hold)
        except SaynaConnectionError:
            return None  # (the close started a reconnection, or ended the session)
        report = hold.take_dropped()
        if report is not None:
            self._session.report(report)
        self.hold = None  # (no wait since the hold was found empty: nothing is left in it)
        return sent, size
