"""HTTP plumbing shared by every route: axum-style rejections, JSON bodies, middlewares."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any, Callable, Optional

from aiohttp import web
from aiohttp.typedefs import Middleware

from .auth import Authenticator, AuthError
from .records import Records, RequestRecord
from .serde import (
    SerdeError,
    Struct,
    validate,
)
from .serde_json import (
    INLINE_CHARS,
    INLINE_VALUES,
    estimate_values,
    parse_checked,
    parse_checked_async,
)

__all__ = [
    "AUTH_ID_KEY",
    "BODY_LIMIT",
    "PUBLIC_PATHS",
    "Rejection",
    "auth_id",
    "error",
    "error_code",
    "json_response",
    "keep_body",
    "make_middlewares",
    "read_body",
    "read_json",
    "read_object",
]

#: axum's default body limit (not overridden by the real server).
BODY_LIMIT = 2 * 1024 * 1024

#: Paths that never require authentication.
PUBLIC_PATHS = frozenset({"/", "/livekit/webhook"})
#: Routes that read their body themselves (public: kept only once verified; or not JSON).
_SELF_READING = frozenset({"/livekit/webhook", "/ws"})

TOO_LARGE = "Failed to buffer the request body: length limit exceeded"
JSON = "application/json"

# Typed keys where aiohttp has them (>= 3.12), plain strings before.
_RequestKey: Any = getattr(web, "RequestKey", None)
AUTH_ID_KEY: Any = _RequestKey("sayna_auth_id", str) if _RequestKey else "sayna_auth_id"
_RECORD_KEY: Any = _RequestKey("sayna_record", RequestRecord) if _RequestKey else "sayna_record"
_TOO_LARGE_KEY: Any = _RequestKey("sayna_too_large", bool) if _RequestKey else "sayna_too_large"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Rejection(Exception):
    """A framework-level rejection: plain-text body with the given status."""

    def __init__(self, status: int, text: str, content_type: str = "text/plain") -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.content_type = content_type

    def response(self) -> web.Response:
        return web.Response(status=self.status, text=self.text, content_type=self.content_type)


def json_response(data: Any, status: int = 200) -> web.Response:
    """Compact JSON with ``content-type: application/json`` (as axum's ``Json``)."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return web.Response(body=body, status=status, content_type="application/json")


def error(status: int, message: str) -> web.Response:
    """``{"error": message}`` with ``status``."""
    return json_response({"error": message}, status=status)


def error_code(status: int, message: str, code: str) -> web.Response:
    """``{"error": message, "code": code}`` with ``status``."""
    return json_response({"error": message, "code": code}, status=status)


def auth_id(request: web.Request) -> Optional[str]:
    """The effective tenant id of an authenticated request (``None`` = no isolation)."""
    value = request.get(AUTH_ID_KEY)
    return value if isinstance(value, str) and value else None


def _is_json_content_type(value: Optional[str]) -> bool:
    if not value:
        return False
    mime = value.split(";", 1)[0].strip().lower()
    if "/" not in mime:
        return False
    kind, subtype = mime.split("/", 1)
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def read_json(request: web.Request, shape: Struct) -> dict[str, Any]:
    """Extract a JSON body the way axum's ``Json<T>`` does.

    Large bodies are parsed without holding up the event loop (see
    :func:`~.serde_json.parse_checked_async`).

    Raises:
        Rejection: 415 without a JSON content type, 413 over 2 MiB, 408 when the body
            does not arrive in time, 400 for malformed JSON, 422 when the JSON does not
            match ``shape``.
    """
    if not _is_json_content_type(request.headers.get("Content-Type")):
        raise Rejection(415, "Expected request with `Content-Type: application/json`")
    body = await read_body(request)
    text = body.decode("utf-8", errors="replace")

    def check(value: Any, ends: dict[Any, int]) -> None:
        validate(value, shape, ends)

    try:
        value = await parse_checked_async(text, check)
    except SerdeError as exc:
        located = exc.located(text)
        if exc.syntax:
            raise Rejection(400, f"Failed to parse the request body as JSON: {located}") from None
        path = exc.path_display()
        detail = located if path == "." else f"{path}: {located}"
        raise Rejection(
            422, f"Failed to deserialize the JSON body into the target type: {detail}"
        ) from None
    assert isinstance(value, dict)
    record = request.get(_RECORD_KEY)
    if isinstance(record, RequestRecord):
        record.json = value
    return value


async def read_object(request: web.Request) -> dict[str, Any]:
    """A JSON object body of a ``/_local`` route (empty body = ``{}``).

    Raises:
        Rejection: 413 / 408 as :func:`read_body`; 400 (``{"error": text}``) when the
            body is not a JSON object.
    """
    text = (await read_body(request)).decode("utf-8", errors="replace")
    if not text.strip():
        return {}

    def check(value: Any, ends: dict[Any, int]) -> None:
        if not isinstance(value, dict):
            raise SerdeError("expected a JSON object", (), ends.get((), 0))

    try:
        value = await parse_checked_async(text, check, whole_value_position=True)
    except SerdeError as exc:
        detail = exc.located(text) if exc.syntax else exc.message
        raise Rejection(400, json.dumps({"error": f"invalid JSON: {detail}"}), JSON) from None
    assert isinstance(value, dict)
    return value


async def read_body(request: web.Request) -> bytes:
    """The request body, at most :data:`BODY_LIMIT` bytes, within the server's
    ``request_timeout``; read once (later calls return the same bytes).

    Raises:
        Rejection: 413 over the limit, 408 when it does not arrive in time.
    """
    if request.get(_TOO_LARGE_KEY):
        raise Rejection(413, TOO_LARGE)
    record = request.get(_RECORD_KEY)
    if isinstance(record, RequestRecord) and record.body:
        return record.body
    if request.content_length is not None and request.content_length > BODY_LIMIT:
        raise Rejection(413, TOO_LARGE)
    try:
        body = await asyncio.wait_for(request.read(), _request_timeout(request))
    except web.HTTPRequestEntityTooLarge:
        raise Rejection(413, TOO_LARGE) from None
    except asyncio.TimeoutError:
        raise Rejection(408, "Timed out reading the request body") from None
    if isinstance(record, RequestRecord):
        _keep(request, record, body)
    return body


def _request_timeout(request: web.Request) -> float:
    from .state import STATE_KEY  # late: state imports the routes' helpers

    state = request.app.get(STATE_KEY)
    return state.config.request_timeout if state is not None else 30.0


def make_middlewares(
    authenticator: Callable[[], Authenticator],
    records: Records,
    control_guard: Optional[Callable[[web.Request], Optional[str]]] = None,
) -> list[Middleware]:
    """One middleware, in the real server's order: axum-style 404/405 (no body read),
    authentication (no body read: nothing of an unauthorized request is kept but its
    line and headers), then the body is read (bounded and timed) and recorded, then the
    handler; :class:`Rejection` becomes its response. ``control_guard`` vets ``/_local``
    requests first (returns why a request is refused, or ``None``)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        record = records.add(
            records.requests,
            RequestRecord(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=b"",
                json=None,
            ),
        )
        response = await _guarded(request, handler, record)
        record.status = response.status
        record.auth_id = auth_id(request)
        records.touch()
        return response

    async def _guarded(
        request: web.Request, handler: Handler, record: RequestRecord
    ) -> web.StreamResponse:
        match_info = request.match_info
        http_exception = getattr(match_info, "http_exception", None)
        if http_exception is not None:
            if http_exception.status == 405 and _protected(request.path):
                # The auth layer wraps a route's 405 fallback too (main.rs:122-133):
                # a wrong method on a protected path is 401 until authenticated.
                try:
                    authenticator().authenticate(request)
                except AuthError as exc:
                    return exc.response()
            # axum answers unknown paths / methods with empty bodies.
            headers = {}
            if "Allow" in http_exception.headers:
                headers["Allow"] = http_exception.headers["Allow"]
            return web.Response(status=http_exception.status, headers=headers)
        if control_guard is not None and request.path.startswith("/_local/"):
            refused = control_guard(request)
            if refused is not None:
                return error(403, refused)
        if request.path not in PUBLIC_PATHS:
            try:
                request[AUTH_ID_KEY] = authenticator().authenticate(request) or ""
            except AuthError as exc:
                return exc.response()
        request[_RECORD_KEY] = record
        try:
            if request.can_read_body and request.path not in _SELF_READING:
                try:
                    body = await read_body(request)
                except Rejection as exc:
                    if exc.status != 413:
                        return exc.response()
                    # Reported by the handler after the 415 check, as axum does.
                    request[_TOO_LARGE_KEY] = True
                else:
                    record.json = _quick_json(body)
            return await handler(request)
        except Rejection as exc:
            return exc.response()

    return [guard]


def _protected(path: str) -> bool:
    """Whether ``path`` is one of the real server's routes behind its auth layer (the
    local ``/_local`` routes answer 404/405 first, as before)."""
    return path not in PUBLIC_PATHS and not path.startswith("/_local/")


def keep_body(request: web.Request, body: bytes) -> None:
    """Record the body of a public route once it has proved authorized."""
    record = request.get(_RECORD_KEY)
    if isinstance(record, RequestRecord):
        _keep(request, record, body)
        record.json = _quick_json(body)


def _keep(request: web.Request, record: RequestRecord, body: bytes) -> None:
    from .state import STATE_KEY

    state = request.app.get(STATE_KEY)
    if state is not None:
        state.records.keep_body(record, body)
    else:
        record.body = body


def _quick_json(body: bytes) -> Any:
    """The body as JSON for the records, when that is cheap; ``None`` otherwise."""
    if not body or len(body) > INLINE_CHARS:
        return None
    text = body.decode("utf-8", errors="replace")
    if estimate_values(text) > INLINE_VALUES:
        return None
    try:
        return parse_checked(text, lambda value, ends: None)
    except SerdeError:
        return None
