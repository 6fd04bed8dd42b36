"""Speech engines of the local server and the registry that creates them by name.

``fake`` (deterministic tone bursts, no dependencies) is always available; ``local``
(espeak-ng + pocketsphinx) is imported lazily because it needs the ``local`` extra.
"""

from __future__ import annotations

import importlib

from .base import Engine

__all__ = ["ENGINE_NAMES", "LOCAL_EXTRA_HINT", "EngineUnavailable", "get_engine"]

#: Names accepted by :func:`get_engine` and ``sayna serve --engine``.
ENGINE_NAMES = ("fake", "local")

LOCAL_EXTRA_HINT = (
    "the local engine needs the optional dependencies: pip install 'sayna-client[local]'"
)


class EngineUnavailable(Exception):
    """An engine cannot be created; ``str()`` is safe to show to clients."""


def get_engine(name: str) -> Engine:
    """Create the engine called ``name``.

    Raises:
        EngineUnavailable: unknown name, or the ``local`` engine's optional
            dependencies are missing (message: :data:`LOCAL_EXTRA_HINT`).
    """
    if name == "fake":
        from .fake import FakeEngine

        return FakeEngine()
    if name == "local":
        # Imported by name so this package type-checks and imports without the extra.
        try:
            module = importlib.import_module(f"{__name__}.local")
        except ImportError as exc:
            raise EngineUnavailable(LOCAL_EXTRA_HINT) from exc
        engine = module.LocalEngine()
        if not isinstance(engine, Engine):
            raise EngineUnavailable("the local engine does not implement Engine")
        return engine
    raise EngineUnavailable(f"unknown engine {name!r}; expected one of {', '.join(ENGINE_NAMES)}")
