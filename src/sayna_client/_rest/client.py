"""``RestClient``: every REST endpoint of the Sayna server, one area a module.

The endpoints of LiveKit (``livekit.py``) and SIP (``sip.py``) and those here (health,
voices, ``POST /speak``, recordings) all go through :meth:`RestBase._request`
(``base.py``). Arguments are checked before anything is sent (``SaynaValidationError``
names the argument and the fix). Read-only and repeatable calls are marked idempotent
so the retry policy may re-send them; calls with side effects (placing a SIP call, a
transfer, removing a participant) are sent once.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from pydantic import RootModel

from .._config import MAX_TEXT_CHARS, RetryPolicy
from .._defaults import CLIENT_DEFAULT, Seconds
from .._http import HttpResponse, path_segment
from .._http_errors import printable
from ..errors import SaynaInvalidResponseError, SaynaValidationError
from ..types import HealthResponse, SpeakRequest, TTSConfig, VoiceDescriptor
from .base import require_text
from .livekit import LiveKitEndpoints
from .sip import SipEndpoints

__all__ = ["ResponseHeaders", "RestClient"]


class ResponseHeaders(Dict[str, str]):
    """The headers of a ``speak_rest`` or ``get_recording`` answer: a ``dict`` of the
    names as the server sent them, whose look-ups (``headers["x-sample-rate"]``,
    ``.get()``, ``in``) ignore case, as HTTP header names do (hyper sends
    ``x-sample-rate``, a proxy may send ``X-Sample-Rate``). Everything else is the
    ``dict``'s: equality, iteration, ``json.dumps``, assignment (``pop`` and ``del`` take
    the name as it is stored)."""

    __slots__ = ()

    def __getitem__(self, name: str) -> str:
        try:
            return dict.__getitem__(self, name)
        except KeyError:
            found = self._folded(name)
            if found is None:
                raise
            return dict.__getitem__(self, found)

    def get(self, name: str, default: Any = None) -> Any:
        """The value of header ``name`` in any case, else ``default``."""
        if dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        found = self._folded(name)
        return default if found is None else dict.__getitem__(self, found)

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or self._folded(name) is not None

    def _folded(self, name: object) -> Optional[str]:
        """The stored name equal to ``name`` but for case (a handful of headers)."""
        if not isinstance(name, str):
            return None
        folded = name.lower()
        for key in self:
            if key.lower() == folded:
                return key
        return None


#: Media types of a 2xx body that is certainly not audio (a proxy's login page, an API
#: gateway's JSON): ``text/*``, JSON, XML and HTML. The server sends ``audio/*`` or
#: ``application/octet-stream`` (protocol sections 3.6 and 3.9); no type is accepted too.
_NOT_AUDIO_SUBTYPES = ("json", "xml", "html", "xhtml+xml", "javascript")


def _audio(response: HttpResponse) -> tuple[bytes, dict[str, str]]:
    """``(body, headers)`` of an answer that should be audio.

    Raises:
        SaynaInvalidResponseError: its ``Content-Type`` says it is text, JSON, XML or
            HTML (the start of the body quoted, secrets masked).
    """
    headers = ResponseHeaders(response.headers)
    content_type = headers.get("Content-Type")
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        kind, _, subtype = media.partition("/")
        if kind == "text" or subtype in _NOT_AUDIO_SUBTYPES or subtype.endswith(("+json", "+xml")):
            raise response.unreadable(f"its Content-Type is {media[:80]!r}, not audio")
    return response.body, headers


#: The highest ``x-sample-rate`` accepted from the server (audio hardware's highest rate).
MAX_SAMPLE_RATE = 768_000


def _check_sample_rate(response: HttpResponse, headers: Dict[str, str]) -> None:
    """Refuse an ``x-sample-rate`` that is not a whole number of Hz from 1 to
    :data:`MAX_SAMPLE_RATE` (the rate of PCM audio, which cannot be played without it).

    Raises:
        SaynaInvalidResponseError: naming the header and its value.
    """
    value = headers.get("x-sample-rate")
    if value is None:
        return
    text = value.strip()
    if text.isascii() and text.isdigit() and len(text) <= 7 and 0 < int(text) <= MAX_SAMPLE_RATE:
        return
    raise SaynaInvalidResponseError(
        f"{response.endpoint} answered HTTP {response.status} with an x-sample-rate header "
        f"of {printable(value[:40], lines=False)!r}, not a sample rate in Hz (1 to "
        f"{MAX_SAMPLE_RATE}): its audio cannot be played; check the server",
        response.status,
        response.endpoint,
    )


class VoiceCatalogue(RootModel[Dict[str, List[VoiceDescriptor]]]):
    """``GET /voices``: provider name -> its voices."""


class RestClient(LiveKitEndpoints, SipEndpoints):
    """The REST half of the Sayna API: every endpoint, no WebSocket needed.

    :class:`~sayna_client.SaynaClient` is a ``RestClient``; this class alone serves a
    program that only calls REST (it needs no STT/TTS configuration).

    Args:
        url: server URL, ``http(s)://host[:port][/prefix]`` (``ws(s)://`` is accepted
            too). A ``user:password@`` in it is sent as HTTP Basic authentication.
        api_key: sent as ``Authorization: Bearer``; defaults to ``SAYNA_API_KEY``.
        timeout: the default deadline of a call, in seconds, for each attempt
            (connect, send and read the whole answer); ``None``: no limit. A call's
            own ``timeout=`` overrides it.
        retry: retry policy for idempotent requests.
        ssl: ``True`` verifies certificates (``None`` means the same), ``False`` does
            not, an ``ssl.SSLContext`` for private CAs, or an ``aiohttp.Fingerprint``.
        proxy: an HTTP proxy URL; without it ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``
            apply to a session the client makes itself.
        http_session: an ``aiohttp.ClientSession`` to send through (never closed here).
        max_response_bytes: bound of a 2xx body (``None``: no bound).

    Every call method takes a keyword-only ``timeout``: seconds, ``None`` for no
    limit, or (the default) the client's ``timeout``. A call is retried, per the
    retry policy, only when it has no side effect.

    Raises:
        SaynaValidationError: a bad argument, named with the fix.
    """

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        await self.aclose()

    async def health(self, *, timeout: Seconds = CLIENT_DEFAULT) -> HealthResponse:
        """``GET /``: check the server is up.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.

        Returns:
            ``HealthResponse`` whose ``status`` is ``"OK"`` when healthy.

        Raises:
            SaynaConnectionError / SaynaTimeoutError: the server is unreachable.
            SaynaHttpError: a non-2xx answer.
            SaynaInvalidResponseError: the body is not a health answer.
        """
        return await self._request(
            "GET", "/", cast_to=HealthResponse, timeout=timeout, idempotent=True
        )

    async def health_check(self, *, timeout: Seconds = CLIENT_DEFAULT) -> HealthResponse:
        """Alias of :meth:`health` kept from sayna-client 0.0.18."""
        return await self.health(timeout=timeout)

    async def get_voices(
        self, *, timeout: Seconds = CLIENT_DEFAULT
    ) -> dict[str, list[VoiceDescriptor]]:
        """``GET /voices``: the voice catalogue grouped by provider.

        A provider is absent when the server has no credentials for it or its
        upstream failed; the result may be empty.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaInvalidResponseError: the body is not a JSON object of voice lists
                (a ``SaynaServerError`` with the status and the start of the body).
            SaynaHttpError, SaynaConnectionError, SaynaTimeoutError: as every call.
        """
        catalogue = await self._request(
            "GET", "/voices", cast_to=VoiceCatalogue, timeout=timeout, idempotent=True
        )
        return catalogue.root

    async def speak_rest(
        self,
        text: str,
        tts_config: TTSConfig,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
        retry: Optional[RetryPolicy] = None,
    ) -> tuple[bytes, dict[str, str]]:
        """``POST /speak``: synthesize ``text`` in one request, no WebSocket needed.

        Args:
            text: non-empty text to speak.
            tts_config: provider, voice and output format.
            timeout: seconds for the whole request (long texts take long); ``None``:
                no limit; default: the client's.
            retry: override the retry policy for this call.

        Returns:
            ``(audio, headers)``: the audio bytes in ``tts_config.audio_format`` and the
            response headers, including ``Content-Type``, ``Content-Length``,
            ``x-audio-format`` and ``x-sample-rate``: a ``dict`` whose look-ups ignore
            case (:class:`ResponseHeaders`). PCM formats are headerless 16-bit mono;
            ``sayna_client.audio.pcm_to_wav_bytes`` makes them playable.

        Raises:
            SaynaValidationError: empty text or a ``tts_config`` that is not a ``TTSConfig``.
            SaynaBadRequestError: the server refused the text or the provider.
            SaynaInvalidResponseError: a 2xx answer whose ``Content-Type`` is text, JSON,
                XML or HTML (a proxy's page), not audio, or whose ``x-sample-rate`` is not
                a whole number of Hz from 1 to 768000.
        """
        require_text("text", text, "Hello, world!")
        if len(text) > MAX_TEXT_CHARS:
            raise SaynaValidationError(
                f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}: split it"
            )
        if not isinstance(tts_config, TTSConfig):
            raise SaynaValidationError(
                "tts_config must be a TTSConfig, e.g. TTSConfig(provider='deepgram', "
                f"voice_id='aura-asteria-en'), got {type(tts_config).__name__}"
            )
        response = await self._request(
            "POST",
            "/speak",
            body=SpeakRequest(text=text, tts_config=tts_config),
            timeout=timeout,
            retry=retry,
            idempotent=True,
        )
        data, headers = _audio(response)
        _check_sample_rate(response, headers)
        return data, headers

    async def get_recording(
        self, stream_id: str, *, timeout: Seconds = CLIENT_DEFAULT
    ) -> tuple[bytes, dict[str, str]]:
        """``GET /recording/{stream_id}``: a session's recording (OGG on the real server).

        Args:
            stream_id: the session's id (``received_stream_id`` after ``ready``).
            timeout: seconds; ``None``: no limit; default: the client's.

        Returns:
            ``(audio, headers)``: the recording's bytes and the response headers, a
            ``dict`` whose look-ups ignore case (:class:`ResponseHeaders`).

        Raises:
            SaynaValidationError: ``stream_id`` is empty or holds ``/`` or ``..``.
            SaynaNotFoundError: no recording for that stream.
            SaynaInvalidResponseError: a 2xx answer whose ``Content-Type`` is text, JSON,
                XML or HTML (a proxy's page), not audio.
        """
        require_text("stream_id", stream_id, "call-42")
        if "/" in stream_id or ".." in stream_id:
            raise SaynaValidationError(
                f"stream_id {stream_id!r} must not contain '/' or '..' (it names a storage path)"
            )
        response = await self._request(
            "GET", f"/recording/{path_segment(stream_id)}", timeout=timeout, idempotent=True
        )
        return _audio(response)
