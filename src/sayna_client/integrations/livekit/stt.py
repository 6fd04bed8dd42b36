"""Speech-to-text for LiveKit Agents through Sayna: ``STT`` and its ``SpeechStream``
(one Sayna session a stream)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Optional

import numpy as np
from livekit import rtc
from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    APIConnectionError,
    APIConnectOptions,
    APITimeoutError,
    LanguageCode,
    stt,
    utils,
)
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import AudioBuffer

from ...client import SaynaClient
from ...errors import SaynaError
from ...protocol.events import STTResultMessage
from ...realtime.conversation import Turn
from ...types import STTConfig, TTSConfig
from .._shared import pcm_stt
from ._common import Options, api_error, end

__all__ = ["STT", "SpeechStream"]

logger = logging.getLogger("sayna_client.integrations.livekit")

_FRAME_MS = 20


#: Sayna's ``error`` texts after which the session transcribes nothing more.
def _connect_within(options: APIConnectOptions, started: float) -> float:
    """Seconds left to connect an attempt that began at ``started`` (``time.time()``).

    LiveKit starts the retry budget over after an attempt that lasted longer than
    ``options.timeout`` (it had connected, so a failure after it is not consecutive): a
    connect that times out exactly at ``timeout``, plus the attempt's own set-up and
    clean-up, always lasted longer, and a server that never got ready was retried for
    ever. The connect ends a little before (a tenth of the timeout, at most 0.5 s)."""
    margin = min(0.5, 0.1 * options.timeout)
    return max(0.0, options.timeout - margin - (time.time() - started))


_RECOGNITION_FAILED = ("STT streaming error", "Failed to process audio")


def _mono(frame: rtc.AudioFrame) -> rtc.AudioFrame:
    """``frame`` with its channels averaged into one (LiveKit's frames are interleaved
    16-bit samples); a mono frame as it is. A Sayna session hears mono: interleaved
    channels sent as mono would be heard at a fraction of their speed."""
    channels = frame.num_channels
    if channels == 1:
        return frame
    samples = np.frombuffer(frame.data, dtype=np.int16).reshape(-1, channels)
    mono = (samples.sum(axis=1, dtype=np.int32) // channels).astype(np.int16)
    return rtc.AudioFrame(mono.tobytes(), frame.sample_rate, 1, frame.samples_per_channel)


class STT(stt.STT[Any]):
    """Streaming speech-to-text through Sayna.

    Args:
        url: the Sayna server (``http(s)://`` or ``ws(s)://``).
        stt_config: the speech-to-text settings (``linear16``, mono).
        tts_config: the session's text-to-speech settings (a Sayna audio session needs
            both; this plugin never speaks).
        api_key: Sayna API key; defaults to ``SAYNA_API_KEY``.
        **client_options: more ``SaynaClient`` keyword arguments (``timeouts``,
            ``heartbeat``, ``ssl``...).

    Raises:
        SaynaValidationError: a config is missing or not 16-bit mono PCM, or a client
            option is invalid.
    """

    def __init__(
        self,
        *,
        url: str,
        stt_config: STTConfig,
        tts_config: TTSConfig,
        api_key: Optional[str] = None,
        **client_options: Any,
    ) -> None:
        super().__init__(
            capabilities=stt.STTCapabilities(
                streaming=True, interim_results=True, offline_recognize=True
            )
        )
        self._opts = Options(url, stt_config, tts_config, api_key, client_options)

    @property
    def model(self) -> str:
        """The Sayna STT model (``stt_config.model``)."""
        return self._opts.stt_config.model or "unknown"

    @property
    def provider(self) -> str:
        """``sayna/<provider>``."""
        return f"sayna/{self._opts.stt_config.provider}"

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> SpeechStream:
        """A streaming recognition on a new Sayna session.

        Args:
            language: a language for this stream (default: ``stt_config.language``).
            conn_options: LiveKit's retry and timeout options.
        """
        return SpeechStream(stt=self, conn_options=conn_options, language=language)

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        """Transcribe a finished buffer: stream it, then end it as the streams do
        (``client.finish_audio``: trailing silence, as a microphone sends after the
        speaker stopped, until Sayna has ended the turn it heard, however long its
        recognizer takes), then ``client.drain`` for the last results. The connect, then
        the rest, each get ``conn_options.timeout`` seconds (else ``APITimeoutError``).
        A buffer with no speech gives an empty ``FINAL_TRANSCRIPT``; the turns of one
        with several are joined. Audio of several channels is mixed down to mono."""
        frame = _mono(rtc.combine_audio_frames(buffer))
        lang = language if isinstance(language, str) else self._opts.stt_config.language
        config = self._opts.stt_config.model_copy(update={"language": lang})
        client = self._opts.client(frame.sample_rate)
        client.stt_config = pcm_stt(config, frame.sample_rate, "sayna.STT")
        turns: list[Turn] = []
        client.on("turn", turns.append)  # (drain() returns once the callbacks caught up)
        loop = asyncio.get_running_loop()
        try:
            try:
                await asyncio.wait_for(client.connect(), conn_options.timeout)
            except asyncio.TimeoutError:
                raise APITimeoutError("Sayna: no session within the timeout") from None
            deadline = loop.time() + conn_options.timeout

            def remaining() -> float:
                # (a deadline used up is the timeout; finish_audio/drain refuse 0 s)
                left = deadline - loop.time()
                if left <= 0:
                    raise APITimeoutError(
                        f"Sayna: the buffer was not transcribed within {conn_options.timeout} s"
                    )
                return left

            step = frame.sample_rate * 2 * _FRAME_MS // 1000
            pcm = frame.data.tobytes()
            for start in range(0, len(pcm), step):
                await client.on_audio_input(pcm[start : start + step])
                remaining()
            await client.finish_audio(timeout=remaining())
            await client.drain(timeout=remaining())
        except SaynaError as exc:
            raise api_error(exc) from exc
        finally:
            await end(client)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[
                stt.SpeechData(
                    language=LanguageCode(lang),
                    text=" ".join(turn.text for turn in turns if turn.text),
                    confidence=min((turn.confidence for turn in turns), default=0.0),
                )
            ],
        )


class SpeechStream(stt.RecognizeStream):
    """One Sayna session fed with the pushed frames; ``stt_result`` events become
    ``START_OF_SPEECH`` (first words of a turn), ``INTERIM_TRANSCRIPT``,
    ``FINAL_TRANSCRIPT`` and ``END_OF_SPEECH`` (Sayna's speech-final), plus a
    ``RECOGNITION_USAGE`` per turn. A session that ends unexpectedly, or whose recognizer
    failed (Sayna's ``STT streaming error`` / ``Failed to process audio`` while input is
    sent), raises a retryable ``APIConnectionError`` (LiveKit then opens a new one)."""

    def __init__(
        self,
        *,
        stt: STT,
        conn_options: APIConnectOptions,
        language: NotGivenOr[str] = NOT_GIVEN,
    ) -> None:
        opts = stt._opts
        super().__init__(
            stt=stt, conn_options=conn_options, sample_rate=opts.stt_config.sample_rate
        )
        self._opts = opts
        self._language = language if isinstance(language, str) else opts.stt_config.language
        self._speaking = False
        self._sent_bytes = 0
        self._request_id = ""

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        """Push audio to be recognized: frames of several channels are mixed down to
        mono first (before LiveKit's resampler, which takes them as mono)."""
        super().push_frame(_mono(frame))

    async def _run(self) -> None:
        started = time.time()
        # A retry after a session lost mid-turn: that turn is over (its results are lost
        # with the session; its usage counts the audio sent), and the next one starts
        # with its own START_OF_SPEECH.
        if self._speaking:
            self._end_turn()
        opts = self._opts
        client = opts.client(opts.stt_config.sample_rate)
        client.stt_config = pcm_stt(
            opts.stt_config.model_copy(update={"language": self._language}),
            opts.stt_config.sample_rate,
            "sayna.STT",
        )
        events = client.events()
        try:
            try:
                await asyncio.wait_for(
                    client.connect(), _connect_within(self._conn_options, started)
                )
            except asyncio.TimeoutError:
                raise APITimeoutError("Sayna: no session within the timeout") from None
            self._request_id = client.received_stream_id or utils.shortuuid()
            receiving = asyncio.ensure_future(self._receive(events))
            sending = asyncio.ensure_future(self._send(client))
            try:
                done, _ = await asyncio.wait(
                    {receiving, sending}, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    task.result()
                if not receiving.done():
                    await self._finish(client)
            finally:
                await utils.aio.gracefully_cancel(receiving, sending)
        except SaynaError as exc:
            raise api_error(exc) from exc
        finally:
            await end(client)

    async def _finish(self, client: SaynaClient) -> None:
        """The input ended: end the utterance in progress (trailing silence, as a
        microphone sends after the speaker stopped), let its results arrive, then close.

        Raises:
            APIError: not retryable (the input is consumed: a new session would hear
                nothing), when the last results did not come within
                ``conn_options.timeout`` (one deadline for both waits) or the session
                failed meanwhile.
        """
        timeout = self._conn_options.timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout  # (one for both waits, as recognize() has)
        try:
            await client.finish_audio(timeout=timeout)
            left = deadline - loop.time()
            if left <= 0:
                raise APITimeoutError(
                    f"Sayna: the last results did not come within {timeout} s", retryable=False
                )
            await client.drain(timeout=left)
        except SaynaError as exc:
            error = api_error(exc)
            error.retryable = False
            raise error from exc

    async def _send(self, client: SaynaClient) -> None:
        async for data in self._input_ch:
            if isinstance(data, rtc.AudioFrame):
                pcm = data.data  # 16-bit samples: sent without a copy
                if pcm.nbytes:
                    await client.on_audio_input(pcm)
                    self._sent_bytes += pcm.nbytes
            # A flush needs nothing: Sayna finalizes on its own.

    async def _receive(self, events: Any) -> None:
        async for event in events:
            kind = event.type
            if kind == "stt_result":
                self._on_result(event)
            elif kind == "error":
                if event.message.startswith(_RECOGNITION_FAILED):
                    # Sayna's recognizer stopped: a new session gets a new one.
                    raise APIConnectionError(f"Sayna: {event.message}")
                logger.warning("Sayna STT: %s", event.message)
            elif kind == "closed":
                if event.initiated_by_client:
                    return
                raise APIConnectionError(f"Sayna session closed: {event.message}")
        raise APIConnectionError("Sayna session ended")

    def _on_result(self, result: STTResultMessage) -> None:
        send = self._event_ch.send_nowait
        text = result.transcript
        if text:
            if not self._speaking:
                self._speaking = True
                send(stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH))
            kind = (
                stt.SpeechEventType.FINAL_TRANSCRIPT
                if result.is_final or result.is_speech_final
                else stt.SpeechEventType.INTERIM_TRANSCRIPT
            )
            data = stt.SpeechData(
                language=LanguageCode(self._language), text=text, confidence=result.confidence
            )
            send(stt.SpeechEvent(type=kind, request_id=self._request_id, alternatives=[data]))
        if result.is_speech_final and self._speaking:
            self._end_turn()

    def _end_turn(self) -> None:
        """``END_OF_SPEECH``, then the ``RECOGNITION_USAGE`` of the audio sent since the
        last one."""
        send = self._event_ch.send_nowait
        self._speaking = False
        send(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH))
        seconds = self._sent_bytes / (2 * self._opts.stt_config.sample_rate)
        self._sent_bytes = 0
        send(
            stt.SpeechEvent(
                type=stt.SpeechEventType.RECOGNITION_USAGE,
                request_id=self._request_id,
                recognition_usage=stt.RecognitionUsage(audio_duration=seconds),
            )
        )
