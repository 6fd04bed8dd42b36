"""Sound cards for tests on machines that have none: :data:`BUSY_SOUNDDEVICE`, a folder
to put first on ``sys.path`` (or a subprocess's ``PYTHONPATH``) so that ``import
sounddevice`` finds a stand-in whose devices are listed but cannot be opened;
:data:`ABSENT_SOUNDDEVICE`, one for a machine with no device at all, and
:data:`BURST_SOUNDDEVICE`, one whose microphone delivers faster than real time (see their
module docstrings)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ABSENT_SOUNDDEVICE", "BURST_SOUNDDEVICE", "BUSY_SOUNDDEVICE"]

#: The folder holding the stand-in ``sounddevice.py``.
BUSY_SOUNDDEVICE = Path(__file__).with_name("busy_sounddevice")

#: The folder holding a stand-in ``sounddevice.py`` for a machine with no sound card at all
#: (PortAudio there, no device): see its module docstring.
ABSENT_SOUNDDEVICE = Path(__file__).with_name("absent_sounddevice")

#: The folder holding a stand-in ``sounddevice.py`` whose microphone delivers a burst of
#: blocks at once when it starts (a device faster than real time).
BURST_SOUNDDEVICE = Path(__file__).with_name("burst_sounddevice")
