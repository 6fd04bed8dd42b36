"""What the local server received and sent, for tests to assert on the wire.

Every REST request and WebSocket session is appended to :class:`Records` as it happens.
Tests read the lists directly and use :meth:`Records.wait_for` to wait for something to
happen without sleeping. Memory is bounded: each list keeps the newest ``keep_records``
entries (10,000 by default); request bodies, sessions' ``config`` messages and data packet
payloads at most 64 MiB each in all (:data:`BODIES_KEEP_LIMIT`, :data:`CONFIGS_KEEP_LIMIT`,
:data:`PACKETS_KEEP_LIMIT`: past it the oldest records of that list go first); and each
session the first ``keep_records`` messages and ``keep_audio`` bytes of input; the counters
count everything.

The reprs of :class:`RequestRecord` and :class:`SessionRecord` (what a failing assertion
prints) mask credentials: the ``Authorization`` header, ``api_key`` query values, every
``auth`` object and ``secret`` / ``api_key`` value in the JSON, and raw bodies and text
frames (shown as sizes). The fields themselves keep the values.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Optional, TypeVar

__all__ = [
    "AUDIO_KEEP_LIMIT",
    "BODIES_KEEP_LIMIT",
    "CONFIGS_KEEP_LIMIT",
    "PACKETS_KEEP_LIMIT",
    "RECORDS_KEEP_LIMIT",
    "DataPacketRecord",
    "Records",
    "RequestRecord",
    "SessionRecord",
    "WebhookRecord",
]

#: Received audio (and, separately, text) kept per session; counters keep counting past it.
AUDIO_KEEP_LIMIT = 64 * 1024 * 1024
#: Entries kept per list of :class:`Records` and messages per list of a session record.
RECORDS_KEEP_LIMIT = 10_000
#: Bytes of request bodies kept in all; the oldest request records go first.
BODIES_KEEP_LIMIT = 64 * 1024 * 1024
#: Bytes of sessions' ``config`` messages (their text) kept in all; the oldest session
#: records go first.
CONFIGS_KEEP_LIMIT = 64 * 1024 * 1024
#: Bytes of data packet payloads kept in all; the oldest packets go first.
PACKETS_KEEP_LIMIT = 64 * 1024 * 1024

#: What a masked credential reads as.
MASK = "***"
#: JSON keys whose values are masked in reprs (an ``auth`` object: all its values).
_SECRET_KEYS = frozenset(
    {"secret", "api_key", "api_secret", "auth_password", "outbound_auth_password"}
)

T = TypeVar("T")


def _masked(value: Any) -> Any:
    """``value`` (parsed JSON) with every ``auth`` object's values and every secret key's
    value replaced by :data:`MASK`."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if key == "auth" and isinstance(item, dict):
                out[key] = {name: MASK for name in item}
            elif (key == "auth" or key in _SECRET_KEYS) and item is not None:
                out[key] = MASK
            else:
                out[key] = _masked(item)
        return out
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


#: A value serde quotes in its error text (``invalid type: string "sk-..."``): it may be
#: a credential given where a mapping was expected.
_QUOTED_VALUE = re.compile(r'(invalid (?:type|value): string )"(?:[^"\\]|\\.)*"')


def _masked_sent(sent: list[Any]) -> list[Any]:
    """The messages sent, with a value quoted in an ``error`` (serde's "invalid type:
    string ...") masked: it may be a credential."""
    out: list[Any] = []
    for message in sent:
        if isinstance(message, dict) and isinstance(message.get("message"), str):
            message = {**message, "message": _QUOTED_VALUE.sub(r'\1"***"', message["message"])}
        out.append(message)
    return out


def _masked_headers(headers: dict[str, str]) -> dict[str, str]:
    """``Authorization`` (and ``Proxy-Authorization``) shown as their scheme only."""
    out = {}
    for name, value in headers.items():
        if name.lower() in ("authorization", "proxy-authorization"):
            scheme, _, rest = value.partition(" ")
            value = f"{scheme} {MASK}" if rest else MASK
        out[name] = value
    return out


def _masked_query(query: dict[str, str]) -> dict[str, str]:
    return {name: MASK if name == "api_key" else value for name, value in query.items()}


class _MaskedRepr:
    """A dataclass repr with the credentials of some fields masked (see the module)."""

    _MASKERS: dict[str, Callable[[Any], Any]] = {}

    def __repr__(self) -> str:
        parts = []
        for item in fields(self):  # type: ignore[arg-type]
            if not item.repr:
                continue
            value = getattr(self, item.name)
            masker = self._MASKERS.get(item.name)
            shown = masker(value) if masker is not None else value
            parts.append(f"{item.name}={shown if isinstance(shown, _Shown) else repr(shown)}")
        return f"{type(self).__name__}({', '.join(parts)})"


class _Shown(str):
    """Text a repr shows as it is (not quoted)."""


def _size(value: Any) -> _Shown:
    return _Shown(f"<{len(value)} bytes>")


def _frames(value: Any) -> _Shown:
    return _Shown(f"<{len(value)} text frames>")


class _Signal:
    """Wakes :meth:`Records.wait_for` callers whenever anything was recorded."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def fire(self) -> None:
        if not self._waiters:  # the usual case: called for every frame, nobody waiting
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def wait(self) -> Awaitable[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter


@dataclass(repr=False)
class RequestRecord(_MaskedRepr):
    """One REST request (``json`` is the parsed body, or ``None`` if it was not JSON).
    Its repr masks credentials (see the module)."""

    _MASKERS = {
        "headers": _masked_headers,
        "query": _masked_query,
        "body": _size,
        "json": _masked,
    }

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    auth_id: Optional[str] = None
    status: Optional[int] = None


@dataclass(repr=False)
class SessionRecord(_MaskedRepr):
    """One WebSocket session, from upgrade to close.

    ``messages`` holds every client JSON frame that parsed as a JSON object (valid or
    not for the protocol) in arrival order; ``sent`` every JSON frame the server sent.
    ``audio`` keeps the first ``keep_audio`` bytes of binary input (the server's
    setting; :data:`AUDIO_KEEP_LIMIT` by default); the counters count all of it. Its
    repr masks credentials (see the module).
    """

    _MASKERS = {
        "headers": _masked_headers,
        "query": _masked_query,
        "config": _masked,
        "messages": _masked,
        "sent": _masked_sent,
        "raw_text_frames": _frames,
    }

    headers: dict[str, str]
    query: dict[str, str]
    _signal: _Signal = field(repr=False)
    auth_id: Optional[str] = None
    stream_id: Optional[str] = None
    config: Optional[dict[str, Any]] = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    raw_text_frames: list[str] = field(default_factory=list)
    audio_frames: int = 0
    audio_bytes: int = 0
    audio: bytearray = field(default_factory=bytearray, repr=False)
    sent: list[dict[str, Any]] = field(default_factory=list)
    sent_audio_frames: int = 0
    sent_audio_bytes: int = 0
    tts_engine: Optional[str] = None
    stt_engine: Optional[str] = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: Optional[int] = None
    text_frames: int = 0
    text_bytes: int = 0
    sent_events: int = 0
    keep_audio: int = field(default=AUDIO_KEEP_LIMIT, repr=False)
    keep_messages: int = field(default=RECORDS_KEEP_LIMIT, repr=False)
    _kept_text: int = field(default=0, repr=False)
    #: Bytes of the ``config`` kept (its text), counted by the owner's budget.
    _config_bytes: int = field(default=0, repr=False)
    _owner: Optional[Records] = field(default=None, repr=False, compare=False)

    def add_text(self, text: str, message: Any) -> None:
        self.text_frames += 1
        self.text_bytes += len(text)
        if isinstance(message, dict) and message.get("type") == "config":
            self.config = message
            grown, self._config_bytes = len(text) - self._config_bytes, len(text)
            if self._owner is not None:
                self._owner._config_kept(grown)
        if (
            self._kept_text + len(text) > self.keep_audio
            or len(self.raw_text_frames) >= self.keep_messages
        ):
            self._signal.fire()
            return
        self._kept_text += len(text)
        self.raw_text_frames.append(text)
        if isinstance(message, dict):
            self.messages.append(message)
        self._signal.fire()

    def add_audio(self, data: bytes) -> None:
        self.audio_frames += 1
        self.audio_bytes += len(data)
        room = self.keep_audio - len(self.audio)
        if room > 0:
            self.audio += data if len(data) <= room else data[:room]
        self._signal.fire()

    def add_sent(self, frame: Any) -> None:
        if isinstance(frame, (bytes, bytearray)):
            self.sent_audio_frames += 1
            self.sent_audio_bytes += len(frame)
        else:
            self.sent_events += 1
            if len(self.sent) < self.keep_messages:
                self.sent.append(frame)
        self._signal.fire()

    def sent_of_type(self, kind: str) -> list[dict[str, Any]]:
        """Sent JSON messages whose ``type`` is ``kind``, in order."""
        return [message for message in self.sent if message.get("type") == kind]

    def mark_closed(self, code: Optional[int]) -> None:
        if self.closed.is_set():
            return
        self.close_code = code
        self.closed.set()
        self._signal.fire()

    def touch(self) -> None:
        self._signal.fire()


@dataclass
class WebhookRecord:
    """One SIP webhook delivery attempt (``status`` ``None`` when the request failed)."""

    url: str
    headers: dict[str, str]
    body: bytes
    status: Optional[int] = None
    error: Optional[str] = None
    done: bool = False


@dataclass
class DataPacketRecord:
    """A LiveKit data packet published into a simulated room."""

    room: str
    identity: str
    topic: Optional[str]
    payload: bytes


class Records:
    """Everything the server saw. Reset with :meth:`clear` between phases of a test.

    ``keep_audio``: bytes of each session's audio input kept in ``SessionRecord.audio``
    (and of its text frames); ``keep_records``: entries kept per list (the newest) and
    messages per session list (the first).
    """

    def __init__(
        self, keep_audio: int = AUDIO_KEEP_LIMIT, keep_records: int = RECORDS_KEEP_LIMIT
    ) -> None:
        self.keep_audio = keep_audio
        self.keep_records = keep_records
        self._kept_bodies = 0
        self._kept_configs = 0
        self._kept_packets = 0
        self._signal = _Signal()
        self.requests: list[RequestRecord] = []
        self.sessions: list[SessionRecord] = []
        self.webhooks: list[WebhookRecord] = []
        self.data_packets: list[DataPacketRecord] = []
        self.sip_transfers: list[dict[str, str]] = []

    def new_session(self, headers: dict[str, str], query: dict[str, str]) -> SessionRecord:
        record = SessionRecord(
            headers=headers,
            query=query,
            _signal=self._signal,
            keep_audio=self.keep_audio,
            keep_messages=self.keep_records,
            _owner=self,
        )
        return self.add(self.sessions, record)

    def add_packet(self, packet: DataPacketRecord) -> DataPacketRecord:
        """Append a data packet, forgetting the oldest ones while all payloads kept would
        exceed :data:`PACKETS_KEEP_LIMIT` (the newest is always kept)."""
        self.add(self.data_packets, packet)
        self._kept_packets += len(packet.payload)
        if self._kept_packets > PACKETS_KEEP_LIMIT:
            packets = self.data_packets
            self._kept_packets = _trim(packets, lambda kept: len(kept.payload), PACKETS_KEEP_LIMIT)
        return packet

    def _config_kept(self, grown: int) -> None:
        """A session record's ``config`` grew by ``grown`` bytes: forget the oldest session
        records while all configs kept exceed :data:`CONFIGS_KEEP_LIMIT`."""
        self._kept_configs += grown
        if self._kept_configs > CONFIGS_KEEP_LIMIT:
            self._kept_configs = _trim(
                self.sessions, lambda kept: kept._config_bytes, CONFIGS_KEEP_LIMIT
            )

    def add(self, kind: list[T], item: T) -> T:
        """Append ``item`` to one of the lists above (dropping its oldest entries beyond
        ``keep_records``) and wake waiters."""
        kind.append(item)
        if len(kind) > self.keep_records:
            del kind[: len(kind) - self.keep_records]
        self._signal.fire()
        return item

    def keep_body(self, record: RequestRecord, body: bytes) -> None:
        """Store a request's body, forgetting the oldest requests while all bodies kept
        would exceed :data:`BODIES_KEEP_LIMIT`."""
        record.body = body
        self._kept_bodies += len(body)
        if self._kept_bodies > BODIES_KEEP_LIMIT:
            self._kept_bodies = _trim(self.requests, lambda kept: len(kept.body), BODIES_KEEP_LIMIT)

    def touch(self) -> None:
        """Wake waiters after mutating a record in place."""
        self._signal.fire()

    def clear(self) -> None:
        """Forget everything recorded so far (open sessions keep their own record objects)."""
        self.requests.clear()
        self.sessions.clear()
        self.webhooks.clear()
        self.data_packets.clear()
        self.sip_transfers.clear()
        self._kept_bodies = self._kept_configs = self._kept_packets = 0

    @property
    def last_session(self) -> SessionRecord:
        """The most recently opened session.

        Raises:
            LookupError: no session was opened yet.
        """
        if not self.sessions:
            raise LookupError("no WebSocket session recorded yet")
        return self.sessions[-1]

    def requests_to(self, path: str, method: Optional[str] = None) -> list[RequestRecord]:
        """Requests whose path is ``path`` (and method, if given)."""
        return [
            request
            for request in self.requests
            if request.path == path and (method is None or request.method == method.upper())
        ]

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Wait until ``predicate()`` returns something truthy and return it.

        The predicate is re-evaluated whenever anything is recorded (and at least every
        50 ms). Cancellation simply stops waiting.

        Raises:
            asyncio.TimeoutError: still falsy after ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"condition not met within {timeout} s")
            try:
                await asyncio.wait_for(self._signal.wait(), min(remaining, 0.05))
            except asyncio.TimeoutError:
                continue


def _trim(kind: list[T], size: Callable[[T], int], limit: int) -> int:
    """Drop the oldest entries of ``kind`` while the ``size`` of those kept exceeds
    ``limit`` (the newest stays); returns the size kept. The running totals are only
    recounted here, so entries dropped by the count limit meanwhile do not matter."""
    kept = sum(size(item) for item in kind)
    drop = 0
    while kept > limit and drop < len(kind) - 1:
        kept -= size(kind[drop])
        drop += 1
    del kind[:drop]
    return kept
