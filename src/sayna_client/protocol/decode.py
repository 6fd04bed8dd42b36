"""Decode server frames into typed events: a pure function, no I/O.

The fast path is one pydantic-core call over the raw text through a discriminated
union. Only when that fails does the decoder look closer to tell an unknown event
type (a value, :class:`UnknownEvent`) from a malformed frame
(:class:`MalformedMessage`). It never raises.
"""

import json
from typing import Annotated, Any, Optional, Union

from pydantic import Field, TypeAdapter, ValidationError

from .events import MalformedMessage, ServerEvent, TTSPlaybackCompleteMessage, UnknownEvent

__all__ = [
    "KNOWN_EVENT_TYPES",
    "MAX_TEXT_FRAME",
    "completion_in",
    "decode_text",
    "validate_event_json",
]

#: Text frames above this many characters are reported as malformed without parsing
#: (the largest legitimate server message is a few kilobytes).
MAX_TEXT_FRAME = 1 << 20

_RAW_PREVIEW = 200

_adapter: TypeAdapter[ServerEvent] = TypeAdapter(
    Annotated[ServerEvent, Field(discriminator="type")]
)
#: The adapter's own validator, called directly: ``TypeAdapter.validate_json`` is a
#: Python wrapper that passes its default options on to exactly this call (a quarter
#: of the decode time of a result saved; same models, same errors).
_validate_json = _adapter.validator.validate_json
#: :func:`decode_text`'s fast path, for a caller that inlines it (the connection, once
#: per received event): the server event in a text frame of at most
#: :data:`MAX_TEXT_FRAME` characters; raises (``ValidationError``) where
#: :func:`decode_text` would explain, which the caller then asks to.
validate_event_json = _validate_json

KNOWN_EVENT_TYPES = frozenset(
    {
        "ready",
        "stt_result",
        "message",
        "participant_connected",
        "participant_disconnected",
        "track_subscribed",
        "tts_playback_complete",
        "vad_event",
        "error",
        "sip_transfer_error",
    }
)


def _preview(text: str) -> str:
    """The frame's start, printable anywhere: lone surrogates (from ``\\ud800``-style
    escapes) would make a log handler's encoder fail."""
    head = text if len(text) <= _RAW_PREVIEW else text[:_RAW_PREVIEW] + "..."
    return head.encode("utf-8", "backslashreplace").decode("utf-8")


def decode_text(text: Union[str, bytes]) -> Union[ServerEvent, UnknownEvent, MalformedMessage]:
    """Turn one text frame into an event; never raises.

    Returns a server event model, :class:`UnknownEvent` for a JSON object whose
    ``type`` is not known, or :class:`MalformedMessage` (with a short preview of the
    frame, never the whole of it) for everything else.
    """
    try:
        if len(text) > MAX_TEXT_FRAME:
            return MalformedMessage(
                f"<{len(text)} characters>", f"frame exceeds {MAX_TEXT_FRAME} characters"
            )
        try:
            return _validate_json(text)  # type: ignore[no-any-return]  # the hot path
        except ValidationError as exc:
            return _explain(text, exc)
    except Exception as exc:  # the contract: a hostile frame is a value, never a crash
        return MalformedMessage("<undecodable frame>", f"decoding failed: {type(exc).__name__}")


def _explain(
    text: Union[str, bytes], first_error: ValidationError
) -> Union[UnknownEvent, MalformedMessage]:
    """What a frame that is not a valid server event is: unknown, or malformed and why."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return MalformedMessage("<undecodable bytes>", "frame is not valid UTF-8")
    try:
        data: Any = json.loads(text)
    except RecursionError:  # e.g. 1,000 nested arrays in 2 KB
        return MalformedMessage(_preview(text), "JSON nested too deeply to decode")
    except ValueError as exc:  # bad JSON, or an integer of more than 4,300 digits
        return MalformedMessage(_preview(text), f"invalid JSON: {exc}")
    if not isinstance(data, dict):
        return MalformedMessage(
            _preview(text), f"expected a JSON object, got {type(data).__name__}"
        )
    event_type = data.get("type")
    if not isinstance(event_type, str):
        return MalformedMessage(_preview(text), "the message has no string 'type' field")
    if event_type not in KNOWN_EVENT_TYPES:
        return UnknownEvent(event_type, data)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'][1:]) or '<root>'}: {err['msg']}"
        for err in first_error.errors(include_url=False)
    )
    return MalformedMessage(_preview(text), f"invalid {event_type!r} message: {problems}")


def completion_in(text: Union[str, bytes]) -> Optional[TTSPlaybackCompleteMessage]:
    """The completion a malformed frame still is: a ``tts_playback_complete`` whose
    ``timestamp`` (its only required field) is missing or not an integer, as a
    :class:`TTSPlaybackCompleteMessage` with ``timestamp`` None; None for any other frame.

    :func:`decode_text` makes such a frame a :class:`MalformedMessage` (the protocol
    requires the field); the session reports that, then delivers this, because the
    server's TTS queue drained all the same, and speech waiting for it must end.
    """
    if len(text) > MAX_TEXT_FRAME:
        return None
    try:
        data: Any = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("type") != "tts_playback_complete":
        return None
    return TTSPlaybackCompleteMessage.model_construct(timestamp=None)
