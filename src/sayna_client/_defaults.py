"""The "use the client's setting" sentinel of per-call options.

A per-call option such as ``timeout=`` needs three meanings: a number (this call's
value), ``None`` ("no limit") and "whatever the client was configured with". The
third is :data:`CLIENT_DEFAULT`, as httpx's ``USE_CLIENT_DEFAULT``: ``None`` keeps
meaning "no limit" everywhere.
"""

from __future__ import annotations

from typing import TypeVar, Union

__all__ = ["CLIENT_DEFAULT", "ClientDefault", "Seconds", "resolve"]

T = TypeVar("T")


class ClientDefault:
    """The type of :data:`CLIENT_DEFAULT` (one instance)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CLIENT_DEFAULT"

    def __reduce__(self) -> str:
        return "CLIENT_DEFAULT"  # pickled and copied as the one instance


#: "Use the client's setting" in a per-call option, so that ``None`` can mean "no limit".
CLIENT_DEFAULT = ClientDefault()

#: A per-call deadline: seconds, ``None`` (no limit) or :data:`CLIENT_DEFAULT`.
Seconds = Union[float, ClientDefault, None]


def resolve(value: Union[T, ClientDefault], default: T) -> T:
    """``value``, or ``default`` when it is :data:`CLIENT_DEFAULT`."""
    return default if isinstance(value, ClientDefault) else value
