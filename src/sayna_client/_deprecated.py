"""sayna-client 0.0.18's names on ``SaynaClient``, kept working with a ``DeprecationWarning``."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from typing_extensions import Protocol

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["DeprecatedNames"]


class _Current(Protocol):
    """The names the old ones now call."""

    async def on_audio_input(self, audio_data: Buffer) -> None: ...

    async def clear(self) -> None: ...

    async def speak(self, text: str, flush: bool = ..., allow_interruption: bool = ...) -> Any: ...


class DeprecatedNames:
    """``send_audio``, ``send_clear`` and ``send_speak``: what 0.0.18 called
    ``on_audio_input``, ``clear`` and ``speak``."""

    async def send_audio(self: _Current, audio_data: Buffer) -> None:
        """Deprecated alias of :meth:`on_audio_input`."""
        warnings.warn("use on_audio_input()", DeprecationWarning, stacklevel=2)
        await self.on_audio_input(audio_data)

    async def send_clear(self: _Current) -> None:
        """Deprecated alias of :meth:`clear`."""
        warnings.warn("use clear()", DeprecationWarning, stacklevel=2)
        await self.clear()

    async def send_speak(
        self: _Current, text: str, flush: bool = True, allow_interruption: bool = True
    ) -> None:
        """Deprecated alias of :meth:`speak`."""
        warnings.warn("use speak()", DeprecationWarning, stacklevel=2)
        await self.speak(text, flush, allow_interruption)
