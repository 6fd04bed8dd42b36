"""Which client message a server ``error`` answers, as far as the protocol tells.

An ``error`` frame is ``{"type": "error", "message": <text>}`` with no request id
(protocol §6.4). The server handles messages strictly one at a time and sends its
frames in order (§6.2, §6.10), so the error of a command sent *before* a ``config``
(``send_message`` without a LiveKit room, a ``speak`` before audio is set up) is sent
before that config is even looked at, yet reaches the client *after* the config was
sent: order alone cannot tell it from the config's own refusal. The texts can: every
message type has its own catalogue of errors (§6.3, §6.11), and the config's fatal and
non-fatal texts differ from the others'.

Pure functions of the text, no I/O. A text this module does not know is attributed to
nobody (``None``); while a config waits for its answer such an error still refuses it,
as a new server's new config error would.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["error_source", "refuses_config"]

#: Fatal answers to ``config`` (§6.3 table, §6.11): no ``ready`` follows.
_CONFIG_FATAL = (
    "STT configuration is required",
    "TTS configuration is required",
    "Unsupported provider:",
    "Invalid auth input for provider",
    "Missing server auth for provider",
    "Failed to create voice manager",
    "Failed to start voice manager",
    "Failed to set up",  # STT, STT error, TTS error, TTS completion callbacks (not TTS audio)
    "Timeout waiting for voice providers",
    "LiveKit room handler not initialized",
    "Access denied: room",
    "Failed to create room",
    "Failed to prepare room",
    "Failed to generate agent token",
    "Failed to connect to LiveKit room",
)

#: Errors sent while a ``config`` is processed that do not end it: ``ready`` still
#: follows (loading-clip problems, the TTS audio callback; §6.3, §6.11).
_CONFIG_NON_FATAL = (
    "loading_audio",
    "sample_rate is required for raw PCM loading_audio",
    "loading audio",
    "unsupported loading audio",
    "failed to construct loading audio resampler",
    "invalid loading audio resampler input",
    "failed to resample loading audio",
    "Failed to set up TTS audio callback",
)

#: Errors of the other client messages and of the running session (§6.3, §6.4).
_OTHERS = (
    ("Audio processing is disabled", "speak"),  # also audio frames before config
    ("Voice manager not configured", "speak"),  # also clear and audio frames
    ("Failed to synthesize speech", "speak"),
    ("Failed to clear TTS provider", "clear"),
    ("LiveKit client not configured", "send_message"),
    ("Failed to queue send message operation", "send_message"),
    ("Failed to send message via LiveKit", "send_message"),
    ("Operation worker disconnected", "send_message"),
    ("Invalid turn detection threshold", "update_config"),
    ("Send a config message first before using loading_start", "loading_start"),
    ("Loading indicator requires", "loading_start"),
    ("loading indicator requires", "loading_start"),
    ("no loading audio configured", "loading_start"),
    ("Failed to process audio", "audio"),
    ("STT streaming error", "session"),
    ("TTS error:", "session"),
    ("Failed to process LiveKit audio", "session"),
    ("WebSocket error:", "session"),
)


def error_source(message: str) -> Optional[str]:
    """The client message an ``error`` text answers, as far as the text tells.

    Returns:
        ``"config"`` (a fatal or non-fatal answer to ``config``); ``"speak"`` (also
        for the "not configured" errors that ``clear`` and audio frames share with it);
        ``"clear"``, ``"send_message"``, ``"update_config"``, ``"loading_start"``,
        ``"audio"`` (a binary frame); ``"session"`` for a provider failing during the
        session; ``"message"`` for ``Invalid message format`` (any message the server
        could not parse); ``None`` for a text it does not know.
    """
    if message.startswith(_CONFIG_FATAL) or message.startswith(_CONFIG_NON_FATAL):
        return "config"
    if message.startswith("Invalid message format"):
        return "message"
    for prefix, source in _OTHERS:
        if message.startswith(prefix):
            return source
    return None


def refuses_config(message: str) -> bool:
    """True when an ``error`` that arrives while a ``config`` waits for its answer is that
    config's refusal (no ``ready`` will follow): a fatal config text, a message the
    server could not parse (the config, since the SDK's other messages are well formed),
    or a text nobody is known to send. False for the non-fatal config texts and for the
    errors of other messages and of the running session."""
    if message.startswith(_CONFIG_NON_FATAL):
        return False
    return error_source(message) in ("config", "message", None)
