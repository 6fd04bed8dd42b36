"""SIP pieces: phone number rules (section 4), the hooks table (3.11), webhook forwarding (9)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from ..webhooks import SIGNATURE_VERSION, sign_payload
from .livekit import Participant, Room, new_id
from .records import Records, WebhookRecord

__all__ = [
    "HookError",
    "HookHosts",
    "SipHook",
    "SipHooks",
    "parse_sip_host",
    "redact_url",
    "validate_phone",
    "webhook_body",
]

logger = logging.getLogger("sayna_client.server")

WEBHOOK_TIMEOUT = 5.0
#: Most runtime hooks the local server keeps (a local-server limit: it bounds the table's
#: memory and the time one ``POST /sip/hooks`` takes; the real server has none).
MAX_RUNTIME_HOOKS = 1000
#: Bytes of a hook's reply read (then the connection is closed): the reply is not used.
WEBHOOK_REPLY_LIMIT = 64 * 1024


def redact_url(url: str) -> str:
    """``url`` for logs: no ``user:password@``, no query or fragment (they may hold tokens)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    tail = "?..." if parts.query or parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) + tail


def url_host(url: str) -> Optional[str]:
    """The lower-case host name of an http(s) URL, or ``None`` when it has none."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.lower()


class HookHosts:
    """The allow-list of hosts hook URLs may point at (``None`` = any, as the real server).

    Entries are host names or IP addresses, compared case-insensitively with the URL's
    host (ports are not part of the match).
    """

    def __init__(self, hosts: Optional[Iterable[str]]) -> None:
        self.hosts: Optional[frozenset[str]] = (
            None
            if hosts is None
            else frozenset(host.strip().strip("[]").lower() for host in hosts if host.strip())
        )

    def problem(self, url: str) -> Optional[str]:
        """Why ``url`` may not receive webhooks, or ``None`` when it may."""
        if self.hosts is None:
            return None
        host = url_host(url)
        if host is None:
            return f"Hook URL {redact_url(url)!r} is not an http(s) URL with a host"
        if host not in self.hosts:
            return (
                f"Hook URL host '{host}' is not allowed by this server "
                f"(allowed: {', '.join(sorted(self.hosts)) or 'none'})"
            )
        return None


def validate_phone(number: str) -> str:
    """Normalize a phone number to ``tel:<trimmed>``.

    Raises:
        ValueError: with the server's detail text.
    """
    value = number.strip()
    if not value:
        raise ValueError("Phone number cannot be empty")
    for index, char in enumerate(value):
        if char == "+":
            if index != 0:
                raise ValueError(
                    f"Invalid character '+' at position {index} - plus sign is only allowed "
                    "at the beginning"
                )
        elif not ("0" <= char <= "9"):
            raise ValueError(
                f"Invalid character '{char}' at position {index} - only digits (0-9) and "
                "optional leading '+' are allowed"
            )
    if not any("0" <= char <= "9" for char in value):
        raise ValueError("Phone number must contain at least one digit")
    return f"tel:{value}"


@dataclass(frozen=True)
class SipHook:
    """One routing entry. ``secret`` is only honoured for config-defined hooks."""

    host: str
    url: str
    auth_id: str = ""
    secret: Optional[str] = None

    def to_wire(self) -> dict[str, str]:
        return {"host": self.host, "url": self.url, "auth_id": self.auth_id}

    @staticmethod
    def normalized(host: str, url: str, auth_id: str = "", secret: Optional[str] = None) -> SipHook:
        return SipHook(host.strip().lower(), url, auth_id.strip(), secret)


class HookError(Exception):
    """A hooks-table error: HTTP ``status`` and the ``error`` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SipHooks:
    """Config-file hooks (read-only) plus runtime hooks (upsert/delete by host)."""

    def __init__(self, config_hooks: Iterable[SipHook] = ()) -> None:
        self.config: dict[str, SipHook] = {}
        for hook in config_hooks:
            normalized = SipHook.normalized(hook.host, hook.url, hook.auth_id, hook.secret)
            self.config[normalized.host] = normalized
        self.runtime: dict[str, SipHook] = {}

    def merged(self) -> list[SipHook]:
        merged = dict(self.runtime)
        merged.update(self.config)
        return list(merged.values())

    def find(self, host: str) -> Optional[SipHook]:
        key = host.lower()
        return self.config.get(key) or self.runtime.get(key)

    def _hardcoded(self, hosts: Sequence[str]) -> None:
        # Each blocked host once, sorted (hooks.rs reject_protected_hosts).
        clash = sorted({host for host in hosts if host in self.config})
        if clash:
            raise HookError(
                405,
                f"Host(s) {', '.join(clash)} are hardcoded in the application config and "
                "cannot be changed.",
            )

    def upsert(
        self,
        entries: Sequence[Mapping[str, str]],
        auth_required: bool,
        allowed: Optional[HookHosts] = None,
    ) -> list[SipHook]:
        """POST /sip/hooks semantics (check order of section 3.11), then the local
        server's allow-list of hook hosts.

        Raises:
            HookError: 400 empty auth_id (auth required) / 405 hardcoded / 400 duplicate /
                400 more than :data:`MAX_RUNTIME_HOOKS` / 400 URL host not allowed.
        """
        if len(entries) > MAX_RUNTIME_HOOKS:
            raise _too_many()
        if auth_required:
            for entry in entries:
                if not entry["auth_id"].strip():
                    raise HookError(  # the host as the request wrote it (hooks.rs:101)
                        400,
                        f"Hook for host '{entry['host']}' has empty auth_id. When "
                        "AUTH_REQUIRED=true, auth_id must be provided.",
                    )
        hooks = [SipHook.normalized(e["host"], e["url"], e["auth_id"]) for e in entries]
        self._hardcoded([hook.host for hook in hooks])
        seen: set[str] = set()
        for hook in hooks:
            if hook.host in seen:
                raise HookError(400, f"Validation error: Duplicate host detected: {hook.host}")
            seen.add(hook.host)
        if len(self.runtime.keys() | {hook.host for hook in hooks}) > MAX_RUNTIME_HOOKS:
            raise _too_many()
        if allowed is not None:
            for hook in hooks:
                problem = allowed.problem(hook.url)
                if problem is not None:
                    raise HookError(400, problem)
        for hook in hooks:
            self.runtime[hook.host] = hook
        return self.merged()

    def delete(self, hosts: Sequence[str]) -> list[SipHook]:
        """DELETE /sip/hooks semantics.

        Raises:
            HookError: 400 no hosts / 405 hardcoded.
        """
        if not hosts:
            raise HookError(400, "No hosts provided to delete.")
        normalized = [host.strip().lower() for host in hosts]
        self._hardcoded(normalized)
        for host in normalized:
            self.runtime.pop(host, None)
        return self.merged()


def _too_many() -> HookError:
    return HookError(
        400,
        f"Too many SIP hooks: the local server keeps at most {MAX_RUNTIME_HOOKS} runtime "
        "hooks; delete some first.",
    )


def parse_sip_host(value: str) -> Optional[str]:
    """The routing host of a ``sip.h.to`` / ``sip.h.x-to-ip`` value, as the real server's
    ``parse_sip_domain`` computes it (section 9.1), or ``None`` for no host.

    ``sip:``/``sips:`` URIs (lower-case scheme) keep their ``:port``; plain hosts (the
    ``x-to-ip`` form) lose a numeric one. The real parser panics when the first ``>``
    comes before the first ``<``; here that value gives no host.
    """
    text = value.strip()
    if not text:
        return None
    if "<" in text and ">" in text:
        start, end = text.index("<"), text.index(">")
        if end < start:
            return None
        text = text[start + 1 : end]
    text = text.split(";", 1)[0]
    if text.startswith(("sip:", "sips:")) and "@" in text:
        return text.split("@", 1)[1].strip().lower()
    plain = text.strip()
    if (
        not plain
        or plain.startswith(("sip:", "sips:"))
        or "." not in plain
        or " " in plain
        or "@" in plain
    ):
        return None
    head, sep, port = plain.rpartition(":")
    if sep and port and port.isascii() and port.isdigit():
        plain = head
    return plain.lower()


def webhook_body(
    participant: Participant, room: Room, host: str, room_prefix: str
) -> dict[str, Any]:
    """The ``WebhookSIPOutput`` body, keys in the server's order."""
    attributes = participant.attributes
    return {
        "participant": {
            "name": participant.name,
            "identity": participant.identity,
            "sid": participant.sid,
        },
        "room": {"name": room.name, "sid": room.sid},
        "from_phone_number": attributes.get("sip.phoneNumber", ""),
        "to_phone_number": attributes.get("sip.trunkPhoneNumber", ""),
        "room_prefix": room_prefix,
        "sip_host": host,
        "sip_headers": {
            key[len("sip.h.") :]: value
            for key, value in attributes.items()
            if key.startswith("sip.h.")
        },
    }


def match_hook(participant: Participant, hooks: SipHooks) -> Optional[tuple[SipHook, str]]:
    """The hook a joining SIP participant is forwarded to, and the matched host."""
    attributes = participant.attributes
    # x-to-ip wins whenever present, even when it does not parse (section 9.1).
    header = attributes.get("sip.h.x-to-ip", attributes.get("sip.h.to"))
    if header is None or "sip.phoneNumber" not in attributes:
        return None
    if "sip.trunkPhoneNumber" not in attributes:
        return None
    host = parse_sip_host(header)
    if host is None:
        return None
    hook = hooks.find(host)
    return (hook, host) if hook is not None else None


async def deliver_webhook(
    session: aiohttp.ClientSession,
    records: Records,
    url: str,
    secret: str,
    body: dict[str, Any],
    event_id: Optional[str] = None,
    allowed: Optional[HookHosts] = None,
) -> WebhookRecord:
    """POST one signed webhook: single attempt, 5 s timeout, no redirects followed, at
    most :data:`WEBHOOK_REPLY_LIMIT` bytes of the reply read; a URL outside ``allowed``
    is not contacted. The outcome is recorded, never raised; logs show the URL without
    credentials or query."""
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    event = event_id or new_id("EV_")
    headers = {
        "Content-Type": "application/json",
        "X-Sayna-Signature": sign_payload(secret, timestamp, event, raw),
        "X-Sayna-Timestamp": timestamp,
        "X-Sayna-Event-Id": event,
        "X-Sayna-Signature-Version": SIGNATURE_VERSION,
    }
    record = records.add(records.webhooks, WebhookRecord(url=url, headers=headers, body=raw))
    shown = redact_url(url)
    try:
        problem = allowed.problem(url) if allowed is not None else None
        if problem is not None:
            record.error = f"NotAllowed: {problem}"
            logger.warning("SIP webhook to %s not sent: %s", shown, problem)
            return record
        async with session.post(
            url,
            data=raw,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT),
            allow_redirects=False,
        ) as response:
            record.status = response.status
            await _discard_reply(response)
        if not 200 <= response.status < 300:
            logger.warning("SIP webhook to %s answered %s", shown, response.status)
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
        record.error = _redacted(f"{type(exc).__name__}: {exc}", url)
        logger.warning("SIP webhook to %s failed: %s", shown, record.error)
    finally:
        record.done = True
        records.touch()
    return record


async def _discard_reply(response: aiohttp.ClientResponse) -> None:
    """Read at most :data:`WEBHOOK_REPLY_LIMIT` bytes; close the connection if more come."""
    seen = 0
    while seen <= WEBHOOK_REPLY_LIMIT:
        chunk = await response.content.readany()
        if not chunk:
            return
        seen += len(chunk)
    response.close()


def _redacted(text: str, url: str) -> str:
    """``text`` without the URL's credentials or query (exception texts may quote it)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text.replace(url, "<invalid URL>")
    for secret in (parts.password, parts.query, parts.fragment):
        if secret:
            text = text.replace(secret, "***")
    return text
