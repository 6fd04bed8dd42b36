"""A stand-in for the ``sounddevice`` module whose input device delivers faster than real
time, as an ALSA null device does: put this folder first on ``sys.path`` and starting a
``RawInputStream`` calls its callback :data:`BLOCKS` times at once with blocks of
silence (PortAudio's thread would, back to back), then never again. The output stream
opens and plays nothing. A real module file, not a mock (see ``busy_sounddevice``).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

#: Blocks a starting input stream delivers at once (a test sets it).
BLOCKS = 100


class PortAudioError(Exception):
    """As sounddevice's: ``(message, PaErrorCode)``, shown as ``message [PaErrorCode n]``."""

    def __str__(self) -> str:
        return "{} [PaErrorCode {}]".format(*self.args)


def query_devices(device: Optional[Any] = None, kind: Optional[str] = None) -> dict[str, Any]:
    return {"name": "Null", "default_samplerate": 48000.0}


class RawInputStream:
    def __init__(self, *, blocksize: int, callback: Callable[..., None], **_: Any) -> None:
        self._blocksize = blocksize
        self._callback = callback
        self.stopped = False

    def start(self) -> None:
        block = bytes(2 * self._blocksize)
        for _ in range(BLOCKS):
            self._callback(block, self._blocksize, None, None)

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        pass


class RawOutputStream:
    def __init__(self, **_: Any) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass
