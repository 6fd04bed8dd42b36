"""LiveKit Agents plugin backed by Sayna: ``STT`` (streaming) and ``TTS`` (streaming and
chunked), implementing ``livekit.agents.stt.STT`` and ``livekit.agents.tts.TTS``.

Install with ``pip install 'sayna-client[livekit]'`` (LiveKit Agents needs Python 3.10+)::

    from sayna_client.integrations import livekit as sayna

    stt = STTConfig(provider="deepgram", model="nova-2")
    tts = TTSConfig(provider="deepgram", voice_id="aura-asteria-en")
    session = AgentSession(
        stt=sayna.STT(url="https://api.sayna.ai", stt_config=stt, tts_config=tts),
        tts=sayna.TTS(url="https://api.sayna.ai", stt_config=stt, tts_config=tts),
        llm=..., vad=...,
    )

A Sayna audio session always carries both configs, so both classes take both; the STT
uses its session's speech-to-text and the TTS its text-to-speech. Each STT stream is
one Sayna session; TTS streams take sessions from a pool (reused after a reply ended
normally, closed after an interruption, so no audio of an interrupted reply can reach
the next one). Audio is 16-bit mono PCM at the configs' sample rates (LiveKit resamples
the input to ``stt_config.sample_rate``). Sayna's speech-final ends a user turn
(``END_OF_SPEECH``), so ``turn_detection="stt"`` works without a VAD.

The package: :mod:`.stt` (``STT``, ``SpeechStream``), :mod:`.tts` (``TTS`` and its
streams) and ``_common`` (the session options and the error mapping both use).
"""

from __future__ import annotations

from .._shared import missing_extra

try:
    import livekit.agents  # noqa: F401 - the framework this adapter needs
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("livekit") from exc

from .stt import STT, SpeechStream
from .tts import TTS, ChunkedStream, SynthesizeStream

__all__ = ["STT", "TTS", "ChunkedStream", "SpeechStream", "SynthesizeStream"]
