"""What the framework adapters share: format checks and one session used by several owners."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Awaitable, Callable, NamedTuple, Optional

from ..agents.handle import SpeechHandle
from ..client import SaynaClient
from ..errors import SaynaError, SaynaValidationError
from ..protocol.encodings import canonical
from ..realtime.events import Event
from ..types import STTConfig, TTSConfig

logger = logging.getLogger("sayna_client.integrations")

__all__ = [
    "REFUSED",
    "SharedSession",
    "SpeakQueue",
    "Unsent",
    "check_client",
    "missing_extra",
    "pcm_stt",
    "pcm_tts",
]

#: How Sayna's ``error`` for a refused ``speak`` begins (no audio and no completion follow;
#: a provider failing during synthesis says ``TTS error: ...`` and a completion follows).
REFUSED = "Failed to synthesize speech:"

#: The framework each adapter needs: (its name, the extra that installs it, its Python).
_FRAMEWORKS = {
    "livekit": ("LiveKit Agents", "Python 3.10 or newer"),
    "pipecat": ("Pipecat", "Python 3.11 or newer"),
}


def missing_extra(adapter: str) -> ImportError:
    """The error for an adapter module imported without its framework: names the extra
    to install (``adapter`` is the module's name under ``integrations/``, also the
    extra's)."""
    framework, python = _FRAMEWORKS[adapter]
    return ImportError(
        f"sayna_client.integrations.{adapter} needs {framework}: "
        f"pip install 'sayna-client[{adapter}]' ({python})"
    )


def check_client(client: object, owner: str) -> SaynaClient:
    """``client`` if it is a ``SaynaClient`` with audio; else ``SaynaValidationError``."""
    if not isinstance(client, SaynaClient):
        raise SaynaValidationError(
            f"{owner} needs client=SaynaClient(url, stt_config, tts_config), got {client!r}"
        )
    if client.without_audio:
        raise SaynaValidationError(
            f"{owner} needs an audio session: build the SaynaClient without without_audio=True"
        )
    return client


def pcm_stt(config: Optional[STTConfig], sample_rate: Optional[int], owner: str) -> STTConfig:
    """``config`` checked for 16-bit mono PCM (the frameworks' audio), at ``sample_rate``
    unless None. Raises ``SaynaValidationError`` naming the field to fix."""
    if config is None:
        raise SaynaValidationError(f"{owner} needs the SaynaClient's stt_config")
    if canonical(config.encoding) != "linear16" or config.channels != 1:
        raise SaynaValidationError(
            f"{owner} sends the framework's 16-bit mono PCM: use STTConfig(encoding='linear16', "
            f"channels=1), got encoding={config.encoding!r}, channels={config.channels}"
        )
    if sample_rate is None or config.sample_rate == sample_rate:
        return config
    return config.model_copy(update={"sample_rate": sample_rate})


def pcm_tts(config: Optional[TTSConfig], sample_rate: Optional[int], owner: str) -> TTSConfig:
    """``config`` checked for raw 16-bit PCM output, at ``sample_rate`` unless None.
    Raises ``SaynaValidationError`` naming the field to fix."""
    if config is None:
        raise SaynaValidationError(f"{owner} needs the SaynaClient's tts_config")
    if canonical(config.audio_format) != "linear16":
        raise SaynaValidationError(
            f"{owner} plays raw PCM: use TTSConfig(audio_format='linear16'), "
            f"got audio_format={config.audio_format!r}"
        )
    if sample_rate is None or config.sample_rate == sample_rate:
        return config
    return config.model_copy(update={"sample_rate": sample_rate})


class SharedSession:
    """One ``SaynaClient`` session used by several adapters (e.g. an STT and a TTS service).

    The first :meth:`acquire` connects, the last :meth:`release` disconnects; the one
    :class:`SharedSession` per client is found with :meth:`of`. Everything runs on one
    event loop.
    """

    _sessions: weakref.WeakKeyDictionary[SaynaClient, SharedSession] = weakref.WeakKeyDictionary()

    def __init__(self, client: SaynaClient) -> None:
        self.client = client
        self._owners: list[object] = []
        self._lock: Optional[asyncio.Lock] = None
        # The configs the session was opened (or last reconfigured) with.
        self._sent: Optional[tuple[Optional[STTConfig], Optional[TTSConfig]]] = None
        # What the last failed acquire raised, until one succeeds (reported once).
        self._failure = ""
        # Set (and replaced) when an acquire succeeds: wakes the owners waiting to retry.
        self._opened: Optional[asyncio.Event] = None
        # The speak queue on the session and who reports its unsent texts (see speaker()).
        self._speaks: Optional[SpeakQueue] = None
        self._report: Optional[Callable[[list[Unsent]], Awaitable[None]]] = None
        # The live adapter of each kind ("STT", "TTS"): see claim().
        self._claims: dict[str, object] = {}

    @classmethod
    def of(cls, client: SaynaClient) -> SharedSession:
        """The shared session of ``client`` (created on first use)."""
        session = cls._sessions.get(client)
        if session is None:
            session = cls._sessions[client] = cls(client)
        return session

    def claim(self, owner: object, kind: str, service: str) -> None:
        """Make ``owner`` the live ``kind`` adapter ("STT" or "TTS") of this session,
        until :meth:`unclaim`. A session carries one call: a second live adapter of the
        same kind would mix two calls' audio (each TTS reads every ``tts_audio``; two
        STTs feed one recognizer and both get every transcript).

        Raises:
            SaynaValidationError: another ``kind`` adapter holds the session
                (``service`` names the one refused).
        """
        held = self._claims.get(kind)
        if held is not None and held is not owner:
            raise SaynaValidationError(
                f"{service}: this SaynaClient already has a running {kind} service (another "
                f"pipeline, or call, is using it), and one Sayna session carries one call: "
                f"two would mix their audio. Use one SaynaClient per call / pipeline "
                f"(one STT and one TTS service on each), or end the other pipeline first"
            )
        self._claims[kind] = owner

    def unclaim(self, owner: object, kind: str) -> bool:
        """Undo ``owner``'s :meth:`claim`. False (nothing changed) if it held none."""
        if self._claims.get(kind) is not owner:
            return False
        del self._claims[kind]
        return True

    def speaker(
        self, speaks: SpeakQueue, report: Callable[[list[Unsent]], Awaitable[None]]
    ) -> None:
        """Register the speak queue that speaks on this session (until
        :meth:`unspeaker`): :meth:`reconfigure` waits for its text in flight to end
        (Sayna drops speech in progress when it is sent a config) and ``report`` gets
        the texts it then fails to send."""
        self._speaks, self._report = speaks, report

    def unspeaker(self, speaks: SpeakQueue) -> None:
        """Unregister ``speaks`` (if it is the one registered: a later one stays)."""
        if self._speaks is speaks:
            self._speaks, self._report = None, None

    def is_reporter(self, owner: object) -> bool:
        """True for the owner that reports session-wide problems (the first one), so a
        server error is reported once, not once per adapter."""
        return bool(self._owners) and self._owners[0] is owner

    def is_owner(self, owner: object) -> bool:
        """True once ``owner``'s :meth:`acquire` succeeded (until its :meth:`release`)."""
        return owner in self._owners

    def first_to_report(self, exc: SaynaError) -> bool:
        """True for the first owner whose :meth:`acquire` failed with ``exc`` since the
        last success: the others failing the same way (every owner tries to connect)
        need not report it again."""
        failure = f"{type(exc).__name__}: {exc}"
        first, self._failure = failure != self._failure, failure
        return first

    async def opened(self, timeout: float) -> None:
        """Wait ``timeout`` seconds, or less: until an :meth:`acquire` of any owner
        succeeds (returns at once when the session is ready and has an owner). An owner
        retrying its failed acquire waits here, so it joins a session another owner
        opened as soon as it is open, not after its own backoff."""
        if self._owners and self.client.ready:
            return
        if self._opened is None:
            self._opened = asyncio.Event()
        try:
            await asyncio.wait_for(self._opened.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    async def acquire(self, owner: object) -> AsyncIterator[Event]:
        """Register ``owner`` and make sure the session is ready with the client's
        current configs. Success wakes the owners waiting in :meth:`opened`.

        Returns ``owner``'s ``client.events()`` iterator, subscribed before the connect
        (nothing of the session is missed) and under this lock: one made before another
        owner's ``connect()`` failed would be ended by that failure (the iterators of a
        session that never began end), and ``owner``, on the session opened just after,
        would read none of its events (its audio or transcripts).

        An adapter set up after the session opened may have changed a config (its
        sample rate): the session is then sent the current configs (``reconfigure``)
        the way :meth:`reconfigure` sends a change, once the text in flight ended
        (Sayna drops the speech in progress when it is sent a config), and ``owner``
        joins after that.

        Raises:
            what ``SaynaClient.connect()`` or ``reconfigure()`` raises; ``owner`` is
            then not registered (and not subscribed).
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        while True:
            async with self._lock:
                client = self.client
                wanted = (client.stt_config, client.tts_config)
                if not (client.ready and self._sent != wanted):
                    events = client.events()
                    try:
                        await client.connect()  # (nothing to do when it is ready)
                    except BaseException:
                        close = getattr(events, "aclose", None)
                        if close is not None:
                            await close()
                        raise
                    self._sent = wanted
                    self._failure = ""
                    if owner not in self._owners:
                        self._owners.append(owner)
                    break
            # (the lock is let go: the change takes it once the text in flight ended)
            await self.reconfigure()
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.set()
        return events

    async def reconfigure(
        self,
        *,
        stt: Optional[dict[str, Any]] = None,
        tts: Optional[dict[str, Any]] = None,
    ) -> None:
        """Change fields of the client's ``stt_config`` / ``tts_config`` (``stt`` and
        ``tts`` map field names to values); a ready session is sent them (``reconfigure``),
        otherwise the session opens with them.

        Sayna drops the speech in progress when it is sent a config (it gets no
        completion), so with a :meth:`speaker` registered the change waits for the text
        in flight to end (its completion, or it is cleared, given up or lost), and the
        texts after it are not sent before the change is applied: the text in flight
        ends as it began, the next ones use the new config. A caller cancelled
        meanwhile does not cancel the change (it is still applied; a failure is then
        logged).

        Raises:
            what ``SaynaClient.reconfigure()`` raises.
        """
        speaks = self._speaks
        if speaks is not None:
            speaks.pause()  # (before any await: no text starts from now on)
        change = asyncio.ensure_future(self._change(speaks, stt, tts))
        try:
            await asyncio.shield(change)
        except asyncio.CancelledError:
            change.add_done_callback(_log_failure)
            raise

    async def _change(
        self,
        speaks: Optional[SpeakQueue],
        stt: Optional[dict[str, Any]],
        tts: Optional[dict[str, Any]],
    ) -> None:
        """:meth:`reconfigure`'s work, once the speak queue is paused."""
        failure: Optional[SaynaError] = None
        try:
            if speaks is not None:
                await speaks.quiet()
            await self._apply(stt, tts)
        except SaynaError as exc:
            failure = exc
        finally:
            if speaks is not None:
                speaks.unpause()
        if speaks is not None:
            unsent = await speaks.send()
            if self._report is not None:
                await self._report(unsent)
        if failure is not None:
            raise failure

    async def _apply(self, stt: Optional[dict[str, Any]], tts: Optional[dict[str, Any]]) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            client = self.client
            stt_config = client.stt_config
            tts_config = client.tts_config
            if stt and stt_config is not None:
                stt_config = stt_config.model_copy(update=stt)
            if tts and tts_config is not None:
                tts_config = tts_config.model_copy(update=tts)
            await client.reconfigure(stt_config=stt_config, tts_config=tts_config)
            if client.ready:
                self._sent = (client.stt_config, client.tts_config)

    async def release(self, owner: object, *, graceful: bool = True) -> None:
        """Unregister ``owner``; the last owner out ends the session.

        ``graceful`` ends it with ``disconnect()``; otherwise with ``abort()`` where the
        client has it (immediate: nothing pending is waited for).
        """
        if owner in self._owners:
            self._owners.remove(owner)
        if self._owners:
            return
        abort = getattr(self.client, "abort", None)
        if not graceful and abort is not None:
            await abort()
        else:
            await self.client.disconnect()


def _log_failure(change: asyncio.Future[None]) -> None:
    """A settings change whose caller was cancelled ended: log its failure, if any."""
    if not change.cancelled() and change.exception() is not None:
        logger.warning("Sayna: settings not applied: %s", change.exception())


class Unsent(NamedTuple):
    """A text :class:`SpeakQueue` could not send: ``speak`` raised ``error``."""

    text: str
    tag: Any
    error: SaynaError


class SpeakQueue:
    """Sends ``speak`` commands to a session one at a time.

    Sayna reports ``tts_playback_complete`` when its queue drains, so completions of
    back-to-back ``speak`` commands coalesce and a client cannot tell which text a
    completion covers. Sending the next text only once the previous one ended makes
    every ``speak`` get exactly one end, so the end of a reply is known exactly, and
    the audio arriving meanwhile is that text's (:attr:`current` says whose). It costs
    nothing audible: Sayna synthesizes requests one after another anyway, and audio
    arrives faster than it plays.

    A text ends at its completion (:meth:`completed`), or without one: refused by the
    server (``Failed to synthesize speech``: call :meth:`completed` too), cancelled by
    ``clear`` (:meth:`cleared`), or lost with the session (:meth:`hold` until the
    session is back, :meth:`reset` when it is over). :meth:`pause` holds the next
    texts back while something must not overlap speech (e.g. a config change):
    :meth:`quiet` waits for the text in flight to end.

    Each text carries a ``tag`` (e.g. the reply it belongs to). Texts of the oldest tag
    waiting go first, in the order they were added: a reply that is still being spoken
    is not held up by texts of a later one added meanwhile.

    Sending failures are returned, not raised (as :class:`Unsent`): the failed text is
    dropped and the next one is tried. A caller cancelled while its ``speak`` waits
    for the socket: if the ``speak`` was already handed to the socket (the SDK then
    still sends it), the text stays in flight, disowned (:meth:`disown`), so the next
    text waits for its end and its audio goes to no one; otherwise it is dropped.

    ``timeout`` (seconds; None: no limit) bounds the wait for a text's end: when a text
    in flight gets neither audio (:meth:`progress`) nor its end for that long,
    ``on_stall(serial)`` is called (inline, from the event loop): its owner then ends
    it with :meth:`expire`, or, when the server may still speak it (``clear`` cannot
    cancel it), lets it finish with :meth:`linger`.
    """

    def __init__(
        self,
        client: SaynaClient,
        *,
        allow_interruption: bool = True,
        timeout: Optional[float] = None,
        on_stall: Optional[Callable[[int], None]] = None,
    ) -> None:
        if timeout is not None and not timeout > 0:
            raise SaynaValidationError(f"timeout is seconds > 0 or None, not {timeout!r}")
        self.client = client
        self.allow_interruption = allow_interruption
        self.timeout = timeout
        self._on_stall = on_stall
        self._serial = 0  # the number of texts sent: which one a stall is about
        self._progress_at = 0.0  # loop time of the in-flight text's last sign of life
        self._timer: Optional[asyncio.TimerHandle] = None
        self._pending: deque[tuple[str, Any]] = deque()
        self._in_flight = False
        self._current: Any = None  # the tag of the text in flight (None: no audio owner)
        self._lingering = False  # the text in flight stalled once (see linger())
        self._held = False
        self._paused = 0  # pause() calls not yet undone by unpause()
        self._free: Optional[asyncio.Event] = None  # set while no text is in flight
        # The order of the tags that have texts in flight or waiting (the oldest first).
        self._rank: dict[Any, int] = {}
        self._ranks = 0

    @property
    def idle(self) -> bool:
        """True when every text sent has ended and none is waiting."""
        return not self._in_flight and not self._pending

    @property
    def in_flight(self) -> bool:
        """A text was sent and has not ended yet."""
        return self._in_flight

    @property
    def current(self) -> Any:
        """The tag of the text in flight (its audio is arriving); None when none is, or
        when its audio belongs to nobody (:meth:`disown`)."""
        return self._current if self._in_flight else None

    @property
    def serial(self) -> int:
        """The number of texts sent so far: the in-flight text's, for :meth:`expire`."""
        return self._serial

    @property
    def lingering(self) -> bool:
        """The text in flight stalled once and was let finish (:meth:`linger`)."""
        return self._in_flight and self._lingering

    def holds(self, tag: Any) -> bool:
        """True while a text of ``tag`` is in flight or waiting."""
        return tag in self._rank

    def progress(self) -> None:
        """Audio of the text in flight arrived: its ``timeout`` starts again."""
        if self._timer is not None:
            self._progress_at = asyncio.get_running_loop().time()

    async def expire(self, serial: int) -> Optional[list[Unsent]]:
        """The text sent as number ``serial`` stalled (see ``on_stall``): end it and send
        the next one. Returns the texts not sent, or None when that text had already
        ended (nothing changed)."""
        if not self._in_flight or serial != self._serial:
            return None
        self._end_current()
        return await self._next()

    def linger(self, serial: int) -> bool:
        """The text sent as number ``serial`` stalled, but the server may still speak it
        (it ignores ``clear`` for speech sent with ``allow_interruption=False``; a slow
        provider, or a network that held the server's messages): it stays in flight,
        disowned (:meth:`disown`: its audio goes to no one), so the next text waits for
        its end (its completion): Sayna's audio carries no request id, and its
        completions none either, so what came after a next text was sent could not be
        told apart from it. It is watched for ``timeout`` again (``on_stall`` once more:
        then end it with :meth:`expire`). Returns False, changing nothing, when that text
        is not in flight or lingers already."""
        if not self._in_flight or serial != self._serial or self._lingering:
            return False
        self.disown()
        self._lingering = True
        self._start_timer()
        return True

    async def add(self, text: str, tag: Any = None) -> list[Unsent]:
        """Speak ``text`` now, or after the texts before it ended. Returns the texts
        that could not be sent (``text`` and any sent after it meanwhile)."""
        if tag not in self._rank:
            self._ranks += 1
            self._rank[tag] = self._ranks
        self._pending.append((text, tag))
        return await self._next()

    async def completed(self) -> list[Unsent]:
        """The text in flight ended (its ``tts_playback_complete``, or the server refused
        it): send the next one. A call with nothing in flight (e.g. the completion of
        speech cleared before) changes nothing. Returns the texts not sent."""
        if not self._in_flight:
            return []
        self._end_current()
        return await self._next()

    def disown(self) -> None:
        """The text in flight goes on (e.g. Sayna ignored ``clear``), but its audio
        belongs to no one any more: :attr:`current` is None until it ends."""
        if self._in_flight:
            tag, self._current = self._current, None
            self._forget(tag)

    def discard(self, tag: Any) -> bool:
        """Forget the waiting texts of ``tag``. True if the text in flight is one of
        its (see :meth:`cleared` and :meth:`disown`)."""
        self._pending = deque(item for item in self._pending if item[1] != tag)
        if self._in_flight and self._current == tag:
            return True
        self._rank.pop(tag, None)
        return False

    async def cleared(self) -> list[Unsent]:
        """``clear`` cancelled the text in flight (it gets no completion): send the
        next one. Returns the texts not sent."""
        if self._in_flight:
            self._end_current()
        return await self._next()

    def hold(self) -> Any:
        """The session was lost (it will be re-established): the text in flight ended
        with it, and nothing is sent until :meth:`resume`. Returns the tag of the text
        that was in flight (None if none)."""
        self._held = True
        tag = self.current
        if self._in_flight:
            self._end_current()
        return tag

    def pause(self) -> None:
        """Send no text until :meth:`unpause` (calls nest); the text in flight goes on."""
        self._paused += 1

    def unpause(self) -> None:
        """Undo one :meth:`pause`; then call :meth:`send` for the texts waiting."""
        self._paused = max(0, self._paused - 1)

    async def send(self) -> list[Unsent]:
        """Send the texts waiting, unless paused or held. Returns the texts not sent."""
        return await self._next()

    async def quiet(self) -> None:
        """Return once no text is in flight (at once if none is). With the queue
        paused, none starts afterwards either."""
        while self._in_flight:
            if self._free is None:
                self._free = asyncio.Event()
            self._free.clear()
            await self._free.wait()

    async def resume(self) -> list[Unsent]:
        """The session is back: send the texts waiting. Returns the texts not sent."""
        self._held = False
        return await self._next()

    def reset(self) -> None:
        """Forget queued and in-flight texts (the session is over)."""
        self._pending.clear()
        self._rank.clear()
        self._in_flight = False
        self._current = None
        self._lingering = False
        self._held = False
        self._stop_timer()
        self._freed()

    def _end_current(self) -> None:
        tag, self._current = self._current, None
        self._in_flight = False
        self._lingering = False
        self._stop_timer()
        self._forget(tag)
        self._freed()

    def _freed(self) -> None:
        """No text is in flight any more: wake :meth:`quiet`."""
        if self._free is not None:
            self._free.set()

    def _start_timer(self) -> None:
        """The text in flight is on the wire: watch for its end (``timeout``)."""
        if self.timeout is None or self._on_stall is None:
            return
        loop = asyncio.get_running_loop()
        self._progress_at = loop.time()
        self._timer = loop.call_at(self._progress_at + self.timeout, self._check, self._serial)

    def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _check(self, serial: int) -> None:
        """The timer of text ``serial`` fired: stalled, unless audio came meanwhile
        (then it is set again from the last audio; one timer per text, not per chunk)."""
        timer = self._timer
        if timer is None or serial != self._serial or self.timeout is None:
            return
        due = self._progress_at + self.timeout
        loop = asyncio.get_running_loop()
        if loop.time() < due:
            self._timer = loop.call_at(due, self._check, serial)
            return
        self._timer = None
        if self._on_stall is not None:
            self._on_stall(serial)

    def _forget(self, tag: Any) -> None:
        """Drop the rank of ``tag`` once none of its texts is in flight or waiting."""
        if not (self._in_flight and self._current == tag) and all(
            item[1] != tag for item in self._pending
        ):
            self._rank.pop(tag, None)

    def _take(self) -> tuple[str, Any]:
        """The next text to send: the first of the oldest tag waiting."""
        pending = self._pending
        rank = self._rank
        best = 0
        for index in range(1, len(pending)):
            if rank[pending[index][1]] < rank[pending[best][1]]:
                best = index
        item = pending[best]
        del pending[best]
        return item

    async def _next(self) -> list[Unsent]:
        unsent: list[Unsent] = []
        while self._pending and not (self._in_flight or self._held or self._paused):
            text, tag = self._take()
            self._in_flight, self._current = True, tag
            self._serial += 1
            # The handle of this speak (the first opened during the call): cancelled
            # after the speak was handed to the socket (it waited for the peer to read),
            # the SDK still sends it, and the handle says so (sent_all).
            handles: list[SpeechHandle] = []
            remove = self.client.speech.on_open(handles.append)
            try:
                await self.client.speak(text, allow_interruption=self.allow_interruption)
            except SaynaError as exc:
                self._end_current()
                unsent.append(Unsent(text, tag, exc))
            except asyncio.CancelledError:
                if handles and handles[0].sent_all:
                    # On the wire all the same: it stays in flight, so the next text
                    # waits for its end and does not get its audio.
                    self.disown()
                    self._start_timer()
                else:
                    self._end_current()
                raise
            except BaseException:
                self._end_current()
                raise
            else:
                self._start_timer()
            finally:
                remove()
        return unsent
