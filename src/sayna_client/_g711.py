"""The table-driven conversion shared by the two G.711 laws (:mod:`._mulaw`,
:mod:`._alaw`): each law gives how one sample is coded and one byte decoded; this
builds the lookup tables on first use (the 64 K-entry encode table takes tens of
milliseconds, which importing the SDK should not pay) and converts whole buffers."""

from __future__ import annotations

import functools
import struct
import sys
from array import array
from typing import Callable, Tuple

__all__ = ["Law"]

_BIG_ENDIAN = sys.byteorder == "big"


class Law:
    """A G.711 law: ``encode_sample(int16) -> byte``, ``decode_byte(byte) -> int16``."""

    def __init__(
        self, encode_sample: Callable[[int], int], decode_byte: Callable[[int], int]
    ) -> None:
        self._encode_sample = encode_sample
        self._decode_byte = decode_byte

    @functools.cached_property
    def _encode_table(self) -> bytes:
        """The byte of each 16-bit value, indexed by its unsigned form."""
        code = self._encode_sample
        return bytes(code(v - 65536 if v >= 32768 else v) for v in range(65536))

    @functools.cached_property
    def _decode_table(self) -> Tuple[int, ...]:
        return tuple(map(self._decode_byte, range(256)))

    def encode(self, pcm: bytes) -> bytes:
        """16-bit little-endian PCM (a trailing odd byte ignored) -> one byte a sample."""
        samples = array("H")
        samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
        if _BIG_ENDIAN:
            samples.byteswap()
        return bytes(map(self._encode_table.__getitem__, samples))

    def decode(self, data: bytes) -> bytes:
        """One byte a sample -> ``2 * len(data)`` bytes of 16-bit little-endian PCM."""
        return struct.pack(f"<{len(data)}h", *map(self._decode_table.__getitem__, bytes(data)))
