"""Fire-and-forget session commands: :class:`Commands`, a part of the voice session.

Each validates its arguments first (``SaynaValidationError`` names the problem and
the fix, nothing is sent), then sends one text frame. The server acknowledges none
of them; failures come back as ``error`` / ``sip_transfer_error`` events.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Optional

from .._checks import check_utf8
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
            SaynaValidationError: ``message``, ``role`` or ``topic`` not a string (or
                ``role`` / ``topic`` empty), or ``debug`` not a dict that JSON can carry
                (nothing is sent).
        """
        if not isinstance(message, str):
            raise SaynaValidationError(f"message must be a string, got {type(message).__name__}")
        if len(message) > MAX_TEXT_CHARS:
            raise SaynaValidationError(f"message exceeds {MAX_TEXT_CHARS} characters; split it")
        if not isinstance(role, str) or not role.strip():
            raise SaynaValidationError(
                "role must be a non-empty string such as 'user' or 'assistant'"
            )
        if not isinstance(topic, str) or not topic.strip():
            raise SaynaValidationError(
                f"topic must be a non-empty string (default 'messages'), got {topic!r}"
            )
        if debug is not None and not isinstance(debug, dict):
            raise SaynaValidationError("debug must be a dict or None")
        for name, value in (("message", message), ("role", role), ("topic", topic)):
            if not value.isascii():
                check_utf8(name, value)
        try:
            text = encode(SendMessageMessage(message=message, role=role, topic=topic, debug=debug))
        except (ValueError, TypeError) as exc:  # pydantic's errors are ValueErrors
            raise SaynaValidationError(
                "debug must be a dict JSON can carry: string keys, and values that are "
                "strings, numbers, booleans, None, lists or dicts of those "
                f"({type(exc).__name__})"
            ) from None
        await self._session.ready_connection().send_text(text)

    async def sip_transfer(self, transfer_to: str) -> None:
        """Transfer the room's SIP caller to ``transfer_to``; failures arrive as
        ``sip_transfer_error`` events (success is silent)."""
        if not isinstance(transfer_to, str) or not transfer_to.strip():
            raise SaynaValidationError("transfer_to must be a phone number such as '+15551234567'")
        if not transfer_to.isascii():
            check_utf8("transfer_to", transfer_to)
        text = encode(SipTransferMessage(transfer_to=transfer_to.strip()))
        await self._session.ready_connection().send_text(text)

    async def update_config(
        self,
        *,
        vad_silence_duration_ms: Optional[int] = None,
        turn_detect_threshold: Optional[float] = None,
    ) -> None:
        """Send ``update_config`` (turn-detector threshold 0.0–1.0; the VAD part has no
        effect on the current server). No acknowledgement is sent back.

        Raises:
            SaynaValidationError: ``turn_detect_threshold`` not a number from 0.0 to
                1.0, or ``vad_silence_duration_ms`` not a whole number >= 0 (an int, or a
                float such as 300.0; nothing is sent).
        """
        threshold: Optional[float] = None
        if turn_detect_threshold is not None:
            given: Any = turn_detect_threshold
            if (
                isinstance(given, bool)
                or not isinstance(given, numbers.Real)
                or not 0.0 <= float(given) <= 1.0  # (NaN too)
            ):
                raise SaynaValidationError(
                    f"turn_detect_threshold must be a number from 0.0 to 1.0, got {given!r}"
                )
            threshold = float(given)  # (a numpy float: plain, for the message)
        silence: Optional[int] = None
        if vad_silence_duration_ms is not None:
            given = vad_silence_duration_ms
            if isinstance(given, numbers.Integral) and not isinstance(given, bool):
                silence = int(given)
            elif (
                isinstance(given, numbers.Real)
                and not isinstance(given, bool)
                and math.isfinite(given)
                and float(given).is_integer()
            ):
                silence = int(float(given))  # 300.0
            if silence is None or silence < 0:
                raise SaynaValidationError(
                    "vad_silence_duration_ms must be a whole number >= 0 (milliseconds), "
                    f"got {given!r}"
                )
        message = UpdateConfigMessage(
            vad=None if silence is None else VADConfig(silence_duration_ms=silence),
            turn_detect=None if threshold is None else TurnDetectConfig(threshold=threshold),
        )
        await self._session.ready_connection().send_text(encode(message))

    async def loading_start(self) -> None:
        """Start looping the configured loading clip into the LiveKit track."""
        await self._session.ready_connection().send_text(encode(LoadingStartMessage()))

    async def loading_stop(self) -> None:
        """Fade out the loading clip (always silent on the server)."""
        await self._session.ready_connection().send_text(encode(LoadingStopMessage()))
