"""API-secret authentication exactly as the real server's middleware (protocol section 1).

Only the "API secret" mode is implemented: a set of secrets, each optionally bound to a
tenant id (``auth.id``) used for LiveKit room isolation.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from aiohttp import web

__all__ = ["AuthError", "Authenticator", "extract_token"]

MISSING = (
    "missing_auth_header",
    "Missing authentication token (Authorization header or api_key query parameter)",
)
INVALID_HEADER = (
    "invalid_auth_header",
    "Invalid Authorization header format (expected 'Bearer {token}') and missing api_key "
    "query parameter",
)
UNAUTHORIZED = ("unauthorized", "Unauthorized: Invalid API secret")


@dataclass(frozen=True)
class AuthError(Exception):
    """An authentication failure: the ``error`` code and ``message`` of the 401 body."""

    code: str
    message: str

    def response(self) -> web.Response:
        body = json.dumps({"error": self.code, "message": self.message}, separators=(",", ":"))
        return web.Response(body=body.encode(), status=401, content_type="application/json")


def extract_token(authorization: Optional[str], api_key_param: Optional[str]) -> str:
    """Apply the token extraction rules of section 1.2.

    Raises:
        AuthError: ``invalid_auth_header`` (unusable header, no query key) or
            ``missing_auth_header`` (neither present).
    """
    if (
        authorization is not None
        and authorization.startswith("Bearer ")
        and authorization.isascii()
        and authorization[len("Bearer ") :]
    ):
        return authorization[len("Bearer ") :]
    if api_key_param is not None and api_key_param.strip():
        return api_key_param
    if authorization is not None:
        raise AuthError(*INVALID_HEADER)
    raise AuthError(*MISSING)


class Authenticator:
    """Validates tokens against configured secrets.

    Args:
        secrets: secret -> tenant id (``None`` or ``""`` = no tenant isolation). Empty
            mapping disables authentication (every request passes with no tenant).
    """

    def __init__(self, secrets: Mapping[str, Optional[str]]) -> None:
        self._secrets = [(secret.strip().encode(), tenant) for secret, tenant in secrets.items()]

    @property
    def required(self) -> bool:
        return bool(self._secrets)

    def authenticate(self, request: web.Request) -> Optional[str]:
        """Return the effective tenant id of ``request`` (``None`` when there is none).

        Raises:
            AuthError: when authentication is required and fails.
        """
        if not self._secrets:
            return None
        token = extract_token(request.headers.get("Authorization"), request.query.get("api_key"))
        presented = token.encode()
        matched: Optional[str] = None
        found = False
        # Compare against every secret so timing does not reveal which one matched.
        for secret, tenant in self._secrets:
            if hmac.compare_digest(presented, secret) and not found:
                found = True
                matched = tenant
        if not found:
            raise AuthError(*UNAUTHORIZED)
        effective = (matched or "").strip()
        return effective or None
