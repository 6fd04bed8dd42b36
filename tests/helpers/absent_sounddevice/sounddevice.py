"""A stand-in for the ``sounddevice`` module on a machine that has PortAudio but no sound
card (a server, a container): put this folder first on ``sys.path`` and, as the real
module does there, the default device (-1) cannot be queried and a stream cannot be
opened on it: ``PortAudioError('Error querying device -1')``, the text sounddevice 0.5
raises from ``query_devices`` and from a stream's constructor (which queries the device
first). A device named by a string that matches none is sounddevice's ``ValueError``.
A real module file, not a mock (see ``busy_sounddevice``).
"""

from __future__ import annotations

from typing import Any, Optional


class PortAudioError(Exception):
    """As sounddevice's: ``(message[, PaErrorCode])``, shown as ``message [PaErrorCode n]``."""

    def __str__(self) -> str:
        if len(self.args) > 1:
            return "{} [PaErrorCode {}]".format(*self.args)
        return str(self.args[0]) if self.args else ""


def _device_id(device: Optional[Any], kind: Optional[str]) -> int:
    if device is None:
        return -1  # PortAudio's paNoDevice: there is no default device
    if isinstance(device, int):
        return device
    raise ValueError(f"No {kind or 'input/output'} device matching {device!r}")


def query_devices(device: Optional[Any] = None, kind: Optional[str] = None) -> dict[str, Any]:
    raise PortAudioError(f"Error querying device {_device_id(device, kind)}")


class _Stream:
    _kind = ""

    def __init__(self, *args: Any, device: Optional[Any] = None, **kwargs: Any) -> None:
        query_devices(_device_id(device, self._kind))


class RawInputStream(_Stream):
    _kind = "input"


class RawOutputStream(_Stream):
    _kind = "output"
