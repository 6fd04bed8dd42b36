"""G.711 A-law <-> 16-bit PCM, table driven (the ITU-T G.711 segment law, as in the
reference ``g711.c``). The local server's engines produce it for a TTS ``audio_format``
of ``alaw``; the mu-law counterpart is :mod:`sayna_client._mulaw`."""

from __future__ import annotations

from ._g711 import Law

__all__ = ["alaw_to_linear16", "linear16_to_alaw"]

#: Even bits are inverted on the wire (G.711 A-law), so silence is 0xD5.
_ALAW_XOR = 0x55
#: Upper bound of each of the 8 segments, for 13-bit magnitudes.
_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _alaw_encode_sample(sample: int) -> int:
    magnitude = sample >> 3  # A-law codes 13-bit samples
    if magnitude >= 0:
        sign = 0x80
    else:
        sign = 0x00
        magnitude = -magnitude - 1
    segment = 0
    while segment < 8 and magnitude > _SEGMENT_ENDS[segment]:
        segment += 1
    if segment == 8:  # beyond the last segment: the largest code
        code = 0x7F
    else:
        shift = 1 if segment < 2 else segment
        code = (segment << 4) | ((magnitude >> shift) & 0x0F)
    return (code | sign) ^ _ALAW_XOR


def _alaw_decode_byte(byte: int) -> int:
    byte ^= _ALAW_XOR
    segment = (byte >> 4) & 0x07
    magnitude = (byte & 0x0F) << 4
    if segment == 0:
        magnitude += 8
    else:
        magnitude = (magnitude + 0x108) << (segment - 1)
    return magnitude if byte & 0x80 else -magnitude


_LAW = Law(_alaw_encode_sample, _alaw_decode_byte)


def linear16_to_alaw(pcm: bytes) -> bytes:
    """Convert 16-bit little-endian PCM to G.711 A-law (one byte per sample).

    Args:
        pcm: Little-endian 16-bit samples; a trailing odd byte is ignored.

    Returns:
        ``len(pcm) // 2`` A-law bytes.
    """
    return _LAW.encode(pcm)


def alaw_to_linear16(data: bytes) -> bytes:
    """Convert G.711 A-law bytes to 16-bit little-endian PCM.

    Args:
        data: A-law bytes, one per sample.

    Returns:
        ``2 * len(data)`` bytes of PCM.
    """
    return _LAW.decode(data)
