"""The text sources of ``speak_stream`` (an LLM's token stream): closing one left before
its end, and what its failure becomes for ``await handle``."""

from __future__ import annotations

import asyncio
import logging

from ..errors import SaynaError

__all__ = ["as_failure", "close_source"]

logger = logging.getLogger("sayna_client")


async def close_source(pieces: object) -> None:
    """Close a text source left before its end (an async generator's ``aclose``); its
    own cleanup failing is logged, not raised (it is not the speech's failure)."""
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        try:
            await asyncio.shield(aclose())
        except Exception as exc:
            logger.debug("closing the text source failed: %s", exc)


def as_failure(exc: BaseException) -> BaseException:
    """What ``await handle`` raises for ``exc`` from a text source: ``exc`` itself, but
    for a ``CancelledError``, which would make the awaiting task look cancelled, a
    :class:`~sayna_client.SaynaError` caused by it."""
    if not isinstance(exc, asyncio.CancelledError):
        return exc
    error = SaynaError(
        "the speak_stream text source raised CancelledError (it awaited something "
        "cancelled elsewhere, such as an LLM request): the speech ended there"
    )
    error.__cause__ = exc
    return error
