"""The body of a SIP webhook, as models (verified and parsed by ``sayna_client.webhooks``)."""

from __future__ import annotations

from typing import Dict, Optional

from pydantic import BaseModel, ConfigDict

__all__ = ["WebhookSIPOutput", "WebhookSIPParticipant", "WebhookSIPRoom"]


# Payload models. Optional/Dict from typing (not ``X | None``) so pydantic can
# evaluate the postponed annotations on Python 3.9.


class WebhookSIPParticipant(BaseModel):
    """The SIP caller as a LiveKit participant. ``name`` may be absent or ``""``."""

    model_config = ConfigDict(extra="allow")

    name: Optional[str] = None
    identity: str
    sid: str


class WebhookSIPRoom(BaseModel):
    """The LiveKit room the SIP call was routed into."""

    model_config = ConfigDict(extra="allow")

    name: str
    sid: str


class WebhookSIPOutput(BaseModel):
    """The body of a SIP webhook: who called which number, and into which room.

    Unknown keys sent by newer servers are kept (see ``model_extra``) rather than
    rejected. ``sip_headers`` holds the participant's ``sip.h.*`` attributes with the
    prefix removed (``to``, ``from``, ``x-to-ip``, ...); current servers always send
    it, older ones may not, hence ``None``.
    """

    model_config = ConfigDict(extra="allow")

    participant: WebhookSIPParticipant
    room: WebhookSIPRoom
    from_phone_number: str
    to_phone_number: str
    room_prefix: str
    sip_host: str
    sip_headers: Optional[Dict[str, str]] = None
