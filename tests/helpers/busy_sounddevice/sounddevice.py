"""A stand-in for the ``sounddevice`` module: put this folder first on ``sys.path``
(``PYTHONPATH`` of a subprocess) and devices are listed, but opening a stream fails as
PortAudio's ``Pa_OpenStream`` does for a busy or exclusive device. A machine without
PortAudio cannot run the real module; this is a real module file, not a mock.

``FAKE_SPEAKER_OPENS=1`` in the environment: the output stream opens (and plays nothing),
so only the microphone fails.
"""

from __future__ import annotations

import os
from typing import Any, Optional


class PortAudioError(Exception):
    """As sounddevice's: ``(message, PaErrorCode)``, shown as ``message [PaErrorCode n]``."""

    def __str__(self) -> str:
        return "{} [PaErrorCode {}]".format(*self.args)


def query_devices(device: Optional[Any] = None, kind: Optional[str] = None) -> dict[str, Any]:
    return {"name": "Fake USB Audio", "default_samplerate": 48000.0}


class _BusyStream:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise PortAudioError(f"Error opening {type(self).__name__}: Device unavailable", -9985)


class RawInputStream(_BusyStream):
    pass


class _SilentOutputStream:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


class RawOutputStream(_SilentOutputStream if os.environ.get("FAKE_SPEAKER_OPENS") else _BusyStream):  # type: ignore[misc]
    pass
