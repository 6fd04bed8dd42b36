"""Automatic reconnection: the retry loop and the audio held meanwhile.

The loop is opt-in (``SaynaClient(reconnect=ReconnectPolicy())``). It only runs
after a close the client did not ask for, with a code that means the peer or the
network went away (the rule is :func:`sayna_client.protocol.lifecycle.is_recoverable`);
policy refusals (auth, a rejected config) end it at once.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Callable, Optional

from .._config import ReconnectPolicy, backoff_delay
from ..errors import (
    SaynaConfigRejectedError,
    SaynaConnectionError,
    SaynaEventLoopError,
    SaynaHttpError,
    SaynaNotConnectedError,
    SaynaTimeoutError,
    SaynaValidationError,
)
from ..protocol.events import ConnectionClosed
from ..protocol.lifecycle import CloseCode, is_recoverable
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
    recover: Callable[[int], Awaitable[bool]],
    publish: Callable[[object], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    attempts_used: int = 0,
    redact: Callable[[str], str] = str,
) -> Optional[int]:
    """Re-open the session with capped exponential backoff and jitter.

    Publishes :class:`Reconnecting` before each attempt; an attempt refused with a
    ``Retry-After`` (429, 503) makes the next delay at least that long, up to the
    policy's ``max_backoff``. An attempt that raises something unexpected (not a
    refusal, a lost connection or a timeout) is logged with its traceback and counts as
    a failed attempt; one that cannot succeed (a rejected config, a 4xx refusal, the
    client's own bad setup) ends the reconnection. Once an attempt opened a ready
    session, ``recover(attempt)`` replays the audio held and publishes
    :class:`Reconnected`. It returns False when the session was lost again while it
    replayed: that loss is an outage of its own (the session's close handling took it
    over), and this one ends with None.

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
    #: The last refusal's Retry-After (a 429 or 503 of the upgrade), for the next delay.
    hint: Optional[float] = None
    while policy.max_attempts is None or attempt < policy.max_attempts:
        attempt += 1
        delay = backoff_delay(
            attempt,
            initial=policy.initial_backoff,
            maximum=policy.max_backoff,
            jitter=policy.jitter,
            retry_after=hint,  # (capped at max_backoff, as RetryPolicy caps it)
        )
        hint = None
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
            hint = getattr(exc, "retry_after", None)
            logger.info("Reconnect attempt %d failed: %s", attempt, exc)
        except (SaynaConnectionError, SaynaTimeoutError) as exc:
            logger.info("Reconnect attempt %d failed: %s", attempt, exc)
        except SaynaNotConnectedError as exc:
            # The application dropped the client mid-outage: nothing can reopen the
            # session, so the reconnection ends here (not as a task exception nobody reads).
            logger.info("Reconnecting stopped: %s", exc)
            return None
        except (SaynaValidationError, SaynaEventLoopError) as exc:
            # The client's own setup (a header aiohttp refuses, another loop): no later
            # attempt can do better.
            logger.error("Reconnect attempt %d cannot succeed; giving up: %s", attempt, exc)
            return None
        except Exception as exc:
            # Anything else (a protocol error, or a fault of ours or of a dependency) is a
            # failed attempt, never the silent end of the task: logged with its traceback,
            # it counts against max_attempts, and the next attempt may well succeed.
            logger.error(
                "Reconnect attempt %d failed unexpectedly:\n%s", attempt, _told(exc, redact)
            )
        else:
            if not await recover(attempt):
                logger.info("Sayna session lost again while replaying the audio held")
                return None
            logger.info("Sayna session re-established after %d attempt(s)", attempt)
            return attempt
    logger.error("Giving up reconnecting after %d attempts", attempt)
    return None


class Reconnector:
    """A voice session's automatic reconnection: whether a close starts one, the outage
    it recovers from, the task that retries, and the audio held meanwhile.

    An *outage* is open (:attr:`hold` is set) from the close that starts a
    reconnection until the session is ready again with the held audio replayed
    (``Reconnected``), or until it ends without recovery. Whoever owns it ends it: the
    retry task, or the caller that stopped that task with :meth:`claim` (a
    ``connect()`` taking over, ``disconnect()``, a dropped client). Either way it ends
    through :meth:`recover` or :meth:`end`, which let go of the hold and say so on
    the event stream; so no outage outlives its owner, whatever step a cancellation
    hit (a task cancelled before its first step runs none of its code).

    Args:
        session: the session: its ``reconnect_policy``, hub and ready connection;
            ``reopen()`` makes one attempt, ``close_refused()`` and
            ``end_of_session()`` end it when the reconnection gives up.
    """

    def __init__(self, session: SessionCore) -> None:
        self._session = session
        #: The retry loop, while it runs.
        self.task: Optional[asyncio.Task[None]] = None
        #: Audio sent during the outage, replayed once the session is ready again
        #: (None: no outage is open).
        self.hold: Optional[AudioHold] = None
        #: The task that may send while the outage is open: the one replaying the hold.
        self.owner: Optional[asyncio.Task[Any]] = None
        #: The close that opened the outage.
        self._lost: Optional[ConnectionClosed] = None
        #: The number of the attempt announced last (or next) in this outage.
        self.attempt = 0
        #: (attempts spent, loop time) of the last automatic reconnect that succeeded.
        self._last_recovery: Optional[tuple[int, float]] = None

    def forget(self) -> None:
        """The session's loop was closed: nothing of the old reconnection can run."""
        self.task = self.owner = self.hold = self._lost = None
        self._last_recovery = None

    def forget_recovery(self) -> None:
        """The application starts a session of its own (``connect()``, ``disconnect()``):
        its first loss starts a new outage, whatever the last one took."""
        self._last_recovery = None

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
        if self.hold is None:
            self.hold = AudioHold(policy.buffer_bytes)
        # (Else lost again while replaying: what was not replayed yet goes first.)
        self._lost = info
        self.attempt = used + 1
        self.task = self.owner = asyncio.get_running_loop().create_task(
            self._run(policy, info, used), name="sayna-reconnect"
        )

    def claim(self) -> Optional[asyncio.Task[None]]:
        """The calling task takes the outage over (``connect()``, ``disconnect()``, a
        dropped client): the retry task is cancelled, and returned for the caller to
        await; from now on the caller owns the outage and must end it (:meth:`recover`
        or :meth:`end`). The task, when it runs again, leaves everything to the caller."""
        task, self.task = self.task, None
        if self.hold is not None:
            self.owner = _current_task()
        if task is None or task is _current_task():
            return None
        task.cancel()
        return task

    def owns(self, task: Optional[asyncio.Task[Any]]) -> bool:
        """Whether ``task`` owns the open outage (and may end it)."""
        return self.hold is not None and self.owner is task

    async def _run(self, policy: ReconnectPolicy, info: ConnectionClosed, used: int) -> None:
        session = self._session
        me = asyncio.current_task()
        try:
            try:
                succeeded = await run_reconnect(
                    policy,
                    info,
                    open_session=session.reopen,
                    recover=self._recover,
                    publish=self._announce,
                    attempts_used=used,
                    redact=session.redact,
                )
            except Exception as exc:
                # A fault outside the attempts (replaying the hold, an event's
                # publication): logged, and the outage ends as one that gave up (its
                # typed close), not as a task exception nobody reads.
                logger.error(
                    "Reconnecting failed unexpectedly; giving up:\n%s",
                    _told(exc, session.redact),
                )
                succeeded = None
            if succeeded is None and self.owns(me):
                # A refused attempt (rejected config) leaves its socket open: the
                # session is over, so close it; later sends raise "not connected".
                await session.close_refused()
        finally:
            # (Not the owner: lost again while replaying, and the reconnection that loss
            # started owns the outage; or claimed by a caller, who ends it.)
            try:
                if self.owns(me):
                    self.end(by_client=False)
                    session.end_of_session()
            except ReferenceError:
                # The task was destroyed with its loop (closed by the garbage collector,
                # its session already freed): nothing is left to end.
                pass

    def _announce(self, event: object) -> None:
        """Publish the reconnection's own events, noting the attempt announced."""
        if isinstance(event, Reconnecting):
            self.attempt = event.attempt
        self._session.hub.publish(event)

    async def _recover(self, attempt: int) -> bool:
        """The retry task's attempt ``attempt`` opened a ready session: note the recovery,
        replay the held audio and announce it (see :meth:`recover`)."""
        # Re-established: a loss from now on within STABLE_AFTER continues this outage.
        self._last_recovery = (attempt, asyncio.get_running_loop().time())
        return await self.recover(attempt)

    async def recover(self, attempt: int) -> bool:
        """The session is ready again (attempt ``attempt``, from the owner's task): send
        the audio held during the outage, in order, then publish :class:`Reconnected`
        and report what overflowed (``AudioDropped``, after it). Returns False, leaving
        the outage to the reconnection that loss started, when the session was lost again
        meanwhile (the frames not sent yet stay held for it).

        The session holds audio until the outage is over, ready or not: a frame passed
        to ``on_audio_input`` once ``ready`` came, or while a replayed frame waits for
        the socket, is held behind the others and replayed in turn, so none overtakes
        the held ones."""
        hold = self.hold
        me = _current_task()
        sent = size = 0
        if hold is not None:
            try:
                sent, size = await self._session.audio_in.replay(hold)
            except SaynaConnectionError:
                return False  # (the close started a reconnection, or ended the session)
        if not self.owns(me):
            return False
        # (No wait since the hold was found empty: nothing is left in it.)
        self.hold = self._lost = self.owner = None
        if self.task is me:
            self.task = None
        self._session.hub.publish(Reconnected(attempt, sent, size))
        report = hold.take_dropped() if hold is not None else None
        if report is not None:
            self._session.report(report)
        return True

    def end(self, *, by_client: bool, announce: bool = True) -> None:
        """The open outage ends without recovery (nothing to do when none is open): the
        held audio is reported as dropped (``AudioDropped``), then, with ``announce``,
        one ``ConnectionClosed(will_reconnect=False)`` says the session is over: the
        client's close (``by_client``: ``disconnect()``, a cancelled ``connect()``), or
        the loss that opened the outage, which the error callbacks are told of too."""
        hold, lost = self.hold, self._lost
        self.hold = self._lost = self.owner = None
        self.task = None
        if hold is None:
            return
        report = hold.discard()
        if report is not None:
            self._session.report(report)
        if not announce or lost is None:
            return
        hub = self._session.hub
        if by_client:
            hub.publish(ConnectionClosed(int(CloseCode.NORMAL_CLOSURE), "closed by client", True))
            return
        final = ConnectionClosed(lost.code, lost.reason, False)
        hub.publish(final)
        hub.notify_callbacks("lost", final)


def _current_task() -> Optional[asyncio.Task[Any]]:
    """The running task, if any (None in a loop callback, or with no running loop)."""
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _told(exc: BaseException, redact: Callable[[str], str]) -> str:
    """``exc`` with its traceback, as a log shows it, the client's secrets masked (an
    unexpected error's text may quote a header or a URL)."""
    return redact("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())
