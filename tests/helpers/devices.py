"""Sound cards for tests on machines that have none: :data:`BUSY_SOUNDDEVICE`, a folder
to put first on ``sys.path`` (or a subprocess's ``PYTHONPATH``) so that ``import
sounddevice`` finds a stand-in whose devices are listed but cannot be opened (see its
module docstring)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUSY_SOUNDDEVICE"]

#: The folder holding the stand-in ``sounddevice.py``.
BUSY_SOUNDDEVICE = Path(__file__).with_name("busy_sounddevice")
