"""Keeping secrets out of text: URLs shown without credentials, and exceptions of other
libraries (whose text may hold a URL's ``?api_key=``) scrubbed before they are chained.

Pure helpers, no I/O. The client collects its secrets once (:func:`url_secrets` and
the API key) into a :class:`Redactor`; the two places that translate aiohttp errors
(REST in ``_http``, the WebSocket in ``realtime.connection``) pass every message and
every cause through it.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Iterable
from typing import Any, Optional
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

from pydantic import BaseModel

__all__ = [
    "MASK",
    "RedactedError",
    "Redactor",
    "model_secrets",
    "safe_url",
    "split_userinfo",
    "url_secrets",
]

MASK = "***"
#: Shorter strings are not treated as secrets (masking "ab" would garble every message).
_MIN_SECRET = 4


def safe_url(url: object) -> str:
    """``url`` as ``scheme://host[:port]/path``: no user, password, query or fragment.

    Anything that does not parse as a URL with a host becomes ``"<unparseable URL>"``
    (it may be a key pasted in the wrong place).
    """
    try:
        parts = urlsplit(str(url))
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "<unparseable URL>"
    if not parts.scheme or not host:
        return "<unparseable URL>"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def split_userinfo(url: str) -> tuple[str, Optional[tuple[str, str]]]:
    """``(url without user:password, (user, password) or None)``, both percent-decoded.
    A URL that does not parse is returned as it is (``derive_urls`` rejects it)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    stripped = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return stripped, (unquote(user), unquote(password))


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that may be credentials: user, password and query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        user, _, password = userinfo.partition(":")
        found += [user, password, unquote(user), unquote(password)]
    for _name, value in parse_qsl(parts.query, keep_blank_values=False):
        found.append(value)
    for piece in parts.query.split("&"):
        found.append(piece.partition("=")[2])  # as written (still percent-encoded)
    return found


#: The fields of the request models that hold credentials: ``auth`` (``TTSConfig``'s and
#: ``STTConfig``'s, whatever its shape), ``api_key`` and ``credentials`` of the ``auth``
#: models, and ``SipCallSipConfig.auth_password``. Every string inside one is a secret
#: (``AzureAuth.region``, a field of its own, is not).
_CREDENTIAL_FIELDS = frozenset({"auth", "api_key", "auth_password", "credentials"})


def model_secrets(model: BaseModel) -> list[str]:
    """The credentials a request model carries (``SpeakRequest``'s ``tts_config.auth``,
    ``SipCallRequest``'s ``sip.auth_password``...): each as given and, for credentials
    given as JSON text, each string inside. A :class:`Redactor` made with them also masks
    the forms a server may echo them in (JSON-escaped: a private key's newlines as
    ``\\n``, its ``/`` as ``\\/``). Walks the model; call it only when a text is about
    to be shown (an error), not per request."""
    found: list[str] = []
    _collect(model, False, found)
    return found


def _collect(value: Any, secret: bool, found: list[str]) -> None:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _collect(getattr(value, name, None), name in _CREDENTIAL_FIELDS, found)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, secret, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect(item, secret, found)
    elif secret and isinstance(value, str):
        found.append(value)  # the Redactor masks its JSON-escaped forms too
        if value.lstrip().startswith("{"):  # e.g. Google credentials as JSON text
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                return
            _collect(parsed, True, found)


def _json_forms(secret: str) -> set[str]:
    """``secret`` as the content of a JSON string may write it, other than as itself:
    ``json.dumps`` with and without ``ensure_ascii``, each also with ``/`` as ``\\/``,
    and each of those escaped once more (JSON text quoted inside a JSON string)."""
    once: set[str] = set()
    for ascii_only in (False, True):
        escaped = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        once.update((escaped, escaped.replace("/", "\\/")))
    found = set(once)
    for form in once:
        if form == secret:
            continue  # nothing to escape: its second level is the first's
        for ascii_only in (False, True):
            escaped = json.dumps(form, ensure_ascii=ascii_only)[1:-1]
            found.update((escaped, escaped.replace("/", "\\/")))
    found.discard(secret)
    return found


def _any_encoding(secret: str) -> str:
    """A regular expression matching ``secret`` with any of its characters written as
    itself or percent-encoded (hex digits in either case), and a space also as ``+``."""
    parts: list[str] = []
    for char in secret:
        encoded = "".join(
            "%" + "".join(f"[{d}{d.lower()}]" if d.isalpha() else d for d in f"{byte:02X}")
            for byte in char.encode("utf-8")
        )
        options = [re.escape(char), encoded] + (["\\+"] if char == " " else [])
        parts.append("(?:" + "|".join(options) + ")")
    return "".join(parts)


class RedactedError(Exception):
    """Stands in for another library's exception whose text held a secret.

    Its text is the original's (type name and message, chained causes included) with
    every secret replaced by ``***``; ``__traceback__`` is the original's stack.
    """


class Redactor:
    """Replaces known secrets in text, however they are percent-encoded or JSON-escaped.

    A URL library may print a query value half-encoded (yarl keeps ``%2B`` but decodes
    ``%2F``), so beside the literal forms each secret is also matched character by
    character, every character as itself or percent-encoded (a space also as ``+``).
    A server may echo a secret inside a JSON string, escaped (``"``, ``\\``, control and,
    with ``ensure_ascii``, non-ASCII characters; ``/`` as ``\\/`` by PHP and some Java
    encoders), once or twice (a JSON request body quoted in a JSON error): those forms
    are masked too, as written (:func:`_json_forms`). The forms and the pattern are made
    on the first :meth:`scrub` or :meth:`leaks`, which only run when an error or log line
    is built.
    """

    __slots__ = ("_forms", "_pattern", "_raw")

    def __init__(self, secrets: Iterable[Optional[str]] = ()) -> None:
        raw = (secret for secret in secrets if secret and len(secret) >= _MIN_SECRET)
        self._raw: tuple[str, ...] = tuple(dict.fromkeys(raw))
        self._forms: Optional[tuple[str, ...]] = None
        self._pattern: Optional[re.Pattern[str]] = None

    def add(self, *secrets: Optional[str]) -> None:
        """Also mask ``secrets`` from now on."""
        self._raw = Redactor((*self._raw, *secrets))._raw
        self._forms = None  # made again with them at the next scrub
        self._pattern = None

    def also(self, secrets: Iterable[Optional[str]]) -> Redactor:
        """A new redactor masking this one's secrets and ``secrets`` (this one unchanged:
        for the text of one call, whose request held secrets of its own)."""
        found = list(secrets)
        if not found:
            return self
        return Redactor((*self._raw, *found))

    def _literal(self) -> tuple[str, ...]:
        """Every literal form of every secret, longest first (so that a secret containing
        another is masked whole): as given, percent-encoded, JSON-escaped."""
        forms = self._forms
        if forms is None:
            found: set[str] = set()
            for secret in self._raw:
                found.update((secret, quote(secret, safe=""), quote_plus(secret, safe="")))
                found.update(_json_forms(secret))
            forms = self._forms = tuple(sorted(found, key=len, reverse=True))
        return forms

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``, in any percent-encoding."""
        for secret in self._literal():
            if secret in text:
                text = text.replace(secret, MASK)
        pattern = self._compiled()
        return text if pattern is None else pattern.sub(MASK, text)

    def leaks(self, text: str) -> bool:
        """Whether a secret shows in ``text``, in any percent-encoding."""
        if any(secret in text for secret in self._literal()):
            return True
        pattern = self._compiled()
        return pattern is not None and pattern.search(text) is not None

    def _compiled(self) -> Optional[re.Pattern[str]]:
        if self._pattern is None and self._raw:
            # Percent-encoded, a secret may also be JSON-escaped once (a page quoting the
            # request's JSON body URL-encoded); the rarer forms (``\\/``, escaped twice) are
            # matched as written only: a pattern of each, for a private key's 1,700
            # characters, doubled the time to make it.
            decoded = {*self._raw, *(unquote(secret) for secret in self._raw)}
            for secret in self._raw:
                decoded.update(json.dumps(secret, ensure_ascii=a)[1:-1] for a in (False, True))
            decoded = {secret for secret in decoded if len(secret) >= _MIN_SECRET}
            ordered = sorted(decoded, key=len, reverse=True)
            self._pattern = re.compile("|".join(_any_encoding(s) for s in ordered))
        return self._pattern

    def cause(self, exc: BaseException) -> BaseException:
        """``exc`` itself when no secret shows anywhere in its formatted chain, else a
        :class:`RedactedError` carrying the scrubbed text (and the original stack)."""
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if not self.leaks(text) and not self.leaks(repr(exc)):
            return exc
        chain: list[str] = []
        seen: set[int] = set()
        current: Optional[BaseException] = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            chain.append(f"{type(current).__module__}.{type(current).__qualname__}: {current}")
            current = current.__cause__ or current.__context__
        stand_in = RedactedError(self.scrub(" <- ".join(chain)))
        stand_in.__traceback__ = exc.__traceback__
        return stand_in
