"""The speech queue: which :class:`~sayna_client.agents.handle.SpeechHandle` each TTS
frame, completion and error belongs to, and when each handle ends.

The protocol has no per-``speak`` acknowledgement: TTS audio arrives in ``speak`` order
(FIFO), and one ``tts_playback_complete`` marks the whole queue drained (speaks that
overlapped share one). The :class:`SpeechQueue` of a client therefore keeps its handles in
send order (a handle takes its place at its first ``speak``: a ``speak_stream`` still
waiting for its first sentence goes after the speeches sent meanwhile), credits each
audio frame to the oldest unfinished handle that sent something, and finishes every
handle whose last ``speak`` was followed by audio and then a completion, once its text
source is exhausted (the completions that came while it waited for its source are
applied then, in order, to the handles after it; the crediting works on the session's
own counts of TTS frames and bytes, by difference: no call into the queue per frame, see
:class:`SpeechQueue`). A ``speak_stream`` whose source fails after a chunk went out stays
queued and raises once that audio played out. ``interrupt()`` sends ``clear`` (which
cancels everything queued on the server), flushes the attached :class:`AudioOutput` and
ignores audio of the cancelled speech that was already on its way. An output that raises
is reported (see :attr:`SpeechQueue.report`), never a reason to stop.

A failed ``speak`` gets no audio after its ``error``: ``TTS error: ...`` (the provider
failed; Sayna goes on with the next request, protocol 6.7), or a refusal (no completion for
it): ``Failed to synthesize speech: ...``, audio off or no TTS in the session. The queue
credits it to one handle (:meth:`SpeechQueue.on_error`), which ends with a ``SaynaTTSError``.

"Heard" is an estimate: the bytes delivered (minus those an attached output dropped
unplayed) divided by the byte rate of the session's TTS encoding, mapped to words at the
session's measured seconds per word (0.4 s until a handle has played out in full).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Iterable
from typing import Any, Callable, Optional, Union

from .._compat import task_cancelled
from ..errors import SaynaTTSError, SaynaValidationError
from .handle import _UNSENT, SpeechHandle
from .metrics import TurnMetrics
from .output import AudioOutput, bytes_per_second
from .playout import PlayOut
from .segmenter import SentenceSegmenter
from .sources import as_failure, close_source
from .stamps import ResultStamps
from .tts_errors import REFUSALS, SPEECH_FAILURES, speech_error

__all__ = ["AudioOutput", "SpeechHandle", "SpeechQueue", "bytes_per_second"]

logger = logging.getLogger("sayna_client")

#: Seconds per spoken word assumed until the session has measured its own (150 words/min).
DEFAULT_SECONDS_PER_WORD = 0.4

SendSpeak = Callable[[str, bool, bool], Awaitable[None]]
SendClear = Callable[[], Awaitable[None]]


class _Tally:
    """TTS frames and bytes counted by :meth:`SpeechQueue.on_tts_audio` itself, for a
    queue whose owner gives no ``received`` (a separate object: no cycle with the queue)."""

    __slots__ = ("bytes", "frames")

    def __init__(self) -> None:
        self.frames = 0
        self.bytes = 0

    def __call__(self) -> tuple[int, int]:
        return self.frames, self.bytes


class SpeechQueue:
    """The handles of one client, in ``speak`` order (see the module docstring).

    Owned by the client, which passes the functions that put ``speak`` and ``clear`` on
    the wire and calls the ``on_*`` observers inline from its reader.

    Audio is credited to the oldest unfinished handle by difference of the counts
    ``received()`` returns (TTS frames and bytes received so far, counted by the owner's
    own per-frame observer): the queue notes the counts when a handle starts being
    credited and when its last chunk went out, and reads them again when it needs a
    figure, so no TTS frame calls into the queue for that. Frames are passed to
    :meth:`on_tts_audio` only while an output is attached (and, when no ``received`` is
    given, while a handle is unfinished or the metrics await a reply's first byte: the
    queue counts them itself then): the client sets :attr:`listen`, called with
    True/False as that need starts and ends, so a session without an output pays nothing
    per frame for the agents toolkit.
    """

    def __init__(
        self,
        send_speak: SendSpeak,
        send_clear: SendClear,
        tts_format: Callable[[], tuple[str, int]],
        received: Optional[Callable[[], tuple[int, int]]] = None,
    ) -> None:
        self._send_speak = send_speak
        self._send_clear = send_clear
        self._tts_format = tts_format
        # The queue counts the frames itself (on_tts_audio) when the owner does not.
        tally = _Tally() if received is None else None
        self._received: Callable[[], tuple[int, int]] = received or tally  # type: ignore[assignment]
        #: ``listen(True)`` / ``listen(False)``: start / stop calling :meth:`on_tts_audio`
        #: (None: the owner calls it for every frame).
        self.listen: Optional[Callable[[bool], None]] = None
        #: Called when a refused ``speak`` (``Failed to synthesize speech``, which gets
        #: no completion) leaves no speech outstanding: the owner's waits for the
        #: completion end (``speak(wait=True)``, ``drain()``).
        self.refused: Optional[Callable[[], None]] = None
        #: ``report(callback, event_type, error)``: the application's code called by the
        #: toolkit raised outside the dispatcher (the attached output's ``write`` or
        #: ``flush``, a barge-in's ``on_barge_in`` after a resume), named ``callback``: the
        #: owner tells the application (a session: a :class:`~sayna_client.CallbackError`
        #: to its error callbacks and iterators). The caller has logged it, and goes on. A
        #: ``write`` that raises frame after frame is reported at the first of them only.
        self.report: Optional[Callable[[str, str, Exception], None]] = None
        # Not self.byte_rate: the metrics would hold the queue that holds them (a cycle).
        self._start(tally, TurnMetrics(tts_rate=lambda: bytes_per_second(*tts_format())))

    def _start(self, tally: Optional[_Tally], metrics: TurnMetrics) -> None:
        """The queue's state, with ``metrics``; the hooks are set before (as attributes,
        or methods of a subclass: a session's queue, see
        :mod:`sayna_client.realtime.session_speech`)."""
        self._rate_of: Optional[tuple[str, int]] = None  # the format _rate is of
        self._rate: Optional[float] = None
        self._tally = tally
        self._handles: deque[SpeechHandle] = deque()
        self._muted = False
        # A completion is due: a ``speak`` went out since the last completion, ``clear``
        # or refusal. The oldest speech of one ``speak`` sent when none was due is
        # ``_alone``: the next completion is its own, audio or not (text that makes no
        # sound, "...", gets a completion and no frame).
        self._due = False
        self._alone: Optional[SpeechHandle] = None
        # The head handle is credited with the audio received since these counts.
        self._crediting = False
        self._mark_frames = 0
        self._mark_bytes = 0
        # The oldest handle, its text source still open, and the counts (frames, bytes)
        # at the first completion after the audio of its last chunk, then at each one
        # since: the first ends it if the source ends with no chunk more, and the others
        # are applied after it, in order (source_ended); later audio is the next one's.
        self._played: Optional[tuple[SpeechHandle, list[tuple[int, int]]]] = None
        # The handle of the reply whose first audio the metrics await once it is the
        # oldest (its first speak was queued behind earlier speech).
        self._reply: Optional[SpeechHandle] = None
        self._played_seconds = 0.0
        self._played_words = 0
        # A TTS failure not credited yet (on_error): the error, the frame and byte counts
        # when it came, and the oldest and newest speeches it may be.
        self._pending: Optional[tuple[SaynaTTSError, int, int, SpeechHandle, SpeechHandle]] = None
        # Tuples replaced on each (rare) change, and the set made at the first
        # interruption: a session that never uses them holds none (issue #19).
        self._interrupt_listeners: tuple[Callable[[list[SpeechHandle]], None], ...] = ()
        self._open_listeners: tuple[Callable[[SpeechHandle], None], ...] = ()
        self._clear_tasks: Optional[set[asyncio.Task[None]]] = None
        self._output: Optional[AudioOutput] = None
        # The attached output's play position and the speech it still holds (None: no
        # output); see :mod:`.playout`.
        self._playout: Optional[PlayOut] = None
        # Handles opened so far (each handle's ``_seq`` is the count before it), and the
        # count when each ``stt_result`` arrived, while a barge-in asks (see stamp_results).
        self._opened = 0
        self._stamps: Optional[ResultStamps] = None  # made at the first stamp_results
        # The frame count when the output's write last raised (see _output_failed).
        self._write_failed_at = -2
        #: Per-turn latency and usage, fed by this queue and the client's reader.
        self.metrics = metrics
        self._listening = False

    @property
    def output(self) -> Optional[AudioOutput]:
        """Where TTS audio is written as it arrives (see :class:`AudioOutput`), or None."""
        return self._output

    @output.setter
    def output(self, output: Optional[AudioOutput]) -> None:
        if output is self._output:
            return  # the same output: what it holds plays on
        playout = self._playout
        if playout is not None:  # the old output's speech: as played out (unknown now)
            self._playout = None
            playout.release()
        self._output = output
        if output is not None:
            self._playout = PlayOut(output)
        self._write_failed_at = -2  # a new output's first failure is reported
        self._relisten()

    @property
    def listening(self) -> bool:
        """TTS frames matter to the queue now: a handle is unfinished (its audio is
        credited), an output is attached or the metrics await a reply's first byte."""
        return bool(self._handles) or self._output is not None or self.metrics.awaiting_audio

    def _relisten(self) -> None:
        """Tell the owner whether :meth:`on_tts_audio` is needed now (see the class
        docstring)."""
        listen = self.listen
        if listen is None:
            return
        wanted = self._output is not None or (
            self._tally is not None and (bool(self._handles) or self.metrics.awaiting_audio)
        )
        if wanted is not self._listening:
            self._listening = wanted
            listen(wanted)

    # --- crediting audio to the head handle ------------------------------------------------

    # The oldest handle is credited with the audio received since ``_mark_frames`` /
    # ``_mark_bytes`` (``received()`` then) while ``_crediting``: it is the oldest and
    # the queue is not muted. Its ``_bytes`` gets them when it leaves the queue.

    def _credit_head(self) -> None:
        """The oldest handle (if any, with a chunk, and not muted) is credited from now on."""
        handles = self._handles
        if handles and handles[0]._chunks and not self._muted:
            self._mark_frames, self._mark_bytes = self._received()
            self._crediting = True
        else:
            self._crediting = False

    def _settle_head(self) -> None:
        """Add the audio credited to the oldest handle so far to its bytes, before it
        leaves the queue."""
        if self._crediting:
            self._crediting = False
            handle = self._handles[0]
            handle._bytes += self._head_size(handle) - self._mark_bytes
        self._played = None

    def _head_size(self, handle: SpeechHandle) -> int:
        """The byte count up to which the oldest handle is credited: now, or at the
        completion that ended its audio while its text source was open."""
        played = self._played
        if played is not None and played[0] is handle:
            return played[1][0][1]
        return self._received()[1]

    def _audio_after_send(self, handle: SpeechHandle) -> bool:
        """A frame credited to ``handle`` arrived after its last chunk went out."""
        if not self._crediting or self._handles[0] is not handle:
            return False
        frames = self._received()[0]
        return frames > handle._sent_frames and frames > self._mark_frames

    def _delivered(self, handle: SpeechHandle) -> int:
        """``handle.bytes_delivered``: its bytes, with those credited since the mark."""
        if self._crediting and self._handles[0] is handle:
            return handle._bytes + self._head_size(handle) - self._mark_bytes
        return handle._bytes

    # --- state ---------------------------------------------------------------------------

    def byte_rate(self) -> Optional[float]:
        """Bytes per second of the session's TTS audio (None for a compressed format)."""
        tts_format = self._tts_format()
        if tts_format != self._rate_of:  # worked out once per format
            self._rate_of = tts_format
            self._rate = bytes_per_second(*tts_format)
        return self._rate

    @property
    def seconds_per_word(self) -> float:
        """Measured on the session's speech that played out in full (a default before)."""
        if self._played_words and self._played_seconds > 0:
            return self._played_seconds / self._played_words
        return DEFAULT_SECONDS_PER_WORD

    @property
    def current(self) -> Optional[SpeechHandle]:
        """The oldest unfinished handle: the one being heard (or about to be)."""
        playout = self._playout
        if playout:
            return playout.handles[0]
        return self._handles[0] if self._handles else None

    @property
    def speaking(self) -> bool:
        """Speech is outstanding: an unfinished handle exists (also one whose audio has
        all arrived and that the attached output has not played out yet)."""
        return bool(self._handles) or bool(self._playout)

    def _unfinished(self) -> list[SpeechHandle]:
        """Every unfinished handle, oldest first: those the output still plays, then
        the queue."""
        playout = self._playout
        held = playout.handles if playout else []
        return [*held, *self._handles]

    # --- which speech a user's result may interrupt ---------------------------------------

    def stamp_results(self) -> Callable[[], None]:
        """Note, for every ``stt_result`` from now on, how many handles had been opened
        when it arrived (see :meth:`opened_after`); returns a function that stops it
        (for this caller). The owner calls :meth:`on_stt_result` while it is on, told
        through :attr:`watch_results`."""
        stamps = self._stamps
        if stamps is None:
            stamps = self._stamps = ResultStamps()
        return stamps.start(self._watch_results)

    #: ``watch_results(True)`` / ``watch_results(False)``: start / stop calling
    #: :meth:`on_stt_result` inline, as each result arrives (None: the owner calls it for
    #: every result).
    watch_results: Optional[Callable[[bool], None]] = None

    def _watch_results(self, on: bool) -> None:
        watch = self.watch_results
        if watch is not None:
            watch(on)

    def on_stt_result(self, event: Any) -> None:
        """An ``stt_result`` arrived (inline on the reader, before any callback sees it):
        note how many handles were opened by then, while :meth:`stamp_results` is on."""
        stamps = self._stamps
        if stamps is not None:
            stamps.note(event, self._opened)

    def opened_after(self, event: Any) -> bool:
        """An unfinished handle was opened after ``event`` (an ``stt_result``) arrived:
        e.g. the reply an earlier callback of that very result started. Such speech is
        not what the user talked over. False for a result that arrived before
        :meth:`stamp_results` was on. The results that arrived before ``event`` are
        forgotten (callbacks see results in arrival order)."""
        opened = None if self._stamps is None else self._stamps.opened_at(event)
        return opened is not None and any(h._seq >= opened for h in self._unfinished())

    def on_interrupt(self, listener: Callable[[list[SpeechHandle]], None]) -> None:
        """Call ``listener(handles)`` (inline) whenever handles are interrupted."""
        self._interrupt_listeners = (*self._interrupt_listeners, listener)

    def on_open(self, listener: Callable[[SpeechHandle], None]) -> Callable[[], None]:
        """Call ``listener(handle)`` (inline) for every new handle, before its first
        ``speak`` is sent; returns a function that removes the listener."""
        self._open_listeners = (*self._open_listeners, listener)

        def remove() -> None:
            listeners = self._open_listeners
            if listener in listeners:
                index = listeners.index(listener)
                self._open_listeners = listeners[:index] + listeners[index + 1 :]

        return remove

    # --- starting speech -------------------------------------------------------------------

    def open(self, allow_interruption: bool) -> SpeechHandle:
        """A new handle, last in the queue (its chunks are added with :meth:`add_chunk`;
        it is credited no audio nor completion before its first one)."""
        handle = SpeechHandle(self, allow_interruption)
        handle._seq = self._opened
        self._opened += 1
        self._handles.append(handle)
        if self._tally is not None and not self._listening:
            self._relisten()
        for listener in self._open_listeners:
            listener(handle)
        return handle

    def add_chunk(self, handle: SpeechHandle, chunk: str) -> None:
        """``chunk`` of ``handle`` is about to be sent: audio from now on is new speech.

        A handle's first chunk puts it after the handles that have one (the server
        speaks in ``speak`` order), before those that have none yet (a ``speak_stream``
        still waiting for its first sentence)."""
        if not handle._chunks:
            self._place(handle)
        elif self._played is not None and self._played[0] is handle:
            self._played = None  # more of it: that completion was not its end
        handle._chunks += (chunk,)
        if handle._sent_frames != _UNSENT:
            # A chunk after one that went out: audio from now until it is sent does not
            # count, so whether audio came after the last one is settled here.
            handle._sent_frames = -1 if self._audio_after_send(handle) else _UNSENT
        if self._muted:  # new speech after an interruption: its audio counts again
            self._muted = False
            self._credit_head()
        handles = self._handles
        if self.metrics.on_speak(chunk, bool(handles) and handles[0] is not handle):
            self._reply = handle  # its first byte is awaited once it is the oldest

    def _check_reply(self) -> None:
        """The oldest handle changed: if it is the queued reply's, the metrics await its
        first audio byte from now on (forget a reply that ended before)."""
        reply = self._reply
        if reply is None:
            return
        if reply._done:
            self._reply = None
            self.metrics.on_reply_next(measurable=False)
        elif self._handles[0] is reply:
            self._reply = None
            self.metrics.on_reply_next()
            self._relisten()

    def _place(self, handle: SpeechHandle) -> None:
        """Move ``handle`` (its first chunk is added) after the handles that have a
        chunk; the oldest is credited from now on."""
        if handle._done:
            return  # not in the queue
        handles = self._handles
        index = 0
        for other in handles:
            if other is handle or not other._chunks:
                break
            index += 1
        if handles[index] is not handle:
            handles.remove(handle)
            handles.insert(index, handle)
        if index == 0 and not self._muted:
            self._mark_frames, self._mark_bytes = self._received()
            self._crediting = True

    def chunk_sent(self, handle: SpeechHandle, *, last: bool) -> None:
        """The ``speak`` of the chunk added last is on the wire."""
        handle._sent += 1
        handles = self._handles
        first = handle._sent == 1 and not self._due and not self._muted
        self._alone = handle if first and handles and handles[0] is handle else None
        self._due = True
        # Audio counts as after the last chunk only once every chunk added went out.
        if handle._sent == len(handle._chunks):
            handle._sent_frames = self._received()[0]
        else:
            handle._sent_frames = _UNSENT
        if last:
            handle.sent_all = True

    def source_ended(self, handle: SpeechHandle, error: Optional[BaseException] = None) -> None:
        """The text source of ``handle`` (a ``speak_stream``) is exhausted, every chunk
        added went out, or it failed with ``error``: nothing more of it will be sent.

        A handle with no chunk on the server ends now (with ``error``). One with chunks
        there stays in the queue and ends when they played out, with ``error`` if given
        (the audio on its way is its own, not the next speech's); at once if the
        completion after their audio came while the source was still open, and then
        the completions that came since are applied in order, each at its own counts
        (they may end the speeches queued after it)."""
        if handle.done:
            return
        if not handle._sent or handle._sent != len(handle._chunks):
            self.abandon(handle, error)
            return
        if self._pending is not None:
            self._resolve()
        if error is not None:
            handle._error = error  # raised when it ends
        handle.sent_all = True
        played = self._played
        if played is None or played[0] is not handle:
            return
        self._played = None
        if self._crediting and self._handles[0] is handle:
            completions = played[1]
            self._finish_head(handle, *completions[0])
            for frames, size in completions[1:]:
                self._complete(frames, size)
            self._relisten()

    def abandon(self, handle: SpeechHandle, error: Optional[BaseException]) -> None:
        """``handle`` ends now (its send failed, or it had nothing to say), with ``error``
        (else with the server's failure credited to it, if any)."""
        if self._pending is not None:
            self._resolve()
        if error is None:
            error = handle._failure
        handles = self._handles
        if handles and handles[0] is handle:
            self._settle_head()
            handles.popleft()
            self._credit_head()
        elif handle in handles:
            handles.remove(handle)
        handle._finish(interrupted=handle.interrupted, error=error)
        self._check_reply()
        self._relisten()

    def cleared(self) -> list[SpeechHandle]:
        """``clear`` was sent by the application: unfinished handles are interrupted,
        unless the newest speech is non-interruptible (the server ignores the clear)."""
        if not self.speaking or not self.interruptible:
            return []
        return self._interrupt(send_clear=False)

    @property
    def interruptible(self) -> bool:
        """The server takes a ``clear`` now, as far as this queue knows: the newest
        handle with a chunk (the latest ``speak``, whose ``allow_interruption`` the
        server goes by; streams waiting for their first sentence sent nothing) allows
        interruption, or there is none."""
        for handle in reversed(self._unfinished()):
            if handle._chunks:
                return handle.allow_interruption
        return True

    def speak_stream(
        self,
        pieces: Union[AsyncIterable[str], Iterable[str]],
        *,
        flush: bool,
        allow_interruption: bool,
        segmenter: Optional[SentenceSegmenter],
    ) -> SpeechHandle:
        """Start feeding ``pieces`` through ``segmenter`` as ``speak``s; return the handle."""
        if not isinstance(pieces, (AsyncIterable, Iterable)) or isinstance(pieces, (str, bytes)):
            raise SaynaValidationError(
                "speak_stream takes an async iterable (or iterable) of str pieces, e.g. an "
                f"LLM's token stream; got {type(pieces).__name__} (use speak() for one text)"
            )
        # A copy per stream: text one left unsent (interrupted, failed) never reaches another.
        if isinstance(segmenter, SentenceSegmenter):
            cutter = segmenter.fresh()
        elif segmenter is None:
            cutter = SentenceSegmenter()
        elif callable(getattr(segmenter, "push", None)) and callable(
            getattr(segmenter, "finish", None)
        ):
            cutter = segmenter  # a segmenter of the user's own: push(piece), finish()
        else:
            raise SaynaValidationError(
                f"segmenter must be a SentenceSegmenter (or an object with push(piece) and "
                f"finish() methods returning lists of chunks) or None, got "
                f"{type(segmenter).__name__}; e.g. segmenter=SentenceSegmenter(min_chars=20)"
            )
        handle = self.open(allow_interruption)
        handle._task = asyncio.ensure_future(self._feed(handle, pieces, cutter, flush))
        return handle

    async def _feed(
        self,
        handle: SpeechHandle,
        pieces: Union[AsyncIterable[str], Iterable[str]],
        cutter: SentenceSegmenter,
        flush: bool,
    ) -> None:
        try:
            if isinstance(pieces, AsyncIterable):
                async for piece in pieces:
                    for chunk in cutter.push(piece):
                        await self._send(handle, chunk, flush and not handle._chunks)
            else:
                for piece in pieces:
                    for chunk in cutter.push(piece):
                        await self._send(handle, chunk, flush and not handle._chunks)
            for chunk in cutter.finish():
                await self._send(handle, chunk, flush and not handle._chunks)
        except BaseException as exc:
            # A cancellation is ours when the handle ended (interrupted, lost, failed) and
            # cancelled its feed, or the task itself was cancelled (a loop shutting down).
            # Else the source, the segmenter or a send failed (a source's own
            # CancelledError too: it awaited an LLM request cancelled elsewhere): the
            # handle raises it, once the chunks on the server played out (none sent: now).
            ours = isinstance(exc, asyncio.CancelledError) and (handle.done or task_cancelled())
            if not ours:
                self.source_ended(handle, as_failure(exc))
            elif not handle.done:
                self.abandon(handle, None)
            await close_source(pieces)
            if ours:
                raise
            return
        self.source_ended(handle)  # (nothing to say: done at once)

    @property
    def feeding(self) -> bool:
        """Speech is outstanding that the session cannot see: an unfinished
        ``speak_stream`` is still reading its text source (it has more to send, or has
        yet to find it has nothing more), or the attached output still plays speech
        whose audio has all arrived (see :mod:`.playout`)."""
        return bool(self._feeds())

    async def fed(self) -> None:
        """Wait until no unfinished ``speak_stream`` is reading its text source (each
        has sent its last chunk, what it sent plays on, or ended) and the output has
        played the speech it holds (or was taken to have stalled). Streams started
        meanwhile are waited for too. Cancelling the wait leaves the speech as it is.
        """
        while True:
            feeds = self._feeds()
            if not feeds:
                return
            await asyncio.wait(feeds)

    def _feeds(self) -> list[asyncio.Task[None]]:
        """The tasks of the unfinished ``speak_stream`` handles still reading their
        source (not the current task: a source cannot wait for itself), and the one
        watching the output play the speech it holds."""
        current = asyncio.current_task()
        playout = self._playout
        watcher = playout.watcher if playout is not None else None
        return [
            task
            for task in (watcher, *(handle._task for handle in self._handles))
            if task is not None and not task.done() and task is not current
        ]

    @property
    def settled(self) -> bool:
        """No ``clear`` of an interruption is on its way: a ``speak`` sent now is not
        cancelled by one (else :meth:`settle` waits for it)."""
        return not self._clear_tasks

    async def settle(self) -> None:
        """Wait until the ``clear`` of an interruption is on the wire, so that a ``speak``
        sent next is not cancelled by it."""
        while self._clear_tasks:
            await asyncio.gather(*self._clear_tasks, return_exceptions=True)

    async def _send(self, handle: SpeechHandle, chunk: str, flush: bool) -> None:
        await self.settle()
        if handle.done:
            return
        self.add_chunk(handle, chunk)
        await self._send_speak(chunk, flush, handle.allow_interruption)
        self.chunk_sent(handle, last=False)

    # --- interrupting ------------------------------------------------------------------------

    def interrupt_all(self) -> list[SpeechHandle]:
        """Interrupt every unfinished handle (see :meth:`SpeechHandle.interrupt`); returns
        them. ``clear`` is sent on a task (its failure on a closed socket is logged)."""
        return self._interrupt(send_clear=True)

    def _interrupt(self, *, send_clear: bool) -> list[SpeechHandle]:
        if self._pending is not None:
            self._resolve()
        self._settle_head()
        playout = self._playout
        handles = [*(playout.take() if playout is not None else ()), *self._handles]
        self._handles.clear()
        self._muted = True
        self._due = False  # cleared speech gets no completion (sent here or by the app)
        unplayed = 0
        output = self._output
        if output is not None:
            try:
                unplayed = output.flush()
            except Exception as exc:  # the handles end and clear goes out all the same
                self._output_failed("flush", "interruption", exc)
        # The output's unplayed audio belongs to the newest handles that had audio (the
        # audio of speeches that overlapped is the oldest one's).
        for handle in reversed(handles):
            taken = min(unplayed, handle.bytes_delivered)
            unplayed -= taken
            handle._finish(interrupted=True, unplayed=taken, error=handle._failure)
        self._check_reply()  # (ended)
        if send_clear:
            task = asyncio.ensure_future(self._clear())
            tasks = self._clear_tasks
            if tasks is None:
                tasks = self._clear_tasks = set()
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        for listener in self._interrupt_listeners:
            listener(handles)
        self._relisten()
        return handles

    async def _clear(self) -> None:
        try:
            await self._send_clear()
        except Exception as exc:  # nothing left to stop when the session is gone
            logger.debug("clear after an interruption not sent: %s", exc)

    # --- observers (inline on the reader) -------------------------------------------------

    def on_tts_audio(self, data: bytes) -> None:
        """One TTS frame, while :attr:`listen` asks for them: to the output unless it is
        audio of cancelled speech (counted here when the owner gives no ``received``)."""
        tally = self._tally
        if tally is not None:
            size = len(data)
            tally.frames += 1
            tally.bytes += size
            self.metrics.on_tts_audio(size)
            if not self._handles and self._output is None:
                self._relisten()  # the metrics may have had their first byte: stop listening
                return
        output = self._output
        if output is not None and not self._muted:  # muted: cancelled speech's late audio
            try:
                output.write(data)
            except Exception as exc:  # the output's fault: not a reason to end the session
                self._output_failed("write", "tts_audio", exc)
            playout = self._playout
            if playout is not None:
                playout.written += len(data)

    def _output_failed(self, method: str, event_type: str, exc: Exception) -> None:
        """The attached output's ``method`` raised: logged, and told to the owner; a
        ``write`` that raises for the frame after one whose write raised (a device gone:
        every frame would) is logged at DEBUG only (a run of them is reported once)."""
        callback = f"audio_output.{method}"
        if method == "write":
            # No work per frame for this: the frame count tells whether the last
            # failure was the frame before (on_tts_audio gets every frame while an
            # output is attached).
            frames = self._received()[0]
            last, self._write_failed_at = self._write_failed_at, frames
            if last == frames - 1:
                logger.debug("Sayna %s raised again: %r", callback, exc)
                return
        logger.error("Sayna %s raised while handling %r", callback, event_type, exc_info=exc)
        report = self.report
        if report is not None:
            report(callback, event_type, exc)

    def on_playback_complete(self, _event: object) -> None:
        """A ``tts_playback_complete``: the handles it ends are done (see :meth:`_complete`)."""
        if self._pending is not None:
            self._resolve()
        if self._crediting:
            self._complete(*self._received())
        self._due = False
        self._alone = None
        if self._tally is not None or self._listening:
            self._relisten()

    def _complete(self, frames: int, size: int) -> None:
        # One completion marks the server's whole queue drained. FIFO: the oldest handle
        # is done once it was sent in full and a frame credited to it arrived after its
        # last chunk went out (audio goes to the oldest: the ones after it have none of
        # their own yet), and with it those after it that overlapped (see _overlapped).
        # A speech the server failed (on_error) ends at it, with or without audio. One
        # whose text source is still open is noted, with the completions after it (the
        # speeches behind it played out meanwhile): it ends if the source ends with no
        # chunk more, and they are applied then (source_ended).
        handles = self._handles
        if not (handles and self._crediting):
            return
        handle = handles[0]
        if (
            (frames > handle._sent_frames and frames > self._mark_frames)
            or handle._failure is not None
            or (handle is self._alone and len(handle._chunks) == 1)
        ):
            if handle.sent_all:
                self._finish_head(handle, frames, size)
            elif handle._sent == len(handle._chunks):
                # Noted, and so are the completions after it (it gets here at each one
                # after a frame; one with no frame since would change nothing).
                played = self._played
                if played is None:
                    self._played = (handle, [(frames, size)])
                else:
                    played[1].append((frames, size))

    def _finish_head(self, handle: SpeechHandle, frames: int, size: int) -> None:
        """The oldest handle played out at the counts ``frames``, ``size`` (a completion
        came then): it ends, with those after it that overlapped it."""
        handles = self._handles
        handles.popleft()
        failure = handle._failure
        handle._bytes += size - self._mark_bytes
        self._mark_frames = frames  # where the next one's audio starts
        self._mark_bytes = size
        self._crediting = bool(handles) and bool(handles[0]._chunks)
        rate = self.byte_rate()
        if rate is not None and failure is None:  # (a failed one: not its length)
            self._played_seconds += handle._bytes / rate
            self._played_words += len(handle.text.split())
        if self._playout is None:  # (no output that tells what it holds: ends now)
            handle._finish(interrupted=False, error=failure)
        else:
            self._audio_ended(handle, size, failure)
        if handles:
            self._overlapped(frames, size, rate)
        self._check_reply()

    def _overlapped(self, frames: int, size: int, rate: Optional[float]) -> None:
        """The completion that finished the oldest handle (at the counts ``frames``,
        ``size``) also ends the handles after it that were sent in full and had a frame
        after their last chunk went out: the server synthesized them in one run with it
        (a ``speak`` sent while another is synthesized is queued there, and only the end
        of the queue is reported). Their audio was credited to the oldest, whose bytes
        hold it, so they add their words to the session's seconds per word and no
        seconds. A handle sent after the last frame waits for a later completion: this
        one may have left the server before its ``speak`` arrived. One the server failed
        ends with its failure. The first one whose text source is still open is noted
        as :meth:`_complete` notes the oldest (it ends when its source ends)."""
        handles = self._handles
        done = []
        while handles:
            handle = handles[0]
            if not (frames > handle._sent_frames or handle._failure is not None):
                break
            if not handle.sent_all:
                if handle._sent == len(handle._chunks):
                    self._played = (handle, [(frames, size)])
                break
            done.append(handles.popleft())
        self._crediting = bool(handles) and bool(handles[0]._chunks)
        for handle in done:
            failure = handle._failure
            if rate is not None and failure is None:
                self._played_words += len(handle.text.split())
            self._audio_ended(handle, size, failure)

    def _audio_ended(self, handle: SpeechHandle, size: int, failure: Optional[Exception]) -> None:
        """``handle``'s audio has all arrived (up to the byte count ``size``): it ends, now
        or, when the attached output tells what it holds, once the output played it
        (see :mod:`.playout`)."""
        playout = self._playout
        if playout is None or self._muted:
            handle._finish(interrupted=False, error=failure)
            return
        # The bytes written to the output when the count was ``size`` (every frame since
        # was written to it).
        end = playout.written - max(0, self._received()[1] - size)
        playout.end(handle, end, failure, self.byte_rate())

    # --- a speech the server failed ----------------------------------------------------

    def on_error(self, event: Any) -> None:
        """An ``error`` event: a ``TTS error: ...`` (or a refused ``speak``, ``Failed to
        synthesize speech: ...``: Google TTS, a provider not connected) is credited to
        one speech.

        Sayna synthesizes its requests (one per ``speak``) in order; a failed one gets
        no audio after its error, the next one's audio follows. The error names no
        request: it is the oldest unfinished speech with a ``speak`` out and no audio
        after it (providers mostly refuse a request before any audio), else (all had
        audio after theirs: sent back to back) what follows decides (:meth:`_resolve`):
        audio after the error, the oldest (the failed request was not the server's
        last); a completion with no audio first, the newest. The oldest speech of one
        ``speak`` ends at once (nothing more of it can come); the others at the next
        completion or interruption, in order."""
        message = event.message
        if not message.startswith(SPEECH_FAILURES):
            return
        if self._pending is not None:
            self._resolve()
        frames, size = self._received()
        # Only speech the server got can fail: a chunk of it went out (after a clear,
        # no handle has until the next chunk is added).
        candidates = [h for h in self._handles if h._sent and h._failure is None]
        if not candidates:
            logger.debug("a TTS error with no speech of ours to credit it to: %s", message)
            return
        error = speech_error(message)
        for handle in candidates:
            if not frames > handle._sent_frames:  # no audio since its last chunk went out
                self._fail(handle, error, frames, size)
                break
        else:
            if len(candidates) == 1:
                self._fail(candidates[0], error, frames, size)
            else:
                self._pending = (error, frames, size, candidates[0], candidates[-1])
        refused = self.refused
        if not self._handles and message.startswith(REFUSALS):
            self._due = False  # no completion for the last speech
            if refused is not None:
                refused()
        self._relisten()

    def _resolve(self) -> None:
        """Credit the failure :meth:`on_error` left open: audio since the error, to the
        oldest speech it may be; none, to the newest."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        error, frames, size, oldest, newest = pending
        handle = oldest if self._received()[0] > frames else newest
        if not handle.done:
            self._fail(handle, error, frames, size)

    def _fail(self, handle: SpeechHandle, error: SaynaTTSError, frames: int, size: int) -> None:
        """``handle`` failed on the server when the counts were ``frames``, ``size``: it
        ends now if it is the oldest and was one ``speak`` (its audio is the audio up to
        then, the next one's starts there), else it ends with the failure later."""
        handles = self._handles
        if handles[0] is not handle or not handle.sent_all or len(handle._chunks) != 1:
            handle._failure = error
            return
        handles.popleft()
        if self._crediting:
            handle._bytes += max(0, size - self._mark_bytes)
            self._mark_frames, self._mark_bytes = frames, max(size, self._mark_bytes)
        self._crediting = bool(handles) and bool(handles[0]._chunks) and not self._muted
        handle._failure = error
        handle._finish(interrupted=False, error=error)
        self._check_reply()

    def on_closed(self, event: Any) -> None:
        """The socket closed: unfinished handles end as interrupted and lost (nothing
        more arrives), those the server failed with their failure; so does speech the
        output still holds (it plays on: the output is the application's, not flushed),
        unless the client reconnects (``will_reconnect``): its audio has all arrived, so
        it stays held, and barge-in can still stop it."""
        if self._pending is not None:
            self._resolve()
        self._settle_head()
        playout = self._playout
        reconnecting = getattr(event, "will_reconnect", False)  # (none given: a final close)
        held = () if playout is None or reconnecting else playout.take()
        handles = [*held, *self._handles]
        self._handles.clear()
        self._due, self._alone = False, None  # the next session owes nothing
        for handle in handles:
            handle._finish(interrupted=True, error=handle._failure, lost=True)
        self._check_reply()  # (ended)
        self._relisten()
