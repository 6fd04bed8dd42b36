"""G.711 mu-law <-> 16-bit PCM, table driven. Re-exported by :mod:`sayna_client.audio`;
the local server's engines use the same implementation."""

from __future__ import annotations

from ._g711 import Law

__all__ = ["linear16_to_mulaw", "mulaw_to_linear16"]

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


_LAW = Law(_mulaw_encode_sample, _mulaw_decode_byte)


def linear16_to_mulaw(pcm: bytes) -> bytes:
    """Convert 16-bit little-endian PCM to G.711 mu-law (one byte per sample).

    Args:
        pcm: Little-endian 16-bit samples; a trailing odd byte is ignored.

    Returns:
        ``len(pcm) // 2`` mu-law bytes.
    """
    return _LAW.encode(pcm)


def mulaw_to_linear16(data: bytes) -> bytes:
    """Convert G.711 mu-law bytes to 16-bit little-endian PCM.

    Args:
        data: Mu-law bytes, one per sample.

    Returns:
        ``2 * len(data)`` bytes of PCM.
    """
    return _LAW.decode(data)
