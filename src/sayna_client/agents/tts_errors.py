"""How the server's ``error`` messages about a ``speak`` read (protocol 6.3, 6.7), for
the speech queue to credit them to a speech."""

from __future__ import annotations

from ..errors import SaynaTTSError

__all__ = ["REFUSALS", "SPEECH_FAILURES", "speech_error"]

#: The TTS provider refused the ``speak`` itself (synthesis inline, as Google's, or the
#: provider not connected): no completion follows.
REFUSED = "Failed to synthesize speech:"
#: A ``speak`` the session cannot take at all (no audio, no completion follow, as for a
#: refused one), and the SDK's fix added to its error.
_CANNOT_SPEAK = {
    "Audio processing is disabled": " (audio is off in this session: a client made with "
    "without_audio=True cannot speak; make it with a tts_config and without_audio=False)",
    "Voice manager not configured": " (no TTS in this session: connect with a tts_config)",
}
#: The beginnings of the errors after which no completion comes for the speech.
REFUSALS = (REFUSED, *_CANNOT_SPEAK)
#: The beginnings of every error that ends a speech: its provider failed while
#: synthesizing it (``TTS error:``; Sayna goes on with the next request), or a refusal.
SPEECH_FAILURES = ("TTS error:", *REFUSALS)


def speech_error(message: str) -> SaynaTTSError:
    """The error a speech the server failed with ``message`` ends with (the SDK's fix
    added where the server's text names none)."""
    fix = next((f for start, f in _CANNOT_SPEAK.items() if message.startswith(start)), "")
    return SaynaTTSError(message + fix)
