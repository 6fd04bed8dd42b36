"""Fire-and-forget session commands: :class:`Commands`, a part of the voice session.

Each validates its arguments first (``SaynaValidationError`` names the problem and
the fix, nothing is sent), then sends one text frame. The server acknowledges none
of them; failures come back as ``error`` / ``sip_transfer_error`` events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from .._config import MAX_TEXT_CHARS
from ..errors import SaynaValidationError
from ..protocol.commands import (
    LoadingStartMessage,
    LoadingStopMessage,
    SendMessageMessage,
    SipTransferMessage,
    TurnDetectConfig,
    UpdateConfigMessage,
    VADConfig,
    encode,
)

if TYPE_CHECKING:
    from .core import SessionCore

__all__ = ["Commands"]


class Commands:
    """``send_message``, ``sip_transfer``, ``update_config``, ``loading_start`` /
    ``loading_stop``: each checks its arguments, then sends one text frame on the
    session's ready connection."""

    __slots__ = ("_session",)

    def __init__(self, session: SessionCore) -> None:
        self._session = session

    async def send_message(
        self,
        message: str,
        role: str,
        topic: str = "messages",
        debug: Optional[dict[str, Any]] = None,
    ) -> None:
        """Publish a data message into the session's LiveKit room.

        Raises:
            SaynaValidationError: empty ``role`` or ``message`` of the wrong type.
        """
        if not isinstance(message, str):
            raise SaynaValidationError("message must be a string")
        if len(message) > MAX_TEXT_CHARS:
            raise SaynaValidationError(f"message exceeds {MAX_TEXT_CHARS} characters; split it")
        if not isinstance(role, str) or not role.strip():
            raise SaynaValidationError(
                "role must be a non-empty string such as 'user' or 'assistant'"
            )
        if debug is not None and not isinstance(debug, dict):
            raise SaynaValidationError("debug must be a dict or None")
        text = encode(SendMessageMessage(message=message, role=role, topic=topic, debug=debug))
        await self._session.ready_connection().send_text(text)

    async def sip_transfer(self, transfer_to: str) -> None:
        """Transfer the room's SIP caller to ``transfer_to``; failures arrive as
        ``sip_transfer_error`` events (success is silent)."""
        if not isinstance(transfer_to, str) or not transfer_to.strip():
            raise SaynaValidationError("transfer_to must be a phone number such as '+15551234567'")
        text = encode(SipTransferMessage(transfer_to=transfer_to.strip()))
        await self._session.ready_connection().send_text(text)

    async def update_config(
        self,
        *,
        vad_silence_duration_ms: Optional[int] = None,
        turn_detect_threshold: Optional[float] = None,
    ) -> None:
        """Send ``update_config`` (turn-detector threshold 0.0–1.0; the VAD part has no
        effect on the current server). No acknowledgement is sent back."""
        if turn_detect_threshold is not None and not 0.0 <= turn_detect_threshold <= 1.0:
            raise SaynaValidationError("turn_detect_threshold must be between 0.0 and 1.0")
        if vad_silence_duration_ms is not None and vad_silence_duration_ms < 0:
            raise SaynaValidationError("vad_silence_duration_ms must be >= 0")
        message = UpdateConfigMessage(
            vad=None
            if vad_silence_duration_ms is None
            else VADConfig(silence_duration_ms=vad_silence_duration_ms),
            turn_detect=None
            if turn_detect_threshold is None
            else TurnDetectConfig(threshold=turn_detect_threshold),
        )
        await self._session.ready_connection().send_text(encode(message))

    async def loading_start(self) -> None:
        """Start looping the configured loading clip into the LiveKit track."""
        await self._session.ready_connection().send_text(encode(LoadingStartMessage()))

    async def loading_stop(self) -> None:
        """Fade out the loading clip (always silent on the server)."""
        await self._session.ready_connection().send_text(encode(LoadingStopMessage()))
