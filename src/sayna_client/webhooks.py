"""SIP webhook signatures (protocol reference section 9).

Pure functions over raw bytes with an injectable clock, so both the local
server (which signs) and user receivers (which verify) share one definition.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SIGNATURE_VERSION", "sign_payload"]

SIGNATURE_VERSION = "v1"


def sign_payload(secret: str, timestamp: str, event_id: str, body: bytes) -> str:
    """Return the ``X-Sayna-Signature`` value (``"v1=" + 64 lowercase hex``) for a body.

    The signed message is ``v1:{timestamp}:{event_id}:{raw body}``; the key is the
    secret with surrounding whitespace removed, as the server trims it.
    """
    message = f"{SIGNATURE_VERSION}:{timestamp}:{event_id}:".encode() + body
    digest = hmac.new(secret.strip().encode(), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"
