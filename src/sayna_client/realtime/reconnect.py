"""Automatic reconnection: the retry loop and the audio held meanwhile.

The loop is opt-in (``SaynaClient(reconnect=ReconnectPolicy())``). It only runs
after a close the client did not ask for, with a code that means the peer or the
network went away (the rule is :func:`sayna_client.protocol.lifecycle.is_recoverable`);
policy refusals (auth, a rejected config) end it at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable
from typing import Callable, Optional

from .._config import ReconnectPolicy, backoff_delay
from ..errors import (
    SaynaConfigRejectedError,
    SaynaConnectionError,
    SaynaHttpError,
    SaynaTimeoutError,
)
from ..protocol.events import ConnectionClosed
from .events import AudioDropped, Reconnected, Reconnecting

__all__ = [
    "STABLE_AFTER",
    "AudioHold",
    "run_reconnect",
]

logger = logging.getLogger("sayna_client")

#: Seconds a re-established session must stay up before its next loss starts a new
#: outage. A session that fails again sooner (the server closes it after ``ready``
#: every time) continues the same outage: the attempt count and the backoff carry
#: on, so the policy's ``max_attempts`` ends the loop instead of reconnecting for ever.
STABLE_AFTER = 30.0


class AudioHold:
    """A FIFO of audio frames bounded in bytes; overflow discards the oldest and counts it."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self._frames: collections.deque[bytes] = collections.deque()
        self._bytes = 0
        self.dropped_frames = 0
        self.dropped_bytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def add(self, frame: bytes) -> None:
        self._frames.append(frame)
        self._bytes += len(frame)
        while self._bytes > self.limit and self._frames:
            old = self._frames.popleft()
            self._bytes -= len(old)
            self.dropped_frames += 1
            self.dropped_bytes += len(old)

    def take(self) -> list[bytes]:
        """Everything held, oldest first; the hold is empty afterwards."""
        frames = list(self._frames)
        self._frames.clear()
        self._bytes = 0
        return frames

    def take_dropped(self) -> Optional[AudioDropped]:
        """An :class:`AudioDropped` report of what overflowed since the last call, if any."""
        if not self.dropped_frames:
            return None
        report = AudioDropped(self.dropped_frames, self.dropped_bytes)
        self.dropped_frames = self.dropped_bytes = 0
        return report

    def discard(self) -> Optional[AudioDropped]:
        """Drop everything (the session will not come back) and report it with the overflow."""
        for frame in self.take():
            self.dropped_frames += 1
            self.dropped_bytes += len(frame)
        return self.take_dropped()


async def run_reconnect(
    policy: ReconnectPolicy,
    info: ConnectionClosed,
    *,
    open_session: Callable[[], Awaitable[None]],
    replay: Callable[[], Awaitable[tuple[int, int]]],
    publish: Callable[[object], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    attempts_used: int = 0,
) -> Optional[int]:
    """Re-open the session with capped exponential backoff and jitter.

    Publishes :class:`Reconnecting` before each attempt and :class:`Reconnected`
    (with what ``replay`` re-sent) on success.

    Args:
        attempts_used: attempts already spent on this outage (a session that was
            re-established and failed again within :data:`STABLE_AFTER`); numbering
            and backoff continue from there.

    Returns:
        The number of the attempt that succeeded, or None when attempts ran out or
        the server refused the session (authentication, rejected config).
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
        else:
            frames, size = await replay()
            publish(Reconnected(attempt, frames, size))
            logger.info("Sayna session re-established after %d attempt(s)", attempt)
            return attempt
    logger.error("Giving up reconnecting after %d attempts", attempt)
    return None
