"""The one table of audio encoding names: what each is, what else it is called, and
who accepts it.

``STTConfig.encoding`` names the format of the audio a client sends; the server hands
it to the STT provider as it is. Three parties read that name and must agree:

* the SDK's audio helpers (``sayna_client.audio``: frame and duration arithmetic,
  ``wav_frames``; ``finish_audio()``'s silence; the agents' playback clock), which
  need the bytes per sample, and the framework adapters, which need ``linear16``;
* the local server's engines, which decode ``linear16`` and ``mulaw`` themselves;
* the real server's providers: Deepgram refuses the socket for a name outside its list
  (and the local server mirrors that refusal).

Names are compared after ``strip().lower()``; an alias (``pcm``, ``ulaw``...) means
its canonical encoding everywhere the SDK and the local server read it. Deepgram takes
canonical names only, exactly as written.

Pure data: no aiohttp, no asyncio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = [
    "DEEPGRAM_ENCODINGS",
    "ENCODINGS",
    "LOCAL_ENGINE_ENCODINGS",
    "Encoding",
    "bytes_per_sample",
    "canonical",
    "lookup",
]


@dataclass(frozen=True)
class Encoding:
    """One audio encoding.

    Attributes:
        name: the canonical name (what Deepgram and the server's docs call it).
        bytes_per_sample: bytes of one sample of one channel; ``None`` for a
            compressed format (no fixed size: no frame or duration arithmetic).
        silence: the byte a silent sample is made of (``None`` when compressed or
            wider than one repeated byte would express).
        aliases: other names that mean it (compared lower-case).
        deepgram: Deepgram's streaming API accepts ``name``.
        local_engines: the local server's engines decode and produce it (others
            are read as ``linear16``, with a warning).
        sdk_encodes: ``sayna_client.audio`` makes it from 16-bit PCM
            (``wav_frames``).
    """

    name: str
    bytes_per_sample: Optional[int]
    silence: Optional[int] = None
    aliases: frozenset[str] = frozenset()
    deepgram: bool = True
    local_engines: bool = False
    sdk_encodes: bool = False


#: Every encoding the SDK or a server knows, canonical name first.
ENCODINGS: tuple[Encoding, ...] = (
    Encoding(
        "linear16",
        2,
        silence=0x00,
        aliases=frozenset({"pcm", "pcm16", "pcm_s16le", "s16le"}),
        local_engines=True,
        sdk_encodes=True,
    ),
    Encoding(
        "mulaw",
        1,
        silence=0xFF,
        aliases=frozenset({"ulaw", "mu-law", "pcm_mulaw", "pcmu", "g711_ulaw"}),
        local_engines=True,
        sdk_encodes=True,
    ),
    Encoding(
        "alaw",
        1,
        silence=0xD5,
        aliases=frozenset({"pcm_alaw", "pcma", "g711_alaw"}),
        local_engines=True,
    ),
    Encoding("linear32", 4, silence=0x00),
    Encoding("flac", None),
    Encoding("amr-nb", None),
    Encoding("amr-wb", None),
    Encoding("opus", None),
    Encoding("ogg-opus", None),
    Encoding("speex", None),
    Encoding("g729", None),
)

_BY_NAME: dict[str, Encoding] = {}
for _encoding in ENCODINGS:
    for _name in (_encoding.name, *_encoding.aliases):
        if _name in _BY_NAME:  # pragma: no cover - a table edit that breaks the rule
            raise RuntimeError(f"encoding name {_name!r} is listed twice")
        _BY_NAME[_name] = _encoding
del _encoding, _name

#: Canonical names Deepgram's streaming API accepts (exactly as written).
DEEPGRAM_ENCODINGS: tuple[str, ...] = tuple(e.name for e in ENCODINGS if e.deepgram)
#: Canonical names the local server's engines decode and produce.
LOCAL_ENGINE_ENCODINGS: frozenset[str] = frozenset(e.name for e in ENCODINGS if e.local_engines)


def lookup(name: str) -> Optional[Encoding]:
    """The encoding ``name`` (or an alias of it) means, any case and surrounding
    blanks; ``None`` for a name in no table."""
    return _BY_NAME.get(name.strip().lower())


def canonical(name: str) -> Optional[str]:
    """The canonical name for ``name`` (``"ulaw"`` -> ``"mulaw"``), or ``None``."""
    found = _BY_NAME.get(name.strip().lower())
    return None if found is None else found.name


def bytes_per_sample(name: str) -> Optional[int]:
    """Bytes per sample per channel of ``name``; ``None`` when unknown or compressed."""
    found = _BY_NAME.get(name.strip().lower())
    return None if found is None else found.bytes_per_sample
