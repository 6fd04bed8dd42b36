"""HTTP plumbing shared by every route: axum-style rejections, JSON bodies, middlewares."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any, Callable, Optional

from aiohttp import web
from aiohttp.typedefs import Middleware

from .auth import Authenticator, AuthError
from .records import Records, RequestRecord
from .serde import SerdeError, Struct, parse_json, validate

__all__ = [
    "AUTH_ID_KEY",
    "BODY_LIMIT",
    "PUBLIC_PATHS",
    "Rejection",
    "auth_id",
    "error",
    "error_code",
    "json_response",
    "make_middlewares",
    "read_json",
]

#: axum's default body limit (not overridden by the real server).
BODY_LIMIT = 2 * 1024 * 1024

#: Paths that never require authentication.
PUBLIC_PATHS = frozenset({"/", "/livekit/webhook"})

# Typed keys where aiohttp has them (>= 3.12), plain strings before.
_RequestKey: Any = getattr(web, "RequestKey", None)
AUTH_ID_KEY: Any = _RequestKey("sayna_auth_id", str) if _RequestKey else "sayna_auth_id"
_RECORD_KEY: Any = _RequestKey("sayna_record", RequestRecord) if _RequestKey else "sayna_record"
_TOO_LARGE_KEY: Any = _RequestKey("sayna_too_large", bool) if _RequestKey else "sayna_too_large"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Rejection(Exception):
    """A framework-level rejection: plain-text body with the given status."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text

    def response(self) -> web.Response:
        return web.Response(status=self.status, text=self.text, content_type="text/plain")


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

    Raises:
        Rejection: 415 without a JSON content type, 413 over 2 MiB, 400 for malformed
            JSON, 422 when the JSON does not match ``shape``.
    """
    if not _is_json_content_type(request.headers.get("Content-Type")):
        raise Rejection(415, "Expected request with `Content-Type: application/json`")
    body = await _read_body(request)
    text = body.decode("utf-8", errors="replace")
    try:
        value, ends = parse_json(text)
    except SerdeError as exc:
        raise Rejection(
            400, f"Failed to parse the request body as JSON: {exc.located(text)}"
        ) from exc
    try:
        validate(value, shape, ends)
    except SerdeError as exc:
        located = exc.located(text)
        path = exc.path_display()
        detail = located if path == "." else f"{path}: {located}"
        raise Rejection(
            422, f"Failed to deserialize the JSON body into the target type: {detail}"
        ) from exc
    assert isinstance(value, dict)
    return value


async def _read_body(request: web.Request) -> bytes:
    if request.get(_TOO_LARGE_KEY):
        raise Rejection(413, "Failed to buffer the request body: length limit exceeded")
    record = request.get(_RECORD_KEY)
    if isinstance(record, RequestRecord) and record.body:
        return record.body
    if request.content_length is not None and request.content_length > BODY_LIMIT:
        raise Rejection(413, "Failed to buffer the request body: length limit exceeded")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise Rejection(413, "Failed to buffer the request body: length limit exceeded") from exc


def make_middlewares(
    authenticator: Callable[[], Authenticator], records: Records
) -> list[Middleware]:
    """Middlewares: record the request, axum-style 404/405, authentication, rejections."""

    @web.middleware
    async def record_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = b""
        if request.can_read_body and request.path != "/ws":
            try:
                body = await _read_body(request)
            except Rejection:
                # Reported by the handler after the 404/405/auth/415 checks, as axum does.
                request[_TOO_LARGE_KEY] = True
        record = _record(request, records, body)
        request[_RECORD_KEY] = record
        response = await handler(request)
        record.status = response.status
        record.auth_id = auth_id(request)
        records.touch()
        return response

    @web.middleware
    async def route_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        match_info = request.match_info
        http_exception = getattr(match_info, "http_exception", None)
        if http_exception is not None:
            # axum answers unknown paths / methods with empty bodies.
            headers = {}
            if "Allow" in http_exception.headers:
                headers["Allow"] = http_exception.headers["Allow"]
            return web.Response(status=http_exception.status, headers=headers)
        if request.path not in PUBLIC_PATHS:
            try:
                request[AUTH_ID_KEY] = authenticator().authenticate(request) or ""
            except AuthError as exc:
                return exc.response()
        try:
            return await handler(request)
        except Rejection as exc:
            return exc.response()

    return [record_requests, route_errors]


def _record(request: web.Request, records: Records, body: bytes) -> RequestRecord:
    parsed: Any = None
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    record = RequestRecord(
        method=request.method,
        path=request.path,
        query=dict(request.query),
        headers=dict(request.headers),
        body=body,
        json=parsed,
    )
    return records.add(records.requests, record)
