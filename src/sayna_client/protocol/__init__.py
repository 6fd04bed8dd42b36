"""The Sayna wire protocol without I/O: commands → text, frames → typed events.

Imports neither aiohttp nor asyncio, so every rule here is tested with strings.
"""

from .commands import encode, encode_config, encode_speak
from .decode import KNOWN_EVENT_TYPES, decode_text

__all__ = ["KNOWN_EVENT_TYPES", "decode_text", "encode", "encode_config", "encode_speak"]
