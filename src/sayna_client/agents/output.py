"""Where the agent's voice goes: the :class:`AudioOutput` protocol an attached speaker,
phone bridge or file implements, and the byte rate of the session's TTS audio that turns
bytes into seconds heard (see :mod:`sayna_client.agents.speech`)."""

from __future__ import annotations

from typing import Optional, Protocol, runtime_checkable

from ..protocol.encodings import bytes_per_sample

__all__ = ["AudioOutput", "bytes_per_second"]


@runtime_checkable
class AudioOutput(Protocol):
    """Where the agent's voice is played: a speaker, a phone bridge, a file.

    ``write`` is called on the event loop for every TTS frame as it arrives and must not
    block (buffer it; play it from another thread or task). ``flush`` drops what was
    written and not played yet and returns how many bytes it dropped (barge-in). An
    exception from either is logged and reported to the session's error callbacks as a
    :class:`~sayna_client.CallbackError` (the frame is lost; an interruption still ends
    its speech and sends ``clear``): it never ends the session. A ``write`` that raises
    for frame after frame (a device gone) is reported at the first frame of the run
    only; the others are logged at DEBUG.

    Optional: ``buffered_bytes``, an ``int`` attribute or property, the bytes written
    and not played yet (counted as written). An output that has it keeps each speech
    unfinished (and interruptible by barge-in) until it has played the speech's last
    byte; without it a speech ends when its audio has arrived (see
    :mod:`~sayna_client.agents.playout`). An output that stopped playing (closed)
    reports no ``buffered_bytes`` (None) until it plays again: the speech it holds ends
    then, what it played as played out, the rest as interrupted (not heard, and
    dropped from the output with ``flush()``, so that it is not played on a restart).
    """

    def write(self, data: bytes) -> None:
        """Queue ``data`` (TTS audio in the session's format) for playing."""

    def flush(self) -> int:
        """Drop unplayed audio; return the number of bytes dropped."""


def bytes_per_second(audio_format: str, sample_rate: int) -> Optional[float]:
    """Bytes of one second of mono TTS audio, or None for a compressed format (mp3, opus).

    Args:
        audio_format: ``TTSConfig.audio_format`` (``linear16``, ``pcm``, ``mulaw``, ...).
        sample_rate: ``TTSConfig.sample_rate``.
    """
    known = bytes_per_sample(audio_format)  # the one table (protocol.encodings)
    if known is not None:
        return float(known * sample_rate)
    # TTS names outside the table: "wav", "raw", ElevenLabs' "pcm_16000", "ulaw_8000".
    name = audio_format.strip().lower()
    if name in ("wav", "raw") or name.startswith("pcm_"):
        return 2.0 * sample_rate
    if name.startswith(("ulaw_", "alaw_")):
        return float(sample_rate)
    return None
