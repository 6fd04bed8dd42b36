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
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

from ..client import SaynaClient
from ..errors import (
    SaynaConfigRejectedError,
    SaynaError,
    SaynaTimeoutError,
    SaynaValidationError,
)
from ..protocol.events import STTResultMessage
from ..types import STTConfig, TTSConfig
from ._shared import SpeakQueue, missing_extra, pcm_stt, pcm_tts

try:
    from livekit import rtc
    from livekit.agents import (
        DEFAULT_API_CONNECT_OPTIONS,
        APIConnectionError,
        APIConnectOptions,
        APIError,
        APIStatusError,
        APITimeoutError,
        LanguageCode,
        stt,
        tokenize,
        tts,
        utils,
    )
    from livekit.agents.types import NOT_GIVEN, NotGivenOr
    from livekit.agents.utils import AudioBuffer
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("livekit") from exc

__all__ = ["STT", "TTS", "ChunkedStream", "SpeechStream", "SynthesizeStream"]

logger = logging.getLogger("sayna_client.integrations.livekit")

#: Silence sent after a buffer given to ``STT.recognize`` so Sayna ends the turn.
_RECOGNIZE_TAIL_S = 1.5
_FRAME_MS = 20


def _api_error(exc: SaynaError) -> APIError:
    """The LiveKit error for a Sayna one: retryable unless retrying cannot help."""
    if isinstance(exc, SaynaTimeoutError):
        return APITimeoutError(f"Sayna: {exc}")
    if isinstance(exc, (SaynaConfigRejectedError, SaynaValidationError)):
        return APIStatusError(f"Sayna: {exc}", status_code=400, body=None, retryable=False)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500:
        return APIStatusError(f"Sayna: {exc}", status_code=status, body=None, retryable=False)
    return APIConnectionError(f"Sayna: {exc}")


class _Options:
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


async def _end(client: SaynaClient) -> None:
    """Close a session now (``abort()`` where the client has it: nothing is waited for)."""
    abort = getattr(client, "abort", None)
    if abort is not None:
        await abort()
    else:
        await client.disconnect()


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
        self._opts = _Options(url, stt_config, tts_config, api_key, client_options)

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
        """Transcribe a finished buffer: stream it, then silence until Sayna ends the turn."""
        frame = rtc.combine_audio_frames(buffer)
        if frame.num_channels != 1:
            raise APIStatusError(
                "sayna.STT.recognize needs mono audio", status_code=400, retryable=False
            )
        lang = language if isinstance(language, str) else self._opts.stt_config.language
        config = self._opts.stt_config.model_copy(update={"language": lang})
        client = self._opts.client(frame.sample_rate)
        client.stt_config = pcm_stt(config, frame.sample_rate, "sayna.STT")
        turns = client.turns()
        try:
            await asyncio.wait_for(client.connect(), conn_options.timeout)
            step = frame.sample_rate * 2 * _FRAME_MS // 1000
            pcm = frame.data.tobytes() + bytes(int(frame.sample_rate * _RECOGNIZE_TAIL_S) * 2)
            for start in range(0, len(pcm), step):
                await client.on_audio_input(pcm[start : start + step])
            silence = bytes(step)
            turn_task = asyncio.ensure_future(turns.__anext__())
            while not turn_task.done():  # keep the recognizer hearing silence, as a mic does
                await asyncio.wait({turn_task}, timeout=_FRAME_MS / 1000)
                if not turn_task.done():
                    await client.on_audio_input(silence)
            turn = turn_task.result()
        except StopAsyncIteration:
            raise APIConnectionError("Sayna session ended before the turn") from None
        except asyncio.TimeoutError:
            raise APITimeoutError("Sayna: no session within the timeout") from None
        except SaynaError as exc:
            raise _api_error(exc) from exc
        finally:
            await _end(client)
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[
                stt.SpeechData(
                    language=LanguageCode(lang), text=turn.text, confidence=turn.confidence
                )
            ],
        )


class SpeechStream(stt.RecognizeStream):
    """One Sayna session fed with the pushed frames; ``stt_result`` events become
    ``START_OF_SPEECH`` (first words of a turn), ``INTERIM_TRANSCRIPT``,
    ``FINAL_TRANSCRIPT`` and ``END_OF_SPEECH`` (Sayna's speech-final), plus a
    ``RECOGNITION_USAGE`` per turn. A session that ends unexpectedly raises a retryable
    ``APIConnectionError`` (LiveKit then opens a new one)."""

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

    async def _run(self) -> None:
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
                await asyncio.wait_for(client.connect(), self._conn_options.timeout)
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
                    # Input ended: let the last turn's results arrive, then close.
                    await client.drain(timeout=self._conn_options.timeout)
            finally:
                await utils.aio.gracefully_cancel(receiving, sending)
        except SaynaError as exc:
            raise _api_error(exc) from exc
        finally:
            await _end(client)

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


class TTS(tts.TTS[Any]):
    """Text-to-speech through Sayna, streamed (``stream()``) or one text
    (``synthesize()``), as 16-bit mono PCM at ``tts_config.sample_rate``.

    Args:
        url: the Sayna server (``http(s)://`` or ``ws(s)://``).
        stt_config: the session's speech-to-text settings (a Sayna audio session needs
            both; this plugin sends no audio).
        tts_config: the text-to-speech settings (``audio_format="linear16"``).
        api_key: Sayna API key; defaults to ``SAYNA_API_KEY``.
        tokenizer: splits streamed text into sentences (default: LiveKit's blingfire
            sentence tokenizer); each sentence is one ``speak``.
        **client_options: more ``SaynaClient`` keyword arguments.

    Raises:
        SaynaValidationError: a config is missing, ``tts_config`` does not produce raw
            PCM, or a client option is invalid.
    """

    def __init__(
        self,
        *,
        url: str,
        stt_config: STTConfig,
        tts_config: TTSConfig,
        api_key: Optional[str] = None,
        tokenizer: NotGivenOr[tokenize.SentenceTokenizer] = NOT_GIVEN,
        **client_options: Any,
    ) -> None:
        opts = _Options(url, stt_config, tts_config, api_key, client_options)
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True),
            sample_rate=opts.tts_config.sample_rate,
            num_channels=1,
        )
        self._opts = opts
        self._tokenizer = (
            tokenizer
            if isinstance(tokenizer, tokenize.SentenceTokenizer)
            else tokenize.blingfire.SentenceTokenizer()
        )
        self._pool = utils.ConnectionPool[SaynaClient](connect_cb=self._connect, close_cb=_end)

    @property
    def model(self) -> str:
        """The Sayna TTS model or voice."""
        config = self._opts.tts_config
        return config.model or config.voice_id or "unknown"

    @property
    def provider(self) -> str:
        """``sayna/<provider>``."""
        return f"sayna/{self._opts.tts_config.provider}"

    async def _connect(self, timeout: float) -> SaynaClient:
        client = self._opts.client(self._opts.stt_config.sample_rate)
        try:
            await asyncio.wait_for(client.connect(), timeout)
        except asyncio.TimeoutError:
            await _end(client)
            raise APITimeoutError("Sayna: no session within the timeout") from None
        except SaynaError as exc:
            await _end(client)
            raise _api_error(exc) from exc
        return client

    def prewarm(self) -> None:
        """Open a session ahead of the first reply."""
        self._pool.prewarm()

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        """Synthesize one text."""
        return ChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> SynthesizeStream:
        """Synthesize text pushed piece by piece (one reply per stream)."""
        return SynthesizeStream(tts=self, conn_options=conn_options)

    async def aclose(self) -> None:
        """Close every pooled session."""
        await self._pool.aclose()


async def _speak_all(
    client: SaynaClient,
    sentences: Any,
    emitter: tts.AudioEmitter,
    request_id: Optional[str],
    on_speak: Any = None,
) -> None:
    """Speak each sentence of ``sentences`` (async iterable of str) one at a time on
    ``client`` and push the audio to ``emitter`` until the last one completed, as one
    segment named ``request_id`` (streams) or none (``None``: chunked). A cancelled or
    failed synthesis sends ``clear`` (best effort) before it ends."""
    events: Any = client.events()  # dispatched on .type below
    speaks = SpeakQueue(client)
    finished = asyncio.Event()
    state = {"input_done": False, "segment": False}

    async def send() -> None:
        async for text in sentences:
            if not text.strip():
                continue
            if on_speak is not None:
                on_speak()
            if request_id is not None and not state["segment"]:
                state["segment"] = True
                emitter.start_segment(segment_id=request_id)
            await speaks.add(text)
        state["input_done"] = True
        if speaks.idle:
            finished.set()

    async def receive() -> None:
        async for event in events:
            kind = event.type
            if kind == "tts_audio":
                emitter.push(event.data)
            elif kind == "tts_playback_complete":
                if await speaks.completed() and state["input_done"]:
                    finished.set()
            elif kind == "error":
                raise APIError(f"Sayna: {event.message}", retryable=False)
            elif kind == "closed":
                raise APIConnectionError(f"Sayna session closed: {event.message}")

    sending = asyncio.ensure_future(send())
    receiving = asyncio.ensure_future(receive())
    waiting = asyncio.ensure_future(finished.wait())
    completed = False
    try:
        done, _ = await asyncio.wait(
            {sending, receiving, waiting}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            task.result()
        while not waiting.done():  # the sender ended: wait for the last completion
            done, _ = await asyncio.wait({receiving, waiting}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        completed = True
        if state["segment"]:
            emitter.end_segment()
    finally:
        await utils.aio.gracefully_cancel(sending, receiving, waiting)
        if not completed and not speaks.idle:
            try:
                await client.clear()
            except SaynaError as exc:
                logger.debug("Sayna TTS: clear after an interrupted reply failed: %s", exc)


class ChunkedStream(tts.ChunkedStream):
    """One text synthesized on a pooled Sayna session."""

    def __init__(self, *, tts: TTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._tts: TTS = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        request_id = utils.shortuuid()
        output_emitter.initialize(
            request_id=request_id,
            sample_rate=self._tts.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )

        async def one_text() -> Any:
            yield self._input_text

        try:
            async with self._tts._pool.connection(timeout=self._conn_options.timeout) as client:
                await _speak_all(client, one_text(), output_emitter, None)
        except SaynaError as exc:
            raise _api_error(exc) from exc
        output_emitter.flush()


class SynthesizeStream(tts.SynthesizeStream):
    """Streamed text, cut into sentences, spoken on a pooled Sayna session."""

    def __init__(self, *, tts: TTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._tts: TTS = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        request_id = utils.shortuuid()
        output_emitter.initialize(
            request_id=request_id,
            sample_rate=self._tts.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            stream=True,
        )
        sentence_stream = self._tts._tokenizer.stream()

        async def feed() -> None:
            async for data in self._input_ch:
                if isinstance(data, self._FlushSentinel):
                    sentence_stream.flush()
                else:
                    sentence_stream.push_text(data)
            sentence_stream.end_input()

        async def sentences() -> Any:
            async for event in sentence_stream:
                yield event.token

        feeding = asyncio.ensure_future(feed())
        try:
            async with self._tts._pool.connection(timeout=self._conn_options.timeout) as client:
                await _speak_all(
                    client, sentences(), output_emitter, request_id, on_speak=self._mark_started
                )
        except SaynaError as exc:
            raise _api_error(exc) from exc
        finally:
            await utils.aio.gracefully_cancel(feeding)
            await sentence_stream.aclose()
