"""Text-to-speech for LiveKit Agents through Sayna: ``TTS``, its ``ChunkedStream`` (one
text) and ``SynthesizeStream`` (streamed text), on pooled Sayna sessions."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APIStatusError,
    APITimeoutError,
    tokenize,
    tts,
    utils,
)
from livekit.agents.types import NOT_GIVEN, NotGivenOr

from ...client import SaynaClient
from ...errors import SaynaError
from ...types import STTConfig, TTSConfig
from .._shared import REFUSED, SpeakQueue
from ._common import Options, api_error, end

__all__ = ["TTS", "ChunkedStream", "SynthesizeStream"]

logger = logging.getLogger("sayna_client.integrations.livekit")


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
        opts = Options(url, stt_config, tts_config, api_key, client_options)
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
        self._pool = utils.ConnectionPool[SaynaClient](connect_cb=self._connect, close_cb=end)
        self._closed = False

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
        """A new session for the pool; none once :meth:`aclose` was called (also when
        it was called while this one connected): a stream then ends quietly."""
        if self._closed:
            raise _closed_by_us()
        client = self._opts.client(self._opts.stt_config.sample_rate)
        try:
            await asyncio.wait_for(client.connect(), timeout)
        except asyncio.TimeoutError:
            await end(client)
            raise APITimeoutError("Sayna: no session within the timeout") from None
        except SaynaError as exc:
            await end(client)
            raise api_error(exc) from exc
        except BaseException:
            await asyncio.shield(end(client))
            raise
        if self._closed:
            await end(client)
            raise _closed_by_us()
        return client

    def prewarm(self) -> None:
        """Open a session ahead of the first reply."""
        self._pool.prewarm()

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> ChunkedStream:
        """Synthesize one text (after :meth:`aclose` too: on a new session)."""
        self._closed = False  # used again: sessions may be opened again
        return ChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> SynthesizeStream:
        """Synthesize text pushed piece by piece (one reply per stream; after
        :meth:`aclose` too: on a new session)."""
        self._closed = False  # used again: sessions may be opened again
        return SynthesizeStream(tts=self, conn_options=conn_options)

    async def aclose(self) -> None:
        """Close every pooled session, also those streams are speaking on (the streams
        end without an error); none is opened for them afterwards. A ``synthesize()`` or
        ``stream()`` called later opens sessions again (it used to produce no audio)."""
        self._closed = True
        await self._pool.aclose()

    async def _speak(
        self,
        sentences: Any,
        emitter: tts.AudioEmitter,
        conn_options: APIConnectOptions,
        on_speak: Any = None,
    ) -> None:
        """Speak ``sentences`` on a pooled session into ``emitter``, which this
        initializes: as one segment for a stream (``on_speak`` given: a
        ``SynthesizeStream``'s start mark), else as one chunked answer. Sayna's errors
        are raised as LiveKit's. A session whose speech did not end normally (an
        interruption, a failure) is closed at once, never reused."""
        streamed = on_speak is not None
        request_id = utils.shortuuid()
        emitter.initialize(
            request_id=request_id,
            sample_rate=self.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            stream=streamed,
        )
        try:
            client = await self._session(conn_options.timeout)
            segment = request_id if streamed else None
            try:
                await _speak_all(
                    client, sentences, emitter, segment, on_speak, conn_options.timeout
                )
            except BaseException:
                # Interrupted or failed: the pool drops this session but would close it
                # only at its next use; close it now (also when cancelled).
                self._pool.remove(client)
                await asyncio.shield(end(client))
                raise
            self._pool.put(client)
        except SaynaError as exc:
            raise api_error(exc) from exc

    async def _session(self, timeout: float) -> SaynaClient:
        """A ready session from the pool: a pooled one that ended while it was idle (the
        network or the server dropped it) is discarded (the pool closes it) and the
        next one, or a new one, is used, so a reply never starts on a dead session (it
        used to fail with "The Sayna session has ended", costing a retry)."""
        while True:
            client = await self._pool.get(timeout=timeout)
            if client.ready or not self._pool.last_connection_reused:
                return client
            logger.debug("Sayna TTS: a pooled session had ended; another one is used")
            self._pool.remove(client)


def _closed_by_us() -> APIStatusError:
    """The error that ends a stream whose session :meth:`TTS.aclose` closed: LiveKit
    ends a stream quietly, without retrying, on a 499 (client closed request)."""
    return APIStatusError("Sayna: the TTS was closed", status_code=499, retryable=False)


async def _speak_all(
    client: SaynaClient,
    sentences: Any,
    emitter: tts.AudioEmitter,
    request_id: Optional[str],
    on_speak: Any = None,
    timeout: float = 0.0,
) -> None:
    """Speak each sentence of ``sentences`` (async iterable of str) one at a time on
    ``client`` and push the audio to ``emitter`` until the last one completed, as one
    segment named ``request_id`` (streams) or none (``None``: chunked). A cancelled or
    failed synthesis sends ``clear`` (best effort) before it ends.

    Raises:
        APITimeoutError: a sentence sent got neither audio nor its completion for
            ``timeout`` seconds (LiveKit's ``conn_options.timeout``; 0: no limit), as
            LiveKit's own TTS bounds each receive: retryable.
    """
    events: Any = client.events()  # dispatched on .type below
    stalled: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_stall(serial: int) -> None:
        if not stalled.done():
            stalled.set_exception(
                APITimeoutError(f"Sayna: no audio and no completion for {timeout} s")
            )

    speaks = SpeakQueue(client, timeout=timeout if timeout > 0 else None, on_stall=on_stall)
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
            for unsent in await speaks.add(text):
                raise unsent.error
        state["input_done"] = True
        if speaks.idle:
            finished.set()

    async def receive() -> None:
        async for event in events:
            kind = event.type
            if kind == "tts_audio":
                speaks.progress()
                emitter.push(event.data)
            elif kind == "tts_playback_complete":
                for unsent in await speaks.completed():
                    raise unsent.error
                if speaks.idle and state["input_done"]:
                    finished.set()
            elif kind == "error":
                _on_error(event.message)
            elif kind == "closed":
                if event.initiated_by_client:  # TTS.aclose(): not a failure to retry
                    raise _closed_by_us()
                raise APIConnectionError(f"Sayna session closed: {event.message}")

    sending = asyncio.ensure_future(send())
    receiving = asyncio.ensure_future(receive())
    waiting = asyncio.ensure_future(finished.wait())
    completed = False
    try:
        first: set[asyncio.Future[Any]] = {sending, receiving, waiting, stalled}
        done, _ = await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
        while not waiting.done():  # the sender ended: wait for the last completion
            rest: set[asyncio.Future[Any]] = {receiving, waiting, stalled}
            done, _ = await asyncio.wait(rest, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        completed = True
        if state["segment"]:
            emitter.end_segment()
    finally:
        stalled.cancel()
        await utils.aio.gracefully_cancel(sending, receiving, waiting)
        if not completed and not speaks.idle:
            try:
                await client.clear()
            except SaynaError as exc:
                logger.debug("Sayna TTS: clear after an interrupted reply failed: %s", exc)
        speaks.reset()  # (its timer)


#: Sayna's ``error`` texts about speech-to-text (a TTS session sends no audio, but its
#: recognizer may still fail): nothing to do with the reply.
_STT_ERRORS = ("STT streaming error", "Failed to process audio", "Failed to process LiveKit audio")


def _on_error(message: str) -> None:
    """What a server ``error`` does to the reply being spoken.

    A ``speak`` refused (``Failed to synthesize speech``: no audio, no completion)
    raises a retryable ``APIError``: LiveKit tries again on a new session if no audio
    was pushed yet. A provider failing during a sentence (``TTS error: ...``) is logged:
    its completion follows, which ends the sentence, and the next ones are spoken.
    Speech-to-text errors are ignored. Any other error raises a non-retryable one.
    """
    if message.startswith(REFUSED):
        raise APIError(f"Sayna: {message}", retryable=True)
    if message.startswith("TTS error:"):
        logger.warning("Sayna TTS: a sentence failed mid-way (its audio is cut): %s", message)
    elif message.startswith(_STT_ERRORS):
        logger.debug("Sayna TTS: speech-to-text error on a TTS session ignored: %s", message)
    else:
        raise APIError(f"Sayna: {message}", retryable=False)


class ChunkedStream(tts.ChunkedStream):
    """One text synthesized on a pooled Sayna session."""

    def __init__(self, *, tts: TTS, input_text: str, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._tts: TTS = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        async def one_text() -> Any:
            yield self._input_text

        await self._tts._speak(one_text(), output_emitter, self._conn_options)
        output_emitter.flush()


class SynthesizeStream(tts.SynthesizeStream):
    """Streamed text, cut into sentences, spoken on a pooled Sayna session."""

    def __init__(self, *, tts: TTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._tts: TTS = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
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
            await self._tts._speak(
                sentences(), output_emitter, self._conn_options, on_speak=self._mark_started
            )
        finally:
            await utils.aio.gracefully_cancel(feeding)
            await sentence_stream.aclose()
