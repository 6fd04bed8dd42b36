"""Argument checks shared by the client's methods: cheap on success, precise on failure.

Every failure is a :class:`~sayna_client.SaynaValidationError` naming the argument
and the fix, raised before anything is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, NoReturn, Optional, TypeVar, Union

from ._compat import within
from ._config import MAX_TEXT_CHARS
from .errors import SaynaTimeoutError, SaynaValidationError
from .types import GoogleAuth, STTConfig, TTSConfig

__all__ = [
    "MAX_AUDIO_FRAME",
    "as_frame",
    "bounded",
    "check_text",
    "check_type",
    "check_utf8",
    "has_google_auth",
    "reject_frame",
]

T = TypeVar("T")

#: Largest binary frame ``on_audio_input`` accepts (the server's frame limit).
MAX_AUDIO_FRAME = 16 * 1024 * 1024

Frame = Union[bytes, bytearray, memoryview]


def has_google_auth(config: Optional[Union[STTConfig, TTSConfig]]) -> bool:
    return config is not None and isinstance(config.auth, GoogleAuth)


def as_frame(audio_data: Any) -> tuple[Frame, int]:
    """Any bytes-like ``audio_data`` other than ``bytes`` as ``(frame, size in bytes)``:
    a ``bytearray`` as is, any other C-contiguous buffer (a memoryview, ``array.array``,
    a numpy array...) as a one-dimensional memoryview of its bytes, so every sender puts
    exactly those bytes in the frame (never an item count).

    Raises:
        SaynaValidationError: not bytes-like, a buffer that cannot be read (a released
            memoryview), one that is not C-contiguous, or one of floating-point samples
            (no Sayna encoding is floating-point).
    """
    if type(audio_data) is bytearray:
        return audio_data, len(audio_data)
    try:
        view = memoryview(audio_data)
    except TypeError:
        hint = (
            "pass audio_data.tobytes()"
            if callable(getattr(audio_data, "tobytes", None))
            else "send raw audio in the stt_config format"
        )
        raise SaynaValidationError(
            f"audio_data must be a bytes-like object (bytes, bytearray, memoryview, "
            f"array.array, a numpy array), got {type(audio_data).__name__}; {hint}"
        ) from None
    except ValueError as exc:  # e.g. a released memoryview
        raise SaynaValidationError(
            f"audio_data cannot be read ({exc}); pass a buffer that is still valid, or "
            "bytes(audio_data) taken before it was released"
        ) from None
    if not view.c_contiguous:
        raise SaynaValidationError(
            f"audio_data is a {type(audio_data).__name__} whose memory is not contiguous "
            "(e.g. a strided slice of an array); pass audio_data.tobytes() (or "
            "numpy.ascontiguousarray(audio_data))"
        )
    if view.format != "B" or view.ndim != 1:
        if view.format.lstrip("@=<>!") in _FLOAT_FORMATS:
            _reject_float(audio_data, view)
        view = view.cast("B")
    return view, view.nbytes


#: Buffer formats of floating-point samples (half, single, double).
_FLOAT_FORMATS = frozenset({"e", "f", "d"})


def _reject_float(audio_data: Any, view: memoryview) -> NoReturn:
    kind = {2: "float16", 4: "float32", 8: "float64"}.get(view.itemsize, "floating-point")
    raise SaynaValidationError(
        f"audio_data is a {type(audio_data).__name__} of {kind} samples (what soundfile, "
        "sounddevice and librosa return by default), but Sayna takes integer samples in "
        "the stt_config encoding: the server would hear noise or nothing. Convert it, "
        "for linear16: (numpy.clip(audio, -1, 1) * 32767).astype('<i2'), or read the "
        "audio as int16 (soundfile.read(..., dtype='int16'), sounddevice dtype='int16')"
    )


def reject_frame(size: int) -> NoReturn:
    """Raise the precise error for a frame whose ``size`` is 0 or over the limit."""
    if size == 0:
        raise SaynaValidationError(
            "audio_data is empty; empty frames end the stream for some providers, "
            "so send audio or nothing"
        )
    raise SaynaValidationError(
        f"audio_data is {size} bytes; split it into frames of at most "
        f"{MAX_AUDIO_FRAME} bytes (20 ms frames are typical)"
    )


async def bounded(waiter: Awaitable[T], timeout: Optional[float], what: str) -> T:
    """``await waiter`` within ``timeout`` seconds (None: no limit), else
    :class:`SaynaTimeoutError` naming ``what``."""
    try:
        # (In the caller's task, as asyncio.wait_for is not before Python 3.12: a wait
        # made by a callback must be told apart from the callbacks task's others.)
        return await within(timeout, waiter)
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
    if not text.isascii():
        check_utf8(name, text)


def check_utf8(name: str, text: str) -> None:
    """Raise :class:`SaynaValidationError` when ``text`` holds a lone surrogate (text
    decoded with ``errors="surrogateescape"``, a broken ``\\ud800`` escape): it cannot be
    sent as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SaynaValidationError(
            f"{name} holds a lone surrogate (U+{ord(text[exc.start]):04X} at index "
            f"{exc.start}), which UTF-8 cannot carry: decode the text with "
            "errors='replace', or remove that character"
        ) from None
