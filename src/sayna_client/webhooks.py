"""SIP webhook signatures and the receiver that verifies them (protocol reference section 9).

When a SIP participant joins a LiveKit room, Sayna POSTs a signed JSON body
(:class:`WebhookSIPOutput`) to the hook URL configured for the caller's SIP host.
:func:`sign_payload` is the one definition of the signature, shared by the local
server (which signs) and :class:`WebhookReceiver` (which verifies).

Verification always runs over the **raw request body bytes**, exactly as they came
off the wire: parsing the JSON and serialising it again changes whitespace or key
order and breaks the signature. Read the body with ``await request.read()``
(aiohttp) or ``await request.body()`` (Starlette / FastAPI), never ``request.json()``.

The clock is injectable so the replay window can be tested without sleeping, and
the secret never appears in a repr, a log line or an exception message.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Literal,
    Optional,
    Protocol,
    Tuple,
    Union,
    cast,
)

from pydantic import ValidationError

from sayna_client.errors import SaynaError, SaynaValidationError
from sayna_client.types.webhooks import WebhookSIPOutput, WebhookSIPParticipant, WebhookSIPRoom

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "EVENT_ID_HEADER",
    "MIN_SECRET_LENGTH",
    "SECRET_ENV_VAR",
    "SIGNATURE_HEADER",
    "SIGNATURE_VERSION",
    "SIGNATURE_VERSION_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookReceiver",
    "WebhookRejectReason",
    "WebhookSIPOutput",
    "WebhookSIPParticipant",
    "WebhookSIPRoom",
    "WebhookVerificationError",
    "receive_aiohttp",
    "sign_payload",
]

SIGNATURE_VERSION = "v1"

#: Header names as Sayna sends them; lookups are case-insensitive.
SIGNATURE_HEADER = "X-Sayna-Signature"
TIMESTAMP_HEADER = "X-Sayna-Timestamp"
EVENT_ID_HEADER = "X-Sayna-Event-Id"
SIGNATURE_VERSION_HEADER = "X-Sayna-Signature-Version"

#: Environment variable read when :class:`WebhookReceiver` gets no explicit secret.
SECRET_ENV_VAR = "SAYNA_WEBHOOK_SECRET"
#: Shortest accepted secret, counted after surrounding whitespace is removed.
MIN_SECRET_LENGTH = 16
#: Accepted distance between ``X-Sayna-Timestamp`` and the receiver's clock, both ways.
DEFAULT_TOLERANCE_SECONDS = 300.0

_DEFAULT_DEDUPE_CAPACITY = 100_000
_SIGNATURE_RE = re.compile(r"v1=([0-9a-fA-F]{64})")
# ASCII digits only (str.isdigit would accept other scripts); 20 digits bounds int().
_TIMESTAMP_RE = re.compile(r"[0-9]{1,20}")
_HTTP_OWS = " \t"


class _HeaderItems(Protocol):
    """Headers read through ``items()`` (http.server's ``HTTPMessage``, a multidict)."""

    def items(self) -> Iterable[Tuple[Any, Any]]: ...


HeadersLike = Union[Mapping[str, Any], _HeaderItems, Iterable[Tuple[Any, Any]]]
BodyLike = Union[bytes, bytearray, memoryview, str]

WebhookRejectReason = Literal[
    "missing_header",
    "duplicate_header",
    "malformed_signature",
    "malformed_timestamp",
    "stale_timestamp",
    "future_timestamp",
    "bad_version",
    "signature_mismatch",
    "invalid_body",
    "duplicate_event",
]


#: What the server's ``str::trim`` removes (Unicode's White_Space property). Python's own
#: ``str.strip()`` also removes U+001C-U+001F, which a secret may end with.
_WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def sign_payload(secret: str, timestamp: str, event_id: str, body: BodyLike) -> str:
    """Return the ``X-Sayna-Signature`` value (``"v1=" + 64 lowercase hex``) for a body.

    The signed message is ``v1:{timestamp}:{event_id}:{raw body}``; the key is the
    secret with surrounding whitespace removed, as the server trims it. ``body`` is the
    raw bytes (``str`` is encoded as UTF-8).

    Raises:
        SaynaValidationError: ``secret`` is not a string.
        TypeError: ``body`` is not bytes-like or ``str``.
        UnicodeEncodeError: ``secret``, ``timestamp`` or ``event_id`` holds a lone
            surrogate that stands for no byte (one from ``surrogateescape`` decoding, as
            aiohttp's headers, is signed as that byte).
    """
    key = _secret_text(secret).strip(_WHITE_SPACE).encode()
    # surrogateescape: a header aiohttp decoded with it (a byte that is not UTF-8) is
    # signed as the bytes that were on the wire.
    head = f"{SIGNATURE_VERSION}:{timestamp}:{event_id}:".encode("utf-8", "surrogateescape")
    return _signature(key, head, _body_bytes(body))


def _signature(key: bytes, head: bytes, body: bytes) -> str:
    digest = hmac.new(key, head + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def _heads(timestamp: str, event_id: str) -> List[bytes]:
    """The signed ``v1:{timestamp}:{event_id}:`` as the sender may have written it: UTF-8
    (Sayna's; a header decoded with ``surrogateescape`` gives back its very bytes) and,
    for a header that a framework decoded as latin-1 (Starlette, ``http.server``: every
    character under U+0100, some not ASCII), those bytes. Empty when the text stands for
    no bytes at all (a lone surrogate): nothing can match."""
    text = f"{SIGNATURE_VERSION}:{timestamp}:{event_id}:"
    heads = []
    try:
        heads.append(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        pass
    if not text.isascii():
        try:
            heads.append(text.encode("latin-1"))
        except UnicodeEncodeError:
            pass
    return heads


def _secret_text(secret: object) -> str:
    """``secret`` itself when it is a string; else a :class:`SaynaValidationError`
    naming the fix (the secret is never part of it)."""
    if isinstance(secret, str):
        return secret
    fix = " (decode it: secret.decode())" if isinstance(secret, bytes) else ""
    raise SaynaValidationError(
        f"Webhook secret must be a string, got {type(secret).__name__}{fix}: pass "
        "the hook's signing secret as text, the same value as sip.hook_secret."
    )


class WebhookVerificationError(SaynaError, ValueError):
    """A webhook request was rejected; nothing in it should be trusted.

    Its own branch of :class:`~sayna_client.SaynaError` (and a ``ValueError``), not a
    ``SaynaValidationError``: the request came from outside and failed a check, while
    the calling code did nothing wrong, so an ``except SaynaValidationError`` meant for
    bad arguments does not catch it. Bad arguments to :class:`WebhookReceiver` itself
    (a missing secret, a negative tolerance) are ``SaynaValidationError``.

    Attributes:
        reason: A short machine-readable code (see :data:`WebhookRejectReason`).
            Everything except ``"invalid_body"`` and ``"duplicate_event"`` means the
            request did not prove it came from Sayna (answer 401); ``"invalid_body"``
            is a signed body this SDK cannot parse (answer 400 and upgrade);
            ``"duplicate_event"`` is a redelivery already handled (answer 200).
    """

    def __init__(self, message: str, *, reason: WebhookRejectReason) -> None:
        super().__init__(message)
        self.reason: WebhookRejectReason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only ``reason`` would otherwise be lost when pickling.
        return (_rebuild_verification_error, (str(self), self.reason))


def _rebuild_verification_error(
    message: str, reason: WebhookRejectReason
) -> WebhookVerificationError:
    return WebhookVerificationError(message, reason=reason)


class WebhookReceiver:
    """Verify and parse Sayna SIP webhooks.

    A request is accepted only if all of these hold, checked in this order:

    1. ``X-Sayna-Signature``, ``X-Sayna-Timestamp`` and ``X-Sayna-Event-Id`` are
       each present exactly once (names are case-insensitive);
       ``X-Sayna-Signature-Version``, if sent, is ``v1``;
    2. the signature is ``v1=`` followed by 64 hex digits and the timestamp is
       decimal Unix seconds;
    3. the timestamp is within ``tolerance_seconds`` of ``clock()``, in either
       direction (a future timestamp is rejected like a stale one);
    4. the HMAC-SHA256 of ``v1:{timestamp}:{event_id}:{raw body}`` under the secret
       matches, compared in constant time;
    5. (:meth:`receive` only) the body is JSON matching :class:`WebhookSIPOutput`;
    6. with ``dedupe=True`` (the default), the event id has not been accepted before
       while its timestamp was inside the window.

    The receiver holds no I/O and is safe to share between tasks and threads.

    Args:
        secret: The hook's signing secret (``sip.hook_secret`` or the hook's own
            ``secret`` in the Sayna config). ``None`` reads ``SAYNA_WEBHOOK_SECRET``.
            Surrounding whitespace is removed, as the server does.
        tolerance_seconds: Replay window in seconds; exactly ``tolerance_seconds``
            away is still accepted.
        clock: Returns the current Unix time in seconds; inject one in tests.
        dedupe: Remember the ids of accepted events and reject a repeat with reason
            ``"duplicate_event"`` (on by default: a signed request captured on the way
            could otherwise be replayed as often as wanted within the window). An id is
            forgotten once its signed timestamp has left the window, since the
            timestamp check rejects any replay of it from then on; memory therefore
            holds only the events of the last ``2 * tolerance_seconds`` (a timestamp
            may be up to ``tolerance_seconds`` in the future). ``dedupe=False`` turns
            it off, for receivers that de-duplicate in their own store. The memory is
            per receiver and per process: deployments with several workers need a
            shared store (for example a unique constraint on the event id) as well.
        dedupe_capacity: The most event ids remembered at once, a hard bound on memory
            (about 150 bytes per id). When that many ids are still inside the window,
            the least recently seen one is forgotten, and a replay of it would be
            accepted: raise it if you receive more than ``dedupe_capacity`` webhooks
            per ``2 * tolerance_seconds``.

    Raises:
        SaynaValidationError: No secret was given or found in the environment, the
            secret is not a string or is shorter than 16 characters, or an option is out
            of range.
    """

    __slots__ = ("_clock", "_dedupe_capacity", "_lock", "_secret", "_seen", "_tolerance")

    def __init__(
        self,
        secret: Optional[str] = None,
        *,
        tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
        clock: Callable[[], float] = time.time,
        dedupe: bool = True,
        dedupe_capacity: int = _DEFAULT_DEDUPE_CAPACITY,
    ) -> None:
        if secret is None:
            secret = os.environ.get(SECRET_ENV_VAR)
        if secret is not None:
            secret = _secret_text(secret)
        if secret is None or not secret.strip(_WHITE_SPACE):
            raise SaynaValidationError(
                "Webhook secret is required: pass WebhookReceiver(secret=...) or set the "
                f"{SECRET_ENV_VAR} environment variable to the hook's signing secret."
            )
        secret = secret.strip(_WHITE_SPACE)
        try:
            secret.encode()
        except UnicodeEncodeError:
            raise SaynaValidationError(
                "Webhook secret holds a character that is not valid text (a lone surrogate: "
                f"{SECRET_ENV_VAR} set to bytes that are not UTF-8?): set it to the hook's "
                "signing secret exactly as configured in Sayna (sip.hook_secret)."
            ) from None
        if len(secret) < MIN_SECRET_LENGTH:
            raise SaynaValidationError(
                f"Webhook secret must be at least {MIN_SECRET_LENGTH} characters long "
                "(after removing surrounding whitespace): configure a longer random secret "
                "in Sayna (sip.hook_secret) and pass the same value here."
            )
        if (
            isinstance(tolerance_seconds, bool)
            or not isinstance(tolerance_seconds, (int, float))
            or not math.isfinite(tolerance_seconds)
            or tolerance_seconds < 0
        ):
            raise SaynaValidationError(
                f"tolerance_seconds must be a finite number >= 0, got {tolerance_seconds!r}: "
                f"use the default {DEFAULT_TOLERANCE_SECONDS:g} unless clocks are known to drift."
            )
        if isinstance(dedupe_capacity, bool) or not isinstance(dedupe_capacity, int):
            raise SaynaValidationError(
                f"dedupe_capacity must be an int >= 1, got {dedupe_capacity!r}."
            )
        if dedupe_capacity < 1:
            raise SaynaValidationError(
                f"dedupe_capacity must be >= 1, got {dedupe_capacity}: pass dedupe=False to "
                "turn duplicate detection off instead."
            )
        self._secret = secret
        self._tolerance = float(tolerance_seconds)
        self._clock = clock
        self._dedupe_capacity = dedupe_capacity
        # event id -> its signed timestamp, oldest accepted first
        self._seen: Optional[OrderedDict[str, int]] = OrderedDict() if dedupe else None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(tolerance_seconds={self._tolerance:g}, "
            f"dedupe={self._seen is not None})"
        )

    @property
    def tolerance_seconds(self) -> float:
        """The replay window in seconds."""
        return self._tolerance

    def verify(self, headers: HeadersLike, body: BodyLike) -> None:
        """Check that a request was signed by Sayna, without parsing the body.

        Use this when you parse the body yourself; otherwise call :meth:`receive`.
        With ``dedupe=True`` (the default) a successful call records the event id, so
        call either ``verify`` or ``receive`` for a request, not both.

        Args:
            headers: The request headers: a dict, a multidict (aiohttp, Starlette),
                anything else with ``items()`` (``http.server``'s ``self.headers``)
                or an iterable of ``(name, value)`` pairs; ``str`` or ``bytes``.
            body: The raw request body. ``str`` is encoded as UTF-8; pass bytes when
                you have them.

        Raises:
            WebhookVerificationError: The request is not authentic, not fresh, or a
                duplicate; ``reason`` says which check failed.
        """
        event_id, timestamp = self._verify_signature(headers, _body_bytes(body))
        self._remember(event_id, timestamp)

    def receive(self, headers: HeadersLike, body: BodyLike) -> WebhookSIPOutput:
        """Verify a request (see :meth:`verify`) and parse its body.

        Args:
            headers: As for :meth:`verify`.
            body: As for :meth:`verify`.

        Returns:
            The parsed payload.

        Raises:
            WebhookVerificationError: As for :meth:`verify`, or with reason
                ``"invalid_body"`` if the signed body is not JSON matching
                :class:`WebhookSIPOutput`.
        """
        raw = _body_bytes(body)
        event_id, timestamp = self._verify_signature(headers, raw)
        payload = _parse_body(raw)
        self._remember(event_id, timestamp)
        return payload

    def _verify_signature(self, headers: HeadersLike, raw: bytes) -> tuple[str, int]:
        found = _collect_headers(headers)
        signature = _require(found, SIGNATURE_HEADER)
        timestamp = _require(found, TIMESTAMP_HEADER)
        event_id = _require(found, EVENT_ID_HEADER)
        version = _optional(found, SIGNATURE_VERSION_HEADER)

        if version is not None and version != SIGNATURE_VERSION:
            raise WebhookVerificationError(
                f"Unsupported {SIGNATURE_VERSION_HEADER} {version[:16]!r}: this SDK verifies "
                f"{SIGNATURE_VERSION!r} signatures only; upgrade sayna-client.",
                reason="bad_version",
            )
        match = _SIGNATURE_RE.fullmatch(signature)
        if match is None:
            prefix = f"{SIGNATURE_VERSION}="
            problem = (
                f"Invalid signature: must be 64 hex characters after {prefix!r}"
                if signature.startswith(prefix)
                else f"Invalid signature format: must start with {prefix!r}"
            )
            raise WebhookVerificationError(
                f"{problem} in {SIGNATURE_HEADER}. Sayna sends '{prefix}' + 64 hex "
                "characters; check that no proxy rewrites the header.",
                reason="malformed_signature",
            )
        if _TIMESTAMP_RE.fullmatch(timestamp) is None:
            raise WebhookVerificationError(
                f"Invalid timestamp format in {TIMESTAMP_HEADER}: expected Unix seconds as "
                "decimal digits; check that a proxy does not rewrite the header.",
                reason="malformed_timestamp",
            )
        seconds = int(timestamp)
        skew = float(seconds) - self._clock()
        if skew < -self._tolerance:
            raise WebhookVerificationError(
                f"Timestamp outside replay protection window: the webhook is {-skew:.0f} s "
                f"old, more than the allowed {self._tolerance:g} s. Reject it as a replay; "
                "if deliveries are genuinely late, check this host's clock (NTP).",
                reason="stale_timestamp",
            )
        if skew > self._tolerance:
            raise WebhookVerificationError(
                f"Timestamp outside replay protection window: the webhook is dated {skew:.0f} "
                f"s in the future, more than the allowed {self._tolerance:g} s. Check the "
                "clocks of this host and the Sayna server (NTP).",
                reason="future_timestamp",
            )

        provided = f"{SIGNATURE_VERSION}={match.group(1).lower()}"
        key = self._secret.encode()
        matched = False
        for head in _heads(timestamp, event_id):  # (each compared in constant time)
            matched |= hmac.compare_digest(_signature(key, head, raw), provided)
        if not matched:
            raise WebhookVerificationError(
                "Signature verification failed: the body or headers were altered, or the "
                "secret differs from the one Sayna signs with. Verify the raw body bytes "
                "(never re-serialised JSON) with the same secret as sip.hook_secret.",
                reason="signature_mismatch",
            )
        return event_id, seconds

    def _remember(self, event_id: str, timestamp: int) -> None:
        seen = self._seen
        if seen is None:
            return
        with self._lock:
            # Checked before forgetting: this delivery passed the window check, so an id
            # still remembered is a replay even when the clock, read again below, has
            # moved its first delivery out of the window since.
            if event_id in seen:
                seen.move_to_end(event_id)
                raise WebhookVerificationError(
                    f"Duplicate webhook event {event_id[:64]!r}: it was already accepted. "
                    "Acknowledge it (2xx) without processing it again.",
                    reason="duplicate_event",
                )
            # Forget ids whose timestamp has left the window: a replay of one is now
            # rejected as stale. Entries are nearly in timestamp order (accepted ones
            # are at most 2 * tolerance apart), so the oldest are at the front.
            horizon = self._clock() - self._tolerance
            while seen:
                oldest_id, oldest_ts = next(iter(seen.items()))
                if oldest_ts >= horizon:
                    break
                del seen[oldest_id]
            seen[event_id] = timestamp
            while len(seen) > self._dedupe_capacity:
                seen.popitem(last=False)


async def receive_aiohttp(receiver: WebhookReceiver, request: web.Request) -> WebhookSIPOutput:
    """Verify and parse a webhook delivered to an aiohttp handler.

    Reads the raw body with ``await request.read()`` so the bytes verified are the
    bytes Sayna signed. For FastAPI / Starlette the equivalent is
    ``receiver.receive(request.headers, await request.body())``.

    Example::

        receiver = WebhookReceiver()  # reads SAYNA_WEBHOOK_SECRET

        async def sip_hook(request: web.Request) -> web.Response:
            try:
                event = await receive_aiohttp(receiver, request)
            except WebhookVerificationError as exc:
                return web.Response(status=400 if exc.reason == "invalid_body" else 401)
            ...  # route event.from_phone_number / event.room.name
            return web.Response(status=204)

    Args:
        receiver: The configured receiver.
        request: The incoming request; its body is consumed.

    Returns:
        The parsed payload.

    Raises:
        WebhookVerificationError: As for :meth:`WebhookReceiver.receive`.
    """
    body = await request.read()
    return receiver.receive(request.headers, body)


def _body_bytes(body: BodyLike) -> bytes:
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    raise TypeError(
        f"webhook body must be the raw bytes (or str) of the request, got "
        f"{type(body).__name__}: read it with `await request.read()` or `await request.body()`"
    )


def _header_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        # Decoded so that encoding it back (see _heads) gives the very bytes: UTF-8, the
        # bytes that are not UTF-8 as surrogates (as aiohttp does).
        value = bytes(value).decode("utf-8", "surrogateescape")
    return str(value).strip(_HTTP_OWS)


def _collect_headers(headers: HeadersLike) -> Dict[str, List[str]]:
    """Map lowercase header name -> every value seen for it.

    ``Mapping.items()`` of a multidict yields each duplicate, and a plain dict can
    still hold one header under two spellings, so both count as duplicates.
    """
    # Anything with items() (a Mapping, http.server's HTTPMessage, whose iteration gives
    # the names only) is read through it; the rest as (name, value) pairs.
    items = getattr(headers, "items", None)
    pairs: Iterable[Any] = items() if callable(items) else cast("Iterable[Any]", headers)
    found: Dict[str, List[str]] = {}
    try:
        for name, value in pairs:
            key = _header_text(name).lower()
            values = value if isinstance(value, (list, tuple)) else [value]
            found.setdefault(key, []).extend(_header_text(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "webhook headers must be a mapping (dict, multidict, http.server's headers) or "
            f"an iterable of (name, value) pairs, got {type(headers).__name__}"
        ) from exc
    return found


def _optional(found: Dict[str, List[str]], name: str) -> Optional[str]:
    values = found.get(name.lower())
    if not values:
        return None
    if len(values) > 1:
        raise WebhookVerificationError(
            f"Duplicate header: {name.lower()} was sent {len(values)} times. Sayna sends it "
            "once; reject the request, or fix the proxy that adds a second copy.",
            reason="duplicate_header",
        )
    return values[0]


def _require(found: Dict[str, List[str]], name: str) -> str:
    value = _optional(found, name)
    if value is None:
        raise WebhookVerificationError(
            f"Missing required header: {name.lower()}. Pass all request headers (not just "
            "the body) and make sure a proxy does not strip X-Sayna-* headers.",
            reason="missing_header",
        )
    return value


def _parse_body(raw: bytes) -> WebhookSIPOutput:
    try:
        return WebhookSIPOutput.model_validate_json(raw)
    except ValidationError as exc:
        # Built from the error list without inputs: the body carries phone numbers.
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        if any(err["type"] == "json_invalid" for err in errors):
            detail = errors[0]["msg"]
            message = f"Invalid JSON payload: {detail}. Pass the raw request body unchanged."
        else:
            fields = "; ".join(
                f"{'.'.join(str(part) for part in err['loc']) or '<root>'}: {err['msg']}"
                for err in errors[:10]
            )
            message = (
                f"Webhook payload does not match WebhookSIPOutput ({fields}). The signature "
                "is valid, so the server sends a shape this SDK does not know: upgrade "
                "sayna-client."
            )
        # Not chained: the ValidationError's text quotes the input (caller PII).
        raise WebhookVerificationError(message, reason="invalid_body") from None
