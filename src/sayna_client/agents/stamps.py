"""Which speech a user's result may interrupt: for each ``stt_result`` that arrived
while a barge-in asks, how many speech handles had been opened by then.

A reply that an earlier callback of a result started is not what the user talked over;
the :class:`~sayna_client.agents.SpeechQueue` answers that with these stamps (see
:meth:`~sayna_client.agents.SpeechQueue.opened_after`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

__all__ = ["ResultStamps"]

#: Stamps kept at most; past it, the older half goes (nobody looks them up any more).
_MAX_STAMPS = 4096


class ResultStamps:
    """The stamps of one queue, kept while at least one caller asked for them."""

    __slots__ = ("_stamps", "_users")

    def __init__(self) -> None:
        self._stamps: Optional[list[tuple[Any, int]]] = None
        self._users = 0

    def start(self, watch: Callable[[bool], None]) -> Callable[[], None]:
        """Stamp every result from now on; ``watch(True)`` at the first caller and
        ``watch(False)`` once the last one stopped. Returns the function that stops it
        (for this caller; calling it again does nothing)."""
        self._users += 1
        if self._users == 1:
            self._stamps = []
            watch(True)
        stopped = False

        def stop() -> None:
            nonlocal stopped
            if stopped:
                return
            stopped = True
            self._users -= 1
            if not self._users:
                self._stamps = None
                watch(False)

        return stop

    def note(self, event: Any, opened: int) -> None:
        """``event`` arrived when ``opened`` handles had been opened (kept while on)."""
        stamps = self._stamps
        if stamps is not None:
            if len(stamps) >= _MAX_STAMPS:
                del stamps[: _MAX_STAMPS // 2]
            stamps.append((event, opened))

    def opened_at(self, event: Any) -> Optional[int]:
        """How many handles had been opened when ``event`` arrived (None: not stamped).
        The stamps of results that arrived before it are forgotten (callbacks see
        results in arrival order); its own is kept (another policy may look it up)."""
        stamps = self._stamps
        if not stamps:
            return None
        for index, (stamped, opened) in enumerate(stamps):
            if stamped is event:
                del stamps[:index]
                return opened
        return None
