"""Small frozen settings objects and URL handling, shared by REST and WebSocket.

Everything here is pure: no I/O, no event loop, so it is tested with plain asserts.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import urlsplit, urlunsplit

from .errors import SaynaValidationError

__all__ = [
    "API_KEY_ENV",
    "MAX_TEXT_CHARS",
    "ReconnectPolicy",
    "RetryPolicy",
    "Timeouts",
    "backoff_delay",
    "check_seconds",
    "derive_urls",
    "is_loopback_host",
    "resolve_api_key",
]

API_KEY_ENV = "SAYNA_API_KEY"

#: Longest text accepted by speak(), speak_rest() and send_message() (characters).
MAX_TEXT_CHARS = 100_000


@dataclass(frozen=True)
class Timeouts:
    """Deadlines in seconds; ``None`` disables one.

    Attributes:
        connect: TCP + TLS + WebSocket/HTTP handshake.
        ready: from sending ``config`` to the server's ``ready``. The server may take
            30 s for providers, plus a LiveKit join and 10 s of audio-source wait, so
            the default is 45 s as the protocol reference advises.
        request: a whole REST request, body included.
        close: how long ``disconnect()`` and ``abort()`` wait for the server's close
            handshake; the socket is dropped when it passes, whatever the peer does.
        drain: how long ``disconnect()`` first lets the conversation finish: speech
            already sent plays out (``tts_playback_complete``) and results of audio
            already sent arrive. Per call: ``disconnect(drain=...)``.
    """

    connect: Optional[float] = 10.0
    ready: Optional[float] = 45.0
    request: Optional[float] = 60.0
    close: Optional[float] = 5.0
    drain: Optional[float] = 5.0

    def __post_init__(self) -> None:
        for name in ("connect", "ready", "request", "close", "drain"):
            check_seconds(f"Timeouts.{name}", getattr(self, name))


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of idempotent REST requests on connection errors, 429 and 5xx.

    The delay before retry ``n`` (1-based) is ``min(max_backoff, initial_backoff *
    2 ** (n - 1))`` scaled by a random factor in ``[1 - jitter, 1]``; a server
    ``Retry-After`` (seconds) is honoured when it is larger, capped at ``max_backoff``.

    ``retry_timeouts=False`` ends a call at its first timeout (connection errors and
    the ``retry_statuses`` are still retried): the call's ``timeout`` then bounds the
    wait for a server that never answers, where retries would multiply it.

    ``retry_statuses`` takes any collection of HTTP status codes (ints from 100 to 599;
    empty: no status is retried) and is kept as a ``frozenset``.
    """

    max_retries: int = 2
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.5
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    retry_timeouts: bool = True

    def __post_init__(self) -> None:
        check_numbers(self, ("initial_backoff", "max_backoff", "jitter"), ("max_retries",))
        if self.max_retries < 0:
            raise SaynaValidationError("RetryPolicy.max_retries must be >= 0 (0 disables retries)")
        if not isinstance(self.retry_timeouts, bool):
            raise SaynaValidationError(
                f"RetryPolicy.retry_timeouts must be True or False, got {self.retry_timeouts!r}"
            )
        _check_backoff(self)
        if not 0 <= self.jitter <= 1:
            raise SaynaValidationError("RetryPolicy.jitter must be between 0 and 1")
        # Kept as given, a str, an int or None raised TypeError at the first error status
        # of every call, and ["503"] never matched: checked here, once.
        object.__setattr__(self, "retry_statuses", _statuses(self.retry_statuses))


def _statuses(value: object) -> frozenset[int]:
    """``RetryPolicy.retry_statuses`` as a frozenset of ints.

    Raises:
        SaynaValidationError: not a collection of ints from 100 to 599.
    """
    fix = "e.g. RetryPolicy(retry_statuses={429, 503}), or frozenset() to retry no status"
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise SaynaValidationError(
            "RetryPolicy.retry_statuses must be a collection of HTTP status codes (ints "
            f"from 100 to 599), got {type(value).__name__}; {fix}"
        )
    statuses = list(value)
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            shown = repr(status)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise SaynaValidationError(
                "RetryPolicy.retry_statuses must hold HTTP status codes, ints from 100 to "
                f"599, got {shown} ({type(status).__name__}); {fix}"
            )
    return frozenset(int(status) for status in statuses)


@dataclass(frozen=True)
class ReconnectPolicy:
    """Opt-in automatic reconnection of the WebSocket session after a recoverable close.

    Attributes:
        max_attempts: attempts per outage before giving up (``None`` = forever).
        initial_backoff / max_backoff / jitter: as :class:`RetryPolicy`.
        buffer_bytes: audio sent with ``on_audio_input`` during an outage is held up
            to this many bytes (default 1 MiB, about 32 s of 16 kHz mono PCM) and
            replayed, in order, after the session is ready again. Audio beyond the
            limit is never dropped silently: the oldest held frames are discarded and
            an ``AudioDropped`` event reports the count and bytes.
    """

    max_attempts: Optional[int] = 10
    initial_backoff: float = 0.5
    max_backoff: float = 15.0
    jitter: float = 0.5
    buffer_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        check_numbers(
            self,
            ("initial_backoff", "max_backoff", "jitter"),
            ("max_attempts", "buffer_bytes"),
            optional=("max_attempts",),
        )
        if self.max_attempts is not None and self.max_attempts < 1:
            raise SaynaValidationError("ReconnectPolicy.max_attempts must be >= 1 or None")
        _check_backoff(self)
        if self.buffer_bytes < 0:
            raise SaynaValidationError("ReconnectPolicy.buffer_bytes must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise SaynaValidationError("ReconnectPolicy.jitter must be between 0 and 1")


def check_numbers(
    settings: object,
    reals: tuple[str, ...],
    integers: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> None:
    """Raise :class:`SaynaValidationError` naming the first field of ``settings`` that is
    not a number (``integers``: not an int; None passes only for ``optional`` names)."""
    for names, kinds in ((reals, (int, float)), (integers, (int,))):
        for name in names:
            value = getattr(settings, name)
            if value is None and name in optional:
                continue
            if isinstance(value, bool) or not isinstance(value, kinds):
                kind = "an integer" if kinds == (int,) else "a number"
                raise SaynaValidationError(
                    f"{type(settings).__name__}.{name} must be {kind}, got {value!r}"
                )


def _check_backoff(policy: RetryPolicy | ReconnectPolicy) -> None:
    """Raise :class:`SaynaValidationError` unless the ``initial_backoff`` and
    ``max_backoff`` of ``policy`` are finite numbers of seconds >= 0: a negative or NaN
    delay would retry with no pause at all (a tight loop against a server that is down),
    an infinite one would never retry."""
    for name in ("initial_backoff", "max_backoff"):
        value = getattr(policy, name)
        if not (math.isfinite(value) and value >= 0):
            raise SaynaValidationError(
                f"{type(policy).__name__}.{name} must be a finite number of seconds >= 0 "
                f"(0: retry at once), got {value!r}"
            )


def check_seconds(name: str, value: object, *, zero: Optional[str] = None) -> None:
    """Raise :class:`SaynaValidationError` unless ``value`` is None or a positive finite
    number (infinity is refused: None is the way to say "no limit"), or 0 where ``zero``
    says what 0 means there (``disconnect(drain=0)``: "close at once")."""
    if value is None:
        return
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (0 < value < math.inf or (value == 0 and zero is not None))
    ):
        return
    allowed = f", 0 ({zero})" if zero is not None else ""
    raise SaynaValidationError(
        f"{name} must be a positive number of seconds{allowed} or None (no limit), got {value!r}"
    )


def backoff_delay(
    attempt: int,
    *,
    initial: float,
    maximum: float,
    jitter: float,
    retry_after: Optional[float] = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): capped exponential with jitter.

    ``retry_after`` (a server hint) raises the delay to at least that value, still
    capped at ``maximum`` so a hostile header cannot stall the caller.
    """
    # (The exponent is capped: 2.0 ** 1024 overflows a float, which a policy retrying
    # for ever reaches after 1,024 attempts; 2 ** 64 times any backoff is past any cap.)
    base = min(maximum, initial * 2.0 ** min(64, max(0, attempt - 1)))
    delay: float = base * (1.0 - jitter * float(rand()))
    if retry_after is not None and retry_after > delay:
        delay = min(maximum, retry_after)
    return max(0.0, delay)


def resolve_api_key(api_key: Optional[str]) -> Optional[str]:
    """The explicit key, else ``SAYNA_API_KEY``, else ``None``; blank values count as unset."""
    if api_key is not None and not isinstance(api_key, str):
        raise SaynaValidationError(
            f"api_key must be a string, got {type(api_key).__name__}; pass the key text "
            f"or set the {API_KEY_ENV} environment variable"
        )
    key = api_key if api_key and api_key.strip() else os.environ.get(API_KEY_ENV)
    if key is None or not key.strip():
        return None
    key = key.strip()
    if not key.isprintable():  # a header cannot carry it; the message must not either
        raise SaynaValidationError(
            "api_key contains a control character (a newline, a tab...); pass the key "
            "exactly as issued"
        )
    return key


def derive_urls(url: str) -> tuple[str, str]:
    """Return ``(http_base, ws_url)`` for a server URL given as http(s) or ws(s).

    ``http_base`` has no trailing slash; ``ws_url`` ends with ``/ws``. A trailing
    ``/ws`` on the input is accepted, and a path prefix (a server behind a reverse
    proxy at ``https://host/sayna``) is kept on both.

    Raises:
        SaynaValidationError: the URL is empty, has another scheme, or has no host. The
            message does not quote the URL (it may hold credentials, or be a key pasted
            in the wrong place).
    """
    if not isinstance(url, str) or not url.strip():
        raise SaynaValidationError(
            "url must be a non-empty string such as 'https://api.sayna.ai' or "
            "'ws://127.0.0.1:3001/ws'"
        )
    if "@" in url:  # credentials in the URL: not kept in a process-wide cache
        return _derive_urls.__wrapped__(url)
    return _derive_urls(url)


@functools.lru_cache(maxsize=32)
def _derive_urls(url: str) -> tuple[str, str]:
    """:func:`derive_urls` of a string: the clients of one server share the two URL
    strings (about 140 bytes per client: issue #19)."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise SaynaValidationError(
            "url is not a valid URL (check the brackets of an IPv6 address and the port); "
            "use e.g. 'http://127.0.0.1:3001'"
        ) from None
    scheme = parts.scheme.lower()
    secure = {"http": False, "ws": False, "https": True, "wss": True}.get(scheme)
    if secure is None:
        raise SaynaValidationError(
            "url must start with http://, https://, ws:// or wss://, e.g. "
            "'https://api.sayna.ai' or 'http://127.0.0.1:3001'"
        )
    if not parts.hostname:
        raise SaynaValidationError("url has no host; use e.g. 'http://127.0.0.1:3001'")
    path = parts.path.rstrip("/")
    if path.endswith("/ws") or path == "/ws":
        path = path[: -len("/ws")]
    http_base = urlunsplit(("https" if secure else "http", parts.netloc, path, "", ""))
    ws_url = urlunsplit(("wss" if secure else "ws", parts.netloc, path + "/ws", parts.query, ""))
    return http_base, ws_url


def is_loopback_host(url: str) -> bool:
    """True when the URL's host is ``localhost`` or a loopback address."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_plaintext(url: str) -> bool:
    """True for http:// and ws:// URLs."""
    return urlsplit(url).scheme.lower() in ("http", "ws")
