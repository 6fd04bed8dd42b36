"""Barge-in: stop the agent when the user starts talking over it.

Sayna never interrupts speech by itself (protocol §6.7). A :class:`BargeIn` attached to a
client watches ``stt_result`` events (on the session's dispatcher, in server order) and,
while the agent has unfinished speech, interrupts it through the client's
:class:`~sayna_client.agents.SpeechQueue`: ``clear`` is sent, the attached audio output is
flushed, the speech handles end as interrupted, and a :class:`BargeInEvent` is emitted.

Only speech opened before a result arrived can be interrupted by it: while a speech
opened since is unfinished (the reply an ``stt_result`` callback registered before the
policy sent on that same result), the result interrupts nothing (``clear`` would cancel
that reply too). Speech still playing from the attached audio output after its audio
arrived counts as unfinished (see :mod:`sayna_client.agents.playout`).

Guards against false interruptions: the user's words so far (not counting fillers
such as "um") must number at least ``min_words``, and the user must have been heard for
``min_duration`` seconds (from the turn's first result); a transcript made only of
backchannels ("uh-huh", "yeah") never interrupts. With ``resume_on_noise`` the words
not heard yet are spoken again when the user's turn ends as noise (an empty transcript
or fillers such as "hmm").
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import re
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Optional

from ..errors import SaynaValidationError
from .handle import SpeechHandle

if TYPE_CHECKING:
    from ..client import SaynaClient

__all__ = ["DEFAULT_BACKCHANNELS", "DEFAULT_FILLERS", "BargeIn", "BargeInEvent"]

logger = logging.getLogger("sayna_client")

#: Short acknowledgements that do not take the turn (compared as normalised phrases).
DEFAULT_BACKCHANNELS = frozenset(
    {
        "uh huh", "uh-huh", "mhm", "mm hmm", "mm-hmm", "yeah", "yes", "yep", "yup", "ok",
        "okay", "right", "sure", "i see", "got it", "alright", "all right", "cool", "nice",
    }
)  # fmt: skip
#: Sounds that mean nothing: a turn made only of these is noise (``resume_on_noise``).
DEFAULT_FILLERS = frozenset({"hmm", "hm", "um", "umm", "uh", "er", "erm", "ah", "mm", "eh"})

_WORD = re.compile(r"[\w'-]+")


def _words(text: str) -> list[str]:
    return [w.strip("'-") for w in _WORD.findall(text.lower()) if w.strip("'-")]


@dataclass(frozen=True)
class BargeInEvent:
    """The user talked over the agent (``resumed`` False), or the agent resumed after the
    interruption turned out to be noise (``resumed`` True).

    Attributes:
        transcript: what the user was heard saying when the decision was taken.
        handles: the speech handles interrupted (or, when resumed, the new one).
        text_heard: what the user heard of the interrupted speech.
        text_unheard: the words of the interrupted speech the user did not hear.
        at: ``time.monotonic()`` of the decision.
    """

    type: ClassVar[Literal["barge_in"]] = "barge_in"

    transcript: str
    handles: tuple[SpeechHandle, ...]
    text_heard: str
    text_unheard: str
    resumed: bool = False
    at: float = field(default_factory=time.monotonic)


class BargeIn:
    """A barge-in policy (see the module docstring). Attach it with
    ``client.barge_in(...)`` or :meth:`attach`.

    Args:
        min_words: words the user must have said (backchannels excluded) to interrupt.
        min_duration: seconds from the user's first result of the turn before interrupting.
        backchannels: phrases that never interrupt (lower case), e.g. ``{"yeah", "uh huh"}``.
        fillers: words that are noise; a turn made only of them (or empty) is noise.
        resume_on_noise: after an interruption, speak the unheard words again when the
            user's turn ends as noise.
        on_barge_in: called with each :class:`BargeInEvent` (plain or async), on the
            session's dispatcher task; ``client.on("barge_in", cb)`` works too.

    Raises:
        SaynaValidationError: a guard that is not a number in range (``min_words`` a
            whole number >= 1, ``min_duration`` a finite number >= 0, neither a bool),
            ``backchannels`` or ``fillers`` not a collection of strings,
            ``resume_on_noise`` not a bool, or ``on_barge_in`` not callable.
    """

    def __init__(
        self,
        *,
        min_words: int = 1,
        min_duration: float = 0.0,
        backchannels: Iterable[str] = DEFAULT_BACKCHANNELS,
        fillers: Iterable[str] = DEFAULT_FILLERS,
        resume_on_noise: bool = False,
        on_barge_in: Optional[Callable[[BargeInEvent], Any]] = None,
    ) -> None:
        if type(min_words) is not int or min_words < 1:
            raise SaynaValidationError("min_words must be a whole number >= 1")
        if (
            isinstance(min_duration, bool)
            or not isinstance(min_duration, (int, float))
            or not 0 <= min_duration < math.inf
        ):
            raise SaynaValidationError(
                f"min_duration must be a finite number of seconds >= 0, got {min_duration!r}; "
                "e.g. min_duration=0.5"
            )
        phrases = _strings("backchannels", backchannels, "{'yeah', 'uh huh'}")
        filler_words = _strings("fillers", fillers, "{'um', 'uh'}")
        if not isinstance(resume_on_noise, bool):
            raise SaynaValidationError(
                f"resume_on_noise must be True or False, got {resume_on_noise!r}"
            )
        if on_barge_in is not None and not callable(on_barge_in):
            raise SaynaValidationError(
                f"on_barge_in must be a function (plain or async) taking a BargeInEvent, or "
                f"None, got {type(on_barge_in).__name__}"
            )
        self.min_words = min_words
        self.min_duration = float(min_duration)
        self.backchannels = frozenset(" ".join(_words(p)) for p in phrases)
        self.fillers = frozenset(w.lower() for w in filler_words)
        self.resume_on_noise = resume_on_noise
        self.on_barge_in = on_barge_in
        #: Every decision taken, in order.
        self.history: list[BargeInEvent] = []
        self._client_ref: Optional[weakref.ref[SaynaClient]] = None
        self._unsubscribe: Optional[Callable[[], Any]] = None
        self._turn_started: Optional[float] = None
        self._pending_resume: Optional[BargeInEvent] = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def attach(self, client: SaynaClient) -> BargeIn:
        """Watch ``client``'s results from now on; returns self.

        Raises:
            SaynaValidationError: already attached to a client.
        """
        if self._client is not None:
            raise SaynaValidationError("this BargeIn is already attached; detach() it first")
        self._client_ref = weakref.ref(client)  # the client's callbacks hold this policy
        # Which speech was opened before each result arrived: a result never interrupts
        # speech started after it (the reply an earlier callback of it just sent).
        unstamp = client.speech.stamp_results()
        results = client.on("stt_result", self._on_result)
        closes = client.on("closed", self._on_closed)

        def unsubscribe() -> None:
            results()
            closes()
            unstamp()

        self._unsubscribe = unsubscribe
        return self

    def detach(self) -> None:
        """Stop watching (idempotent); a resume not yet spoken is dropped."""
        for task in list(self._tasks):
            task.cancel()
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = None
        self._client_ref = None

    @property
    def _client(self) -> Optional[SaynaClient]:
        return self._client_ref() if self._client_ref is not None else None

    def is_backchannel(self, text: str) -> bool:
        """``text`` holds a backchannel phrase and nothing else but fillers."""
        words = _words(text)
        index, found = 0, False
        while index < len(words):
            for size in (3, 2, 1):
                if " ".join(words[index : index + size]) in self.backchannels:
                    index += size
                    found = True
                    break
            else:
                if words[index] not in self.fillers:
                    return False
                index += 1
        return found

    def is_noise(self, text: str) -> bool:
        """``text`` is empty or only fillers ("hmm", "um")."""
        return all(word in self.fillers for word in _words(text))

    # --- the decision (on the dispatcher task, in server order) -------------------------

    def _on_closed(self, _event: Any) -> None:
        """The connection closed: the user's turn under way ends with it (the server
        forgets it; after a reconnection the recogniser starts afresh), so the next
        result starts a new turn (``min_duration`` counts from it), and a resume waiting
        for this turn's end is dropped (the speech it would resume went with the
        connection)."""
        self._turn_started = None
        self._pending_resume = None

    def _on_result(self, result: Any) -> Any:
        """Decide on ``result``; returns what ``on_barge_in`` returned, so that the
        dispatcher awaits an ``async`` one and reports its error as any callback's."""
        client = self._client
        if client is None:
            return None
        now = time.monotonic()
        transcript = result.transcript or ""
        started = self._turn_started
        if started is None and transcript.strip():
            started = self._turn_started = now
        final = bool(result.is_speech_final)
        if final:
            self._turn_started = None  # (the next turn starts afresh; this one is decided on)
            if self._pending_resume is not None:
                self._maybe_resume(client, transcript)
                return
            # Else decide on it too: a short utterance may end without any interim.
        queue = client.speech
        # Speech opened after this result arrived (e.g. the reply that an stt_result
        # callback registered before this policy sent on this very result) is not what
        # the user talked over, and ``clear`` would cancel it with the rest: no decision.
        if queue.opened_after(result):
            return
        # The server goes by the latest speak's allow_interruption, not the oldest's.
        if not queue.speaking or not queue.interruptible or not transcript.strip():
            return
        if self.is_backchannel(transcript):
            return
        if len([w for w in _words(transcript) if w not in self.fillers]) < self.min_words:
            return  # fillers alone ("um", "hmm") never interrupt
        if started is None or now - started < self.min_duration:
            return
        handles = queue.interrupt_all()
        heard = handles[0].text_heard if handles else ""
        unheard = (
            " ".join(
                [*handles[0].text.split()[len(heard.split()) :], *[h.text for h in handles[1:]]]
            ).strip()
            if handles
            else ""
        )
        event = BargeInEvent(transcript, tuple(handles), heard, unheard, at=now)
        # The turn goes on after an interim: its speech-final tells whether it was noise.
        resumable = self.resume_on_noise and unheard and not final
        self._pending_resume = event if resumable else None
        return self._emit(client, event)

    def _maybe_resume(self, client: SaynaClient, transcript: str) -> None:
        event, self._pending_resume = self._pending_resume, None
        if event is None or not self.is_noise(transcript):
            return
        self._spawn(self._resume(client, event, transcript))

    async def _resume(self, client: SaynaClient, event: BargeInEvent, transcript: str) -> None:
        try:
            handle = await client.speak(event.text_unheard)
        except Exception as exc:  # the session ended meanwhile: nothing to resume
            logger.debug("barge-in resume not sent: %s", exc)
            return
        resumed = BargeInEvent(transcript, (handle,), event.text_heard, event.text_unheard, True)
        try:
            outcome = self._emit(client, resumed)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:  # reported as the dispatcher reports a callback's error
            name = getattr(self.on_barge_in, "__qualname__", None) or repr(self.on_barge_in)
            logger.error("Sayna callback %s raised while handling 'barge_in'", name, exc_info=exc)
            report = client.speech.report
            if report is not None:
                report(name, "barge_in", exc)

    def _emit(self, client: SaynaClient, event: BargeInEvent) -> Any:
        """Record and publish ``event``, and call ``on_barge_in``: returns what it
        returned (for the caller to await)."""
        self.history.append(event)
        client._emit_local(event)
        callback = self.on_barge_in
        return callback(event) if callback is not None else None

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _strings(name: str, value: Any, example: str) -> tuple[str, ...]:
    """``value``, a collection of strings, as a tuple (read once: it may be a generator).

    Raises:
        SaynaValidationError: one string, not iterable, or an item that is not a string.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise SaynaValidationError(
            f"backchannels and fillers are collections of strings; {name} got {value!r}, "
            f"e.g. {name}={example}"
        )
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise SaynaValidationError(
                f"backchannels and fillers are collections of strings; {name} holds "
                f"{item!r} ({type(item).__name__}), e.g. {name}={example}"
            )
    return items
