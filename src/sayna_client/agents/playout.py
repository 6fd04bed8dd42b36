"""Speech whose audio has all arrived, held until the attached output has played it.

The server's ``tts_playback_complete`` says the audio was *sent*; a real server with
HTTP providers sends it faster than real time, so an attached speaker may still hold
seconds of it. An :class:`~sayna_client.agents.AudioOutput` that tells how much it holds
(an ``int`` attribute or property ``buffered_bytes``: bytes written and not played yet,
counted as written) lets a speech end only once the output played its last byte: until
then the handle is not done, the queue is still speaking and barge-in can interrupt it
(the output is flushed, and only what it played counts as heard). For an output without
``buffered_bytes`` a speech ends at its completion, as before.

The output's play position is the bytes written to it less those it holds; a speech
ends when that position passes the byte count written when its completion came. It is
polled (every 20 ms) while speech is held: an output need offer no callback. An output
that says it stopped (its ``buffered_bytes`` None after it was a number: a speaker
closed) ends the held speech at the last play position seen: what it had played past
as played out, the rest as interrupted with the audio it did not play unheard. An
output that stops playing without saying so (a speaker never started, a stalled sound
card) ends the held speech as played out once its position has not moved for twice the
held audio's length plus 2 s, with a warning: no ``await handle`` hangs for ever on a
device. ``drain()`` and a graceful ``disconnect()`` wait for the held speech (the
queue's ``fed``); a close that does not reconnect ends what is still held as lost, as
any unfinished speech (the output plays on); across a reconnection it stays held (its
audio has all arrived).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .handle import SpeechHandle

__all__ = ["PlayOut", "buffered_bytes"]

logger = logging.getLogger("sayna_client")

#: Seconds between two looks at the output's ``buffered_bytes`` while speech is held.
_POLL = 0.02
#: Seconds without progress, on top of twice the held audio's length, before giving up.
_STALL_GRACE = 2.0
#: Seconds per held byte assumed for the stall bound when the format has no byte rate.
_UNKNOWN_RATE_LIMIT = 30.0


def buffered_bytes(output: Any) -> Optional[int]:
    """``output.buffered_bytes`` when it offers one (a whole number >= 0), else None (also
    when reading it raises: logged at DEBUG, the output is taken not to offer it)."""
    try:
        value = getattr(output, "buffered_bytes", None)
    except Exception as exc:  # the output's fault: speech ends as without the attribute
        logger.debug("Sayna audio_output.buffered_bytes raised: %r", exc)
        return None
    if type(value) is not int or value < 0:
        return None
    return value


class PlayOut:
    """The play position of one attached output and the speech it still holds.

    Made by the queue for each output it is given. ``written`` counts the bytes the
    queue wrote to the output; :meth:`end` ends a speech, at once or once the output
    played up to a byte count; :meth:`take` hands the held speech back for an
    interruption or a close; :meth:`release` ends it as played out (the output was replaced).
    """

    __slots__ = ("_held", "_output", "_position", "_rate", "_task", "written")

    def __init__(self, output: Any) -> None:
        self._output = output
        #: Bytes per second of the TTS audio (None: compressed), as of the last end().
        self._rate: Optional[float] = None
        #: Bytes written to the output so far.
        self.written = 0
        # The last play position seen (None: the output never told its buffered_bytes).
        self._position: Optional[int] = None
        # (handle, end, error), oldest first: each ends once the play position >= end.
        self._held: list[tuple[SpeechHandle, int, Optional[BaseException]]] = []
        self._task: Optional[asyncio.Task[None]] = None

    @property
    def handles(self) -> list[SpeechHandle]:
        """The held speeches, oldest first (a new list)."""
        return [entry[0] for entry in self._held]

    def __bool__(self) -> bool:
        return bool(self._held)

    @property
    def watcher(self) -> Optional[asyncio.Task[None]]:
        """The task that ends the held speech as the output plays it (None: none held)."""
        return self._task

    def end(
        self,
        handle: SpeechHandle,
        end: int,
        error: Optional[BaseException],
        rate: Optional[float],
    ) -> None:
        """``handle``'s audio has all arrived, up to the ``end``-th byte written: it ends
        (with ``error``) now if the output offers no ``buffered_bytes`` or has played
        that far (and nothing older is held), else once it has. ``rate``: bytes per
        second of the audio (None: compressed), for the stall bound."""
        self._rate = rate
        buffered = buffered_bytes(self._output)
        if buffered is None:
            if self._position is None:  # it never told: ends at its completion
                handle._finish(interrupted=False, error=error)
            else:  # it stopped: ends with what it had played
                self._held.append((handle, end, error))
                self._stopped()
            return
        position = self._position = self.written - buffered
        if not self._held and position >= end:
            handle._finish(interrupted=False, error=error)
            return
        self._held.append((handle, end, error))
        if self._task is None:
            self._task = asyncio.ensure_future(self._watch())

    def take(self) -> list[SpeechHandle]:
        """Stop holding: the held speeches, oldest first, for the caller to end."""
        self._stop()
        held, self._held = self._held, []
        return [entry[0] for entry in held]

    def release(self) -> None:
        """End every held speech as played out (the output is replaced or gone)."""
        self._stop()
        held, self._held = self._held, []
        for handle, _end, error in held:
            handle._finish(interrupted=False, error=error)

    def _stopped(self) -> None:
        """The output stopped playing (``buffered_bytes`` None after a number): the held
        speeches it had played past (at the last position seen) end as played out, the
        others as interrupted, the audio it did not play unheard, and dropped from the
        output (``flush()``): a speaker started again would play it after all, before
        what follows."""
        self._stop()
        held, self._held = self._held, []
        position = self._position or 0
        start = position
        cut = False
        for handle, end, error in held:
            if end <= position:
                handle._finish(interrupted=False, error=error)
                continue
            unplayed = min(end - start, handle.bytes_delivered)
            start = end
            cut = True
            handle._finish(interrupted=True, unplayed=unplayed, error=error)
        if cut:
            try:
                self._output.flush()
            except Exception as exc:  # the output's fault: the speech ended all the same
                logger.debug("Sayna audio_output.flush() raised: %r", exc)

    def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _played(self, position: int) -> None:
        """End the held speeches the play position ``position`` has passed, in order."""
        held = self._held
        count = 0
        while count < len(held) and held[count][1] <= position:
            count += 1
        if count:
            done, self._held = held[:count], held[count:]
            for handle, _end, error in done:
                handle._finish(interrupted=False, error=error)

    def _limit(self, position: int) -> float:
        """Seconds without progress after which the output is taken to have stalled."""
        unplayed = max(0, self._held[-1][1] - position) if self._held else 0
        rate = self._rate
        seconds = _UNKNOWN_RATE_LIMIT if not rate else unplayed / rate
        return 2 * seconds + _STALL_GRACE

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        last, since = -1, loop.time()
        try:
            while self._held:
                await asyncio.sleep(_POLL)
                buffered = buffered_bytes(self._output)
                if buffered is None:  # no longer offered: the output stopped
                    self._stopped()
                    return
                position = self._position = self.written - buffered
                self._played(position)
                if position != last:
                    last, since = position, loop.time()
                elif self._held and loop.time() - since >= self._limit(position):
                    logger.warning(
                        "Sayna audio_output played nothing for %.1f s with speech left to "
                        "play (not started, or stalled): ending that speech as played out",
                        loop.time() - since,
                    )
                    self.release()
                    return
        finally:
            if self._task is asyncio.current_task():
                self._task = None
