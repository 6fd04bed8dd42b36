"""What the LiveKit plugin's STT and TTS share: the options a Sayna session is opened
with, the LiveKit error for a Sayna one, and how a session is ended."""

from __future__ import annotations

from typing import Any, Optional

from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError

from ...client import SaynaClient
from ...errors import (
    SaynaConfigRejectedError,
    SaynaError,
    SaynaTimeoutError,
    SaynaValidationError,
)
from ...types import STTConfig, TTSConfig
from .._shared import pcm_stt, pcm_tts

__all__ = ["Options", "api_error", "end"]


def api_error(exc: SaynaError) -> APIError:
    """The LiveKit error for a Sayna one: retryable unless retrying cannot help."""
    if isinstance(exc, SaynaTimeoutError):
        return APITimeoutError(f"Sayna: {exc}")
    if isinstance(exc, (SaynaConfigRejectedError, SaynaValidationError)):
        return APIStatusError(f"Sayna: {exc}", status_code=400, body=None, retryable=False)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500:
        return APIStatusError(f"Sayna: {exc}", status_code=status, body=None, retryable=False)
    return APIConnectionError(f"Sayna: {exc}")


class Options:
    """What a Sayna session of this plugin is opened with."""

    def __init__(
        self,
        url: str,
        stt_config: STTConfig,
        tts_config: TTSConfig,
        api_key: Optional[str],
        client_options: dict[str, Any],
    ) -> None:
        if not isinstance(stt_config, STTConfig) or not isinstance(tts_config, TTSConfig):
            raise SaynaValidationError(
                "stt_config=STTConfig(...) and tts_config=TTSConfig(...) are both required: "
                "a Sayna audio session carries both"
            )
        self.stt_config = pcm_stt(stt_config, None, "sayna.STT")
        self.tts_config = pcm_tts(tts_config, None, "sayna.TTS")
        self.url = url
        self.api_key = api_key
        self.client_options = client_options
        # Fail now, not in the first stream, on a bad URL or option.
        self.client(self.stt_config.sample_rate)

    def client(self, stt_sample_rate: int) -> SaynaClient:
        return SaynaClient(
            self.url,
            pcm_stt(self.stt_config, stt_sample_rate, "sayna.STT"),
            self.tts_config,
            api_key=self.api_key,
            **self.client_options,
        )


async def end(client: SaynaClient) -> None:
    """Close a session now (``abort()`` where the client has it: nothing is waited for)."""
    abort = getattr(client, "abort", None)
    if abort is not None:
        await abort()
    else:
        await client.disconnect()
