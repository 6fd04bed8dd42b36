"""G.711 mu-law <-> 16-bit PCM, table driven. Re-exported by :mod:`sayna_client.audio`;
the local server's engines use the same implementation."""

from __future__ import annotations

import functools
import struct
import sys
from array import array
from typing import Tuple

__all__ = ["linear16_to_mulaw", "mulaw_to_linear16"]

_BIG_ENDIAN = sys.byteorder == "big"

_MULAW_BIAS = 0x84
_MULAW_CLIP = 32635


def _mulaw_encode_sample(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    if sample < 0:
        sample = -sample
    sample = min(sample, _MULAW_CLIP) + _MULAW_BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not (sample & mask):
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _mulaw_decode_byte(byte: int) -> int:
    byte = ~byte & 0xFF
    sign = byte & 0x80
    exponent = (byte >> 4) & 0x07
    mantissa = byte & 0x0F
    sample = ((mantissa << 3) + _MULAW_BIAS) << exponent
    sample -= _MULAW_BIAS
    return -sample if sign else sample


# Lookup tables: 64 K entries for encode (indexed by the unsigned 16-bit value) and 256
# for decode, so conversion is a table lookup per sample. Built on first use: the
# encode table takes tens of milliseconds, which importing the SDK should not pay.
@functools.cache
def _encode_table() -> bytes:
    return bytes(_mulaw_encode_sample(v - 65536 if v >= 32768 else v) for v in range(65536))


@functools.cache
def _decode_table() -> Tuple[int, ...]:
    return tuple(_mulaw_decode_byte(b) for b in range(256))


def linear16_to_mulaw(pcm: bytes) -> bytes:
    """Convert 16-bit little-endian PCM to G.711 mu-law (one byte per sample).

    Args:
        pcm: Little-endian 16-bit samples; a trailing odd byte is ignored.

    Returns:
        ``len(pcm) // 2`` mu-law bytes.
    """
    samples = array("H")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if _BIG_ENDIAN:
        samples.byteswap()
    return bytes(map(_encode_table().__getitem__, samples))


def mulaw_to_linear16(data: bytes) -> bytes:
    """Convert G.711 mu-law bytes to 16-bit little-endian PCM.

    Args:
        data: Mu-law bytes, one per sample.

    Returns:
        ``2 * len(data)`` bytes of PCM.
    """
    return struct.pack(f"<{len(data)}h", *map(_decode_table().__getitem__, bytes(data)))
