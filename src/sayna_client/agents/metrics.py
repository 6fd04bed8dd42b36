"""Turn latency and usage: what the user feels, measured per turn, with p50/p95.

:class:`TurnMetrics` is fed inline by the client's reader (results and TTS audio, in
arrival order) and by the speech queue (each ``speak`` as it is sent), so every time is
taken when the SDK itself sees the event:

* ``end_to_first_audio``: the user's speech-final result -> the first byte of the agent's
  reply (the latency a caller feels, without the provider's endpointing);
* ``end_to_speak``: speech-final -> the reply's first ``speak`` on the wire (your LLM);
* ``tts_first_byte``: that ``speak`` -> its first audio byte (the TTS provider);
* ``stt_turn``: the turn's first result -> its speech-final (how long the STT took to
  close the turn);
* usage: characters synthesized, seconds of audio synthesized and transcribed, per
  provider (``provider/model`` of the session's configs).

The history (``turns``, the last 1,000) keeps each closed turn as a tuple of numbers and
its transcript, not as a :class:`TurnRecord`: the cycle collector stops tracking such
tuples the first time it sees them, so a long session's history is never scanned by a
full collection (issue #19: at 1,000 sessions and 1.6 turns/s, kept records added
1,600 objects a second to every full collection's work, a million after ten minutes).
A record is made when one is read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Optional, Union, overload

__all__ = ["TurnHistory", "TurnMetrics", "TurnRecord", "percentile"]

_HISTORY = 1000


def percentile(values: list[float], fraction: float) -> Optional[float]:
    """The ``fraction`` quantile (0..1) of ``values`` by nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class TurnRecord:
    """The figures of one user turn and the agent's reply (seconds; None: not measured).

    Also delivered as an event (``type`` ``"turn_metrics"``) when the reply's first audio
    byte arrives, or when the next turn starts without a reply, or when a reply queued
    behind earlier speech ended with no audio told to be its own (the first-byte figures
    are None then: see :meth:`TurnMetrics.on_reply_next`), or when the session closes
    before the reply's first byte (also None then: see
    :meth:`TurnMetrics.on_session_closed`).
    """

    type: ClassVar[Literal["turn_metrics"]] = "turn_metrics"

    transcript: str
    ended_at: float
    stt_turn: Optional[float] = None
    end_to_speak: Optional[float] = None
    tts_first_byte: Optional[float] = None
    end_to_first_audio: Optional[float] = None
    characters: int = 0


#: A closed turn in the history: ``TurnRecord``'s fields in order (atoms only, so the
#: cycle collector untracks the tuple).
_Row = tuple[str, float, Optional[float], Optional[float], Optional[float], Optional[float], int]
#: Rows per group of the history (see :class:`TurnHistory`).
_BLOCK = 50
#: The position of each latency in a :data:`_Row`.
_COLUMN = {"stt_turn": 2, "end_to_speak": 3, "tts_first_byte": 4, "end_to_first_audio": 5}


def _row(record: TurnRecord) -> _Row:
    return (
        record.transcript,
        record.ended_at,
        record.stt_turn,
        record.end_to_speak,
        record.tts_first_byte,
        record.end_to_first_audio,
        record.characters,
    )


class TurnHistory(Sequence[TurnRecord]):
    """The session's last 1,000 :class:`TurnRecord`, oldest first: a read-only sequence
    (``len``, index, slice, iterate, ``==`` with a list of records).

    Closed turns are stored as tuples of numbers (see the module docstring) and read
    back as new, equal :class:`TurnRecord` objects; the last turn, while its reply is
    still measured, is the live record itself. The rows are grouped in tuples of
    :data:`_BLOCK`: a full collection then follows a few pointers per session rather
    than one per turn (600,000 of them cost a 1,000-session process 15 ms per collection).
    The groups and the rows after them are tuples too, replaced as they change (a turn
    closes about once a second): tuples of atoms all the way down, which the collector
    stops tracking, where two lists per session were tracked for ever.
    """

    __slots__ = ("_blocks", "_limit", "_open", "_skip", "_tail")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        #: Full groups of rows, oldest first; the first one's ``_skip`` rows are dropped.
        self._blocks: tuple[tuple[_Row, ...], ...] = ()
        self._skip = 0
        #: The rows after the last full group (fewer than ``_BLOCK``).
        self._tail: tuple[_Row, ...] = ()
        #: The newest record while it is still being measured (not yet a row).
        self._open: Optional[TurnRecord] = None

    def _add(self, record: TurnRecord) -> None:
        """Append ``record`` (the turn being measured; :meth:`_seal` it when done)."""
        if self._open is not None:
            self._seal()
        self._open = record
        while self._stored() >= self._limit:  # keep room for it: at most one round
            if not self._blocks:
                self._tail = self._tail[1:]
                continue
            self._skip += 1
            if self._skip == _BLOCK:
                self._blocks = self._blocks[1:]
                self._skip = 0

    def _seal(self) -> None:
        """The newest record's figures are final: store it as a row."""
        record, self._open = self._open, None
        if record is None:
            return
        tail = (*self._tail, _row(record))
        if len(tail) == _BLOCK:
            self._blocks = (*self._blocks, tail)
            tail = ()
        self._tail = tail

    def _stored(self) -> int:
        return len(self._blocks) * _BLOCK - self._skip + len(self._tail)

    def _rows(self) -> Iterator[_Row]:
        skip = self._skip
        for block in self._blocks:
            yield from block[skip:] if skip else block
            skip = 0
        yield from self._tail

    def _row_at(self, index: int) -> _Row:
        index += self._skip
        blocked = len(self._blocks) * _BLOCK
        if index < blocked:
            return self._blocks[index // _BLOCK][index % _BLOCK]
        return self._tail[index - blocked]

    def _values(self, name: str) -> list[float]:
        """The measured values of the latency ``name`` (None skipped), oldest first."""
        column = _COLUMN[name]
        values: list[Optional[float]] = [row[column] for row in self._rows()]  # type: ignore[misc]
        if self._open is not None:
            values.append(getattr(self._open, name))
        return [v for v in values if v is not None]

    def __len__(self) -> int:
        return self._stored() + (self._open is not None)

    @overload
    def __getitem__(self, index: int) -> TurnRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[TurnRecord]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[TurnRecord, list[TurnRecord]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("turn history index out of range")
        if index == self._stored():
            assert self._open is not None
            return self._open
        return TurnRecord(*self._row_at(index))

    def __iter__(self) -> Iterator[TurnRecord]:
        for row in self._rows():
            yield TurnRecord(*row)
        if self._open is not None:
            yield self._open

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (TurnHistory, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self))


@dataclass
class _Usage:
    characters: int = 0
    seconds_synthesized: float = 0.0
    seconds_transcribed: float = 0.0


@dataclass
class TurnMetrics:
    """Per-turn latency and session usage (see the module docstring).

    ``turns`` is the session's last 1,000 :class:`TurnRecord` (a read-only
    :class:`TurnHistory`).
    """

    turns: TurnHistory = field(default_factory=lambda: TurnHistory(_HISTORY))
    usage: dict[str, _Usage] = field(default_factory=dict)
    #: Read at each ``speak`` and, for metrics fed by :meth:`on_stt_result` and
    #: :meth:`on_tts_audio`, at each turn's start and end and at its reply's first
    #: byte. A client's own metrics take those three from its tracker, which reads
    #: ``time.monotonic`` (the default here): set this only on metrics of your own.
    clock: Callable[[], float] = time.monotonic
    emit: Optional[Callable[[Any], None]] = None
    providers: Callable[[], tuple[str, str]] = lambda: ("stt", "tts")
    tts_rate: Callable[[], Optional[float]] = lambda: None
    #: Seconds of audio sent for transcription so far (a client's own metrics: in every
    #: session of the client).
    transcribed: Callable[[], float] = lambda: 0.0
    #: TTS audio bytes received so far (the client's own count); None: count the sizes
    #: given to :meth:`on_tts_audio` instead.
    synthesized: Optional[Callable[[], int]] = None
    #: Called when a reply's first audio byte starts being awaited (its first ``speak``
    #: went out): the owner then calls :meth:`on_first_audio` at the next TTS frame, and
    #: :meth:`on_tts_audio` need not be called per frame. None: :meth:`on_tts_audio`
    #: times it.
    watch_audio: Optional[Callable[[], None]] = None
    _turn_started: Optional[float] = None
    _open: Optional[TurnRecord] = None
    _speak_at: Optional[float] = None
    #: The reply's first ``speak`` waits behind earlier speech (see :meth:`on_speak`).
    _queued: bool = False
    _tts_bytes: int = 0
    #: ``synthesized()`` when the usage was last brought up to date.
    _tts_bytes_seen: int = 0

    # --- inputs --------------------------------------------------------------------------

    def on_stt_result(self, result: Any) -> None:
        """Feed one ``stt_result`` (every one, in arrival order): a turn starts at its
        first result with text and ends at its speech-final (see :meth:`on_turn`). A
        client's own metrics are fed by its tracker instead, through :meth:`on_turn`."""
        # Every result (a transcript stream's hot path): the clock is read only at a
        # turn's first words and at its speech-final.
        started = self._turn_started
        if not result.is_speech_final:
            if started is None and result.transcript:
                self._turn_started = self.clock()
            return
        now = self.clock()
        self._turn_started = None
        if started is None:
            if not result.transcript:
                return  # an empty speech-final: no turn
            started = now
        self.on_turn(result.transcript or "", started, now)

    def on_turn(self, text: str, words_at: float, ended_at: float) -> None:
        """A user turn ended: ``text`` was said, its first result with text arrived at
        ``words_at`` and its speech-final at ``ended_at`` (``clock()`` readings). Closes
        the turn before (emitting its record, unanswered if no reply came) and measures
        the reply to this one."""
        self._turn_started = None
        if self._open is not None:  # the turn before, still unanswered: its record goes out
            self._close(emit=True)
        record = TurnRecord(text, ended_at)
        record.stt_turn = ended_at - words_at
        self._open = record
        self.turns._add(record)

    def on_speak(self, text: str, queued: bool = False) -> bool:
        """A ``speak`` of ``text`` went out: its characters count in the usage. The first
        after a turn ended is the reply's: its time is taken, and its first audio byte
        awaited from the next TTS frame on; when ``queued`` (earlier speech is to play
        before it, whose frames are not the reply's), only from :meth:`on_reply_next`.
        Returns True in that last case."""
        # Every speak: the usage by name, and the clock only for a reply's first speak.
        name = self._tts_name()
        usage = self.usage.get(name)
        if usage is None:
            usage = self.usage[name] = _Usage()
        usage.characters += len(text)
        record = self._open
        if record is not None:
            record.characters += len(text)
            if record.end_to_speak is None:
                now = self.clock()
                record.end_to_speak = now - record.ended_at
                self._speak_at = now
                if queued:
                    self._queued = True
                    return True
                if self.watch_audio is not None:
                    self.watch_audio()
        return False

    def on_reply_next(self, *, measurable: bool = True) -> None:
        """The reply's speech, queued behind earlier speech (see :meth:`on_speak`), is
        next to play: its first audio byte is awaited from now on. ``measurable=False``:
        it ended without being next (it played out together with the speech before it,
        whose audio runs into its own with no mark between, or it was interrupted): its
        first byte cannot be told, and its record goes out without it."""
        if not self._queued:
            return
        self._queued = False
        if not measurable:
            self._close(emit=True)
        elif self.awaiting_audio and self.watch_audio is not None:
            self.watch_audio()

    @property
    def awaiting_audio(self) -> bool:
        """A reply was spoken and its first audio byte is still to come: only then does
        :meth:`on_tts_audio` measure anything (when ``synthesized`` counts the bytes)."""
        record = self._open
        return (
            record is not None
            and record.end_to_speak is not None
            and record.end_to_first_audio is None
            and not self._queued
        )

    def on_tts_audio(self, size: int) -> None:
        # Hot path (every TTS frame while observed): bytes only; seconds are worked out
        # by summary().
        if self.synthesized is None:
            self._tts_bytes += size
        record = self._open
        if record is None or record.end_to_speak is None or record.end_to_first_audio is not None:
            return
        if not self._queued:  # (queued: the frames of the speech before the reply)
            self.on_first_audio(self.clock())

    def on_first_audio(self, now: float) -> None:
        """A TTS frame arrived at ``now`` (a ``clock()`` reading), the first since
        :attr:`watch_audio` was called: the reply's first byte, if one is still awaited
        (a turn that ended since, unanswered, awaits nothing)."""
        record = self._open
        if record is None or record.end_to_speak is None or record.end_to_first_audio is not None:
            return
        record.end_to_first_audio = now - record.ended_at
        if self._speak_at is not None:
            record.tts_first_byte = now - self._speak_at
        self._close(emit=True)

    def on_session_closed(self) -> None:
        """The session closed: the user turn under way ends with it (the server forgets
        it), and a turn whose reply's first audio byte has not come goes out now, its
        record unmeasured where it was not measured (``tts_first_byte`` and
        ``end_to_first_audio`` None: the reply, if one went out, went with the
        connection, and speech in a later session is no reply to it)."""
        self._turn_started = None
        if self._open is not None:
            self._close(emit=True)

    # --- outputs -------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """p50/p95 and counts of each latency over the session's turns, and the usage per
        provider: a JSON-able dict."""
        out: dict[str, Any] = {"turns": len(self.turns)}
        for name in ("end_to_first_audio", "end_to_speak", "tts_first_byte", "stt_turn"):
            values = self.turns._values(name)
            out[name] = {
                "count": len(values),
                "p50": percentile(values, 0.5),
                "p95": percentile(values, 0.95),
            }
        self._usage(0).seconds_transcribed = self.transcribed()
        synthesized = self.synthesized
        if synthesized is not None:
            total = synthesized()
            self._tts_bytes += max(0, total - self._tts_bytes_seen)
            self._tts_bytes_seen = total
        rate = self.tts_rate()
        if rate and self._tts_bytes:
            self._usage(1).seconds_synthesized += self._tts_bytes / rate
            self._tts_bytes = 0
        out["usage"] = {
            provider: {
                "characters": u.characters,
                "seconds_synthesized": round(u.seconds_synthesized, 3),
                "seconds_transcribed": round(u.seconds_transcribed, 3),
            }
            for provider, u in self.usage.items()
        }
        return out

    def _tts_name(self) -> str:
        """The TTS provider's name, ``providers()[1]`` (read at every ``speak``)."""
        return self.providers()[1]

    def _usage(self, which: int) -> _Usage:
        name = self.providers()[which]
        usage = self.usage.get(name)
        if usage is None:
            usage = self.usage[name] = _Usage()
        return usage

    def _close(self, *, emit: bool) -> None:
        record, self._open = self._open, None
        self._speak_at = None
        self._queued = False
        self.turns._seal()
        if record is not None and emit and self.emit is not None:
            self.emit(record)
