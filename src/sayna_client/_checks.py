"""Argument checks shared by the client's methods: cheap on success, precise on failure.

Every failure is a :class:`~sayna_client.SaynaValidationError` naming the argument
and the fix, raised before anything is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, NoReturn, Optional, TypeVar, Union

from ._config import MAX_TEXT_CHARS
from .errors import SaynaTimeoutError, SaynaValidationError
from .types import GoogleAuth, STTConfig, TTSConfig

__all__ = [
    "BYTES_PER_SAMPLE",
    "MAX_AUDIO_FRAME",
    "bounded",
    "check_text",
    "check_type",
    "frame_size",
    "has_google_auth",
    "reject_frame",
]

T = TypeVar("T")

#: Largest binary frame ``on_audio_input`` accepts (the server's frame limit).
MAX_AUDIO_FRAME = 16 * 1024 * 1024
#: Bytes per sample of the PCM-like STT encodings (others are not checked).
BYTES_PER_SAMPLE = {"linear16": 2, "pcm": 2, "pcm_s16le": 2, "mulaw": 1, "ulaw": 1, "alaw": 1}


def has_google_auth(config: Optional[Union[STTConfig, TTSConfig]]) -> bool:
    return config is not None and isinstance(config.auth, GoogleAuth)


def frame_size(audio_data: Any) -> int:
    if isinstance(audio_data, memoryview):
        return audio_data.nbytes
    if isinstance(audio_data, (bytes, bytearray)):
        return len(audio_data)
    raise SaynaValidationError(
        f"audio_data must be bytes, got {type(audio_data).__name__}; send raw audio in the "
        "stt_config format"
    )


def reject_frame(audio_data: Any, size: int, stt: Optional[STTConfig]) -> NoReturn:
    """Raise the precise error for a frame that failed the quick checks."""
    if size == 0:
        raise SaynaValidationError(
            "audio_data is empty; empty frames end the stream for some providers, "
            "so send audio or nothing"
        )
    if size > MAX_AUDIO_FRAME:
        raise SaynaValidationError(
            f"audio_data is {size} bytes; split it into frames of at most "
            f"{MAX_AUDIO_FRAME} bytes (20 ms frames are typical)"
        )
    assert stt is not None
    width = BYTES_PER_SAMPLE[stt.encoding.lower()]
    raise SaynaValidationError(
        f"audio_data is {size} bytes, not a whole number of {stt.encoding} samples for "
        f"{stt.channels} channel(s) ({width * stt.channels} bytes each); send whole samples"
    )


async def bounded(waiter: Awaitable[T], timeout: Optional[float], what: str) -> T:
    """``await waiter`` within ``timeout`` seconds (None: no limit), else
    :class:`SaynaTimeoutError` naming ``what``."""
    try:
        return await asyncio.wait_for(waiter, timeout)
    except asyncio.TimeoutError as exc:
        raise SaynaTimeoutError(
            f"{what} did not finish within {timeout} s", operation=what, timeout=timeout
        ) from exc


def check_type(name: str, value: Any, cls: type, example: str) -> None:
    """Raise :class:`SaynaValidationError` unless ``value`` is None or a ``cls``."""
    if value is not None and not isinstance(value, cls):
        hint = f"; build one from it: {cls.__name__}(**{name})" if isinstance(value, dict) else ""
        raise SaynaValidationError(
            f"{name} must be a {cls.__name__} (e.g. {example}), got {type(value).__name__}{hint}"
        )


def check_text(name: str, text: Any) -> None:
    if not isinstance(text, str):
        raise SaynaValidationError(f"{name} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise SaynaValidationError(
            f"{name} is empty; the server would ignore it. Pass text to speak, or call "
            "tts_flush() to send an empty speak on purpose"
        )
    if len(text) > MAX_TEXT_CHARS:
        raise SaynaValidationError(
            f"{name} is {len(text)} characters; the limit is {MAX_TEXT_CHARS}: split it "
            "into several speak() calls"
        )
