"""How a speech queue credits TTS audio to its handles, against the rule it implements.

The queue credits audio by difference of the session's frame and byte counts (no call
into it per frame); :class:`Reference` is the rule written out frame by frame: a handle's
first chunk puts it after the handles that have one, before those that have none (the
server speaks in send order); every frame goes to the oldest unfinished handle if it has
a chunk, unless an interruption muted the queue (until the next chunk is added), and a
completion finishes the oldest handles, in order, while each was sent in full and a frame
came after its last chunk went out, with every added chunk sent (one completion ends
speaks that overlapped: the server reports its queue drained; the oldest needs a frame of
its own, one since it became the oldest).

A completion that would end the oldest handle but for its text source still being open
is noted, and so is a handle that would end with it as overlapping (every chunk sent, a
frame after its last one by then, or failed) but for its open source, once the handles
before it ended: the frames after it are not that handle's, and the completions after
it are noted too, with the handles that had a frame after their last chunk by then and
the frames after each. When the source ends with no chunk more, the handle ends as at
the first (the handles after it sent in full that had a frame after their last chunk by
then, or failed, end with it), then each noted completion is applied in order as if it
came then, with its frames credited as if they came after it. A chunk added to a noted
handle forgets its notes (the frames become its own), and takes it out of every note's
handles with a frame after their last chunk.

A ``TTS error`` (or a refused ``speak``'s ``Failed to synthesize speech``) is credited to
one handle that had a chunk sent and is not failed: the
oldest with no frame after its last chunk, else the only one, else the oldest or the
newest of them by what follows: a frame before the next completion, error, interruption
or close means the oldest (and the frames after the error are then the next handle's),
none the newest. A failed handle of one chunk that is the oldest and sent in full ends
then; any other failed handle ends at a completion, as if a frame had come after its
last chunk, or with the others at an interruption or the close.

Random sequences of the queue's inputs (fixed seeds) must leave both with the same figures.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Optional

import pytest

from sayna_client import SaynaTTSError
from sayna_client.agents import SpeechHandle, SpeechQueue


class RefHandle:
    def __init__(self, allow_interruption: bool) -> None:
        self.allow_interruption = allow_interruption
        self.chunks: list[str] = []
        self.sent = 0
        self.sent_all = False
        self.audio_after_last_send = False
        self.bytes = 0
        self.own_frames = 0  # frames credited to it since it became the oldest
        self.done = False
        self.interrupted = False
        self.failed = False
        self.heard: Optional[int] = None
        self.error = False  # its text source failed
        # The completions noted while its source was open (see the module docstring).
        self.record: Optional[list[Note]] = None


class Note:
    """A completion noted while the oldest handle's source was open: the handles that had
    a frame after their last chunk then, and the frames and bytes after it."""

    def __init__(self, flags: list[RefHandle]) -> None:
        self.flags = flags
        self.frames = 0
        self.bytes = 0


class Pending:
    """A TTS error credited by what follows it (see the module docstring)."""

    def __init__(self, oldest: RefHandle, newest: RefHandle) -> None:
        self.oldest = oldest
        self.newest = newest
        self.frames = 0  # frames since the error
        self.bytes = 0


class Reference:
    def __init__(self) -> None:
        self.handles: deque[RefHandle] = deque()
        self.muted = False
        self.output: Optional[Sink] = None
        self.pending: Optional[Pending] = None
        # A completion is due (a speak went out since the last completion, clear or
        # refusal); the oldest speech of one speak sent when none was due: the next
        # completion ends it, audio or not.
        self.due = False
        self.alone: Optional[RefHandle] = None

    def open(self, allow_interruption: bool) -> RefHandle:
        handle = RefHandle(allow_interruption)
        self.handles.append(handle)
        return handle

    def add_chunk(self, handle: RefHandle, chunk: str) -> None:
        if not handle.chunks and not handle.done:  # after the handles that have a chunk
            self.handles.remove(handle)
            index = 0
            while index < len(self.handles) and self.handles[index].chunks:
                index += 1
            self.handles.insert(index, handle)
        if handle.record is not None:  # more of it: the completion was not its end
            for note in handle.record:
                handle.bytes += note.bytes
                handle.own_frames += note.frames
            handle.record = None
        for other in self.handles:
            for note in other.record or ():
                if handle in note.flags:
                    note.flags.remove(handle)
        if handle.sent == len(handle.chunks):
            # Audio after the chunks so far counts (until this one is sent) only for
            # the oldest, when it had audio of its own.
            oldest = bool(self.handles) and self.handles[0] is handle and not self.muted
            handle.audio_after_last_send = (
                oldest and handle.audio_after_last_send and handle.own_frames > 0
            )
        handle.chunks.append(chunk)
        self.muted = False

    def chunk_sent(self, handle: RefHandle, last: bool) -> None:
        handle.sent += 1
        first = handle.sent == 1 and not self.due and not self.muted
        self.alone = handle if first and self.handles and self.handles[0] is handle else None
        self.due = True
        handle.audio_after_last_send = False
        if last:
            handle.sent_all = True

    def frame(self, data: bytes) -> None:
        if self.pending is not None:
            self.pending.frames += 1
            self.pending.bytes += len(data)
        if self.muted:
            return
        self.credit(1, len(data))
        for handle in self.handles:  # the oldest's audio, after the others' last chunk too
            if handle.sent == len(handle.chunks) > 0:
                handle.audio_after_last_send = True
        if self.output is not None:
            self.output.write(data)

    def credit(self, frames: int, size: int) -> None:
        """Frames to the oldest handle (to its last note while it has some)."""
        if self.handles and self.handles[0].chunks:
            head = self.handles[0]
            if head.record is not None:
                head.record[-1].frames += frames
                head.record[-1].bytes += size
            else:
                head.bytes += size
                head.own_frames += frames

    def complete(self) -> None:
        self.resolve()
        self.apply_completion(None)
        self.due, self.alone = False, None

    def apply_completion(self, flags: Optional[list[RefHandle]], first: bool = True) -> None:
        """A completion (a noted one: ``flags``, the handles with a frame after their last
        chunk when it came); not ``first``: the oldest ended at it already."""
        if flags is None:
            flags = [h for h in self.handles if h.audio_after_last_send]
        if self.handles and self.handles[0].record is not None:
            self.handles[0].record.append(Note(list(flags)))
            return
        while self.handles and self.handles[0].chunks:
            handle = self.handles[0]
            audio = handle in flags and (handle.own_frames > 0 or not first)
            audio = audio or (first and handle is self.alone and len(handle.chunks) == 1)
            if not (audio or handle.failed):
                break
            if not handle.sent_all:
                if handle.sent == len(handle.chunks):
                    handle.record = [Note(list(flags))]
                break
            self.handles.popleft()
            handle.done = True
            first = False
        if self.handles and not first:
            self.handles[0].own_frames = 0

    def end(self, handle: RefHandle, error: bool) -> None:
        if handle.done:
            return
        if not handle.sent or handle.sent != len(handle.chunks):
            self.abandon(handle)
            handle.error = handle.error or error
            return
        self.resolve()
        handle.error = handle.error or error
        handle.sent_all = True
        record, handle.record = handle.record, None
        if record is None or not self.handles or self.handles[0] is not handle:
            return
        self.handles.popleft()
        handle.done = True
        self.apply_completion(record[0].flags, first=False)  # those that overlapped it
        self.credit(record[0].frames, record[0].bytes)
        for note in record[1:]:
            self.apply_completion(note.flags)
            self.credit(note.frames, note.bytes)

    def error(self, refusal: bool) -> None:
        self.resolve()
        candidates = [h for h in self.handles if h.sent > 0 and not h.failed]
        if not candidates:
            return
        for handle in candidates:
            if not handle.audio_after_last_send:
                self.fail(handle, 0, 0)
                break
        else:
            if len(candidates) == 1:
                self.fail(candidates[0], 0, 0)
            else:
                self.pending = Pending(candidates[0], candidates[-1])
        if refusal and not self.handles:  # no completion for the last speech
            self.due = False

    def resolve(self) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            return
        if pending.frames:
            if not pending.oldest.done:
                self.fail(pending.oldest, pending.frames, pending.bytes)
        elif not pending.newest.done:
            self.fail(pending.newest, 0, 0)

    def fail(self, handle: RefHandle, frames_after: int, bytes_after: int) -> None:
        handle.failed = True
        if self.handles[0] is not handle or not handle.sent_all or len(handle.chunks) != 1:
            return
        self.handles.popleft()
        handle.done = True
        handle.bytes -= bytes_after  # the frames after its error were the next one's
        handle.own_frames -= frames_after
        if self.handles and self.handles[0].chunks:
            self.handles[0].bytes += bytes_after
            self.handles[0].own_frames = frames_after

    def interrupt(self, only_if_interruptible: bool) -> None:
        if only_if_interruptible:
            # The server goes by the latest speak: the newest handle with a chunk's.
            said = [h for h in self.handles if h.chunks]
            if not self.handles or (said and not said[-1].allow_interruption):
                return
        self.resolve()
        unplayed = self.output.flush() if self.output is not None else 0
        self.muted = True
        self.due = False  # cleared speech gets no completion
        for index, handle in enumerate(self.handles):
            handle.done = handle.interrupted = True
            handle.heard = max(0, handle.bytes - (min(unplayed, handle.bytes) if index == 0 else 0))
        self.handles.clear()

    def closed(self) -> None:
        self.resolve()
        self.due, self.alone = False, None
        for handle in self.handles:
            handle.done = handle.interrupted = True
            handle.heard = handle.bytes
        self.handles.clear()

    def abandon(self, handle: RefHandle) -> None:
        self.resolve()
        if handle in self.handles:
            oldest = self.handles[0] is handle
            self.handles.remove(handle)
            if oldest and self.handles:
                self.handles[0].own_frames = 0
        handle.done = True


class Sink:
    def __init__(self, unplayed: int) -> None:
        self.data = bytearray()
        self.unplayed = unplayed

    def write(self, data: bytes) -> None:
        self.data += data

    def flush(self) -> int:
        return self.unplayed


OPERATIONS = (
    *("speak", "speak", "stream", "open", "chunk", "send", "send"),
    *("frame", "frame", "frame", "frame"),
    *("complete", "complete", "interrupt", "cleared", "closed", "abandon", "output", "no output"),
    *("error", "error", "other error", "end", "end", "end failed"),
)


FAILURES = (
    "TTS error: Provider error: API error (500 Internal Server Error): overloaded",
    "Failed to synthesize speech: TTS error: Provider error: quota exceeded",
)


class Error:
    def __init__(self, message: str) -> None:
        self.message = message


async def _nothing(*_args: object) -> None:
    return None


def _figures(handle: SpeechHandle) -> tuple[object, ...]:
    heard = handle._heard_bytes
    failed = isinstance(handle.exception(), SaynaTTSError)
    error = isinstance(handle.exception(), SourceError)
    return (handle.bytes_delivered, handle.done, handle.interrupted, heard, failed, error)


def _ref_figures(handle: RefHandle) -> tuple[object, ...]:
    error = handle.error and handle.done  # (the source's error wins over a failure)
    failed = handle.failed and handle.done and not error
    return (handle.bytes, handle.done, handle.interrupted, handle.heard, failed, error)


class SourceError(Exception):
    """What a text source raised."""


@pytest.mark.parametrize("seed", range(200))
async def test_audio_is_credited_as_frame_by_frame(seed: int) -> None:
    rnd = random.Random(seed)
    counts = [0, 0]  # frames, bytes: the session's own counts
    listened = [False]
    queue = SpeechQueue(
        _nothing, _nothing, lambda: ("linear16", 16000), received=lambda: (counts[0], counts[1])
    )
    queue.listen = lambda on: listened.__setitem__(0, on)
    ref = Reference()
    pairs: list[tuple[SpeechHandle, RefHandle]] = []
    unsent: list[tuple[SpeechHandle, RefHandle]] = []
    sinks: Optional[tuple[Sink, Sink]] = None
    for _ in range(200):
        op = rnd.choice(OPERATIONS)
        if op == "speak":
            allow = rnd.random() < 0.8
            pair = (queue.open(allow), ref.open(allow))
            queue.add_chunk(pair[0], "one two")
            ref.add_chunk(pair[1], "one two")
            queue.chunk_sent(pair[0], last=True)
            ref.chunk_sent(pair[1], last=True)
            pairs.append(pair)
        elif op == "stream":  # a speak_stream's first sentence went out, its source open
            allow = rnd.random() < 0.8
            pair = (queue.open(allow), ref.open(allow))
            queue.add_chunk(pair[0], "five six")
            ref.add_chunk(pair[1], "five six")
            queue.chunk_sent(pair[0], last=False)
            ref.chunk_sent(pair[1], last=False)
            pairs.append(pair)
        elif op == "open":
            allow = rnd.random() < 0.8
            pairs.append((queue.open(allow), ref.open(allow)))
        elif op == "chunk" and pairs:
            # Often the oldest: a chunk added while audio is credited to its handle.
            oldest = [p for p in pairs if p[0] is queue.current]
            pair = oldest[0] if oldest and rnd.random() < 0.5 else rnd.choice(pairs)
            if not pair[0].done:  # a chunk of a stream, its speak not sent yet
                queue.add_chunk(pair[0], "three four")
                ref.add_chunk(pair[1], "three four")
                unsent.append(pair)
        elif op == "send" and unsent:
            pair = unsent.pop(0)
            last = rnd.random() < 0.6
            queue.chunk_sent(pair[0], last=last)
            ref.chunk_sent(pair[1], last=last)
        elif op == "frame":
            data = bytes(rnd.choice([0, 320, 640, 1000]))
            counts[0] += 1
            counts[1] += len(data)
            if listened[0]:
                queue.on_tts_audio(data)
            ref.frame(data)
        elif op == "complete":
            queue.on_playback_complete(None)
            ref.complete()
        elif op == "interrupt":
            queue.interrupt_all()
            ref.interrupt(only_if_interruptible=False)
        elif op == "cleared":
            queue.cleared()
            ref.interrupt(only_if_interruptible=True)
        elif op == "closed":
            queue.on_closed(None)
            ref.closed()
        elif op == "abandon" and pairs:
            pair = rnd.choice(pairs)
            queue.abandon(pair[0], None)
            ref.abandon(pair[1])
        elif op == "output":
            unplayed = rnd.choice([0, 100, 5000])
            sinks = (Sink(unplayed), Sink(unplayed))
            queue.output, ref.output = sinks
        elif op == "no output":
            queue.output = ref.output = sinks = None
        elif op == "error":  # a failed synthesis, or a refused speak: credited alike
            message = rnd.choice(FAILURES)
            queue.on_error(Error(message))
            ref.error(refusal=message.startswith("Failed to synthesize speech"))
        elif op == "other error":  # not about synthesis: no handle's
            queue.on_error(Error("STT streaming error: reset"))
        elif op in ("end", "end failed") and pairs:  # a stream's text source ended
            # Mostly an unfinished one's: a stream noted at a completion ends before an
            # interruption or the close ends it.
            live = [p for p in pairs if not p[0].done]
            pair = rnd.choice(live if live and rnd.random() < 0.8 else pairs)
            failed = op == "end failed"
            queue.source_ended(pair[0], SourceError() if failed else None)
            ref.end(pair[1], failed)
        assert [_figures(h) for h, _ in pairs] == [_ref_figures(r) for _, r in pairs]
        current = queue.current
        assert (current is None) == (not ref.handles)
        if current is not None:
            assert [r for h, r in pairs if h is current] == [ref.handles[0]]
        if sinks is not None:
            assert sinks[0].data == sinks[1].data
        assert listened[0] is (sinks is not None)  # frames are passed only to an output
