"""Every REST endpoint of the Sayna server, on :class:`RestClient`.

One method, :meth:`RestClient._request`, sends every call: it builds the body from
a request model (``types.rest``), applies the per-call ``timeout`` (seconds,
``None`` for no limit, :data:`~sayna_client._defaults.CLIENT_DEFAULT` for the
client's ``timeouts.request``) and parses the answer into the response model
named by ``cast_to``, so that an unreadable body is always a
``SaynaInvalidResponseError`` (a ``SaynaServerError`` with the status and an
excerpt), never a ``JSONDecodeError``.

Arguments are checked before anything is sent (``SaynaValidationError`` names the
argument and the fix). Read-only and repeatable calls are marked idempotent so the
retry policy may re-send them; calls with side effects (placing a SIP call, a
transfer, removing a participant) are sent once.

``RestClient`` owns its HTTP session handling (:class:`~sayna_client._http.HttpTransport`):
``SaynaClient`` is a ``RestClient`` that adds the WebSocket session, and reads only
what is documented here (``_http``, ``_http_base``, ``_auth_headers``, ``_redactor``,
``_ssl``).
"""

from __future__ import annotations

import base64
import sys
import warnings
from collections.abc import Sequence
from types import FrameType
from typing import Any, Dict, List, Optional, TypeVar, Union, overload

import aiohttp
from pydantic import BaseModel, RootModel, ValidationError

from ._config import (
    MAX_TEXT_CHARS,
    RetryPolicy,
    Timeouts,
    check_seconds,
    derive_urls,
    is_loopback_host,
    is_plaintext,
    resolve_api_key,
)
from ._defaults import CLIENT_DEFAULT, Seconds
from ._http import DEFAULT_MAX_RESPONSE_BYTES, HttpResponse, HttpTransport, path_segment
from ._redact import Redactor, safe_url, split_userinfo, url_secrets
from .errors import SaynaValidationError
from .types import (
    DeleteSipHooksRequest,
    HealthResponse,
    LiveKitRoomDetails,
    LiveKitRoomsResponse,
    LiveKitTokenRequest,
    LiveKitTokenResponse,
    MuteLiveKitParticipantRequest,
    MuteLiveKitParticipantResponse,
    RemoveLiveKitParticipantRequest,
    RemoveLiveKitParticipantResponse,
    SetSipHooksRequest,
    SipCallRequest,
    SipCallResponse,
    SipCallSipConfig,
    SipHook,
    SipHooksResponse,
    SipTransferRequest,
    SipTransferResponse,
    SpeakRequest,
    TTSConfig,
    VoiceDescriptor,
)

__all__ = ["RestClient", "auth_headers"]

M = TypeVar("M", bound=BaseModel)

_DEFAULT_REQUEST_TIMEOUT = Timeouts().request
_DEFAULT_RETRY = RetryPolicy()


def _require_text(name: str, value: Any, example: str) -> str:
    if not isinstance(value, str):
        raise SaynaValidationError(
            f"{name} must be a string, got {type(value).__name__}; e.g. {name}={example!r}"
        )
    if not value.strip():
        raise SaynaValidationError(f"{name} must not be empty; e.g. {name}={example!r}")
    return value


def _problems(exc: ValidationError) -> str:
    """Pydantic's complaints without the input (which may be long, or a secret)."""
    found = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)[:3]
    ]
    return "; ".join(found)


def _parse(model: type[M], response: HttpResponse) -> M:
    """``response``'s body as ``model``.

    Raises:
        SaynaInvalidResponseError: the body is not a ``model`` (not JSON, nested too
            deeply, another shape), with the status and the start of the body.
    """
    try:
        return model.model_validate_json(response.body)
    except ValidationError as exc:
        problem = f"not a {model.__name__} ({_problems(exc)})"
    except (ValueError, RecursionError) as exc:
        problem = f"not a {model.__name__} ({type(exc).__name__})"
    raise response.unreadable(problem)


class VoiceCatalogue(RootModel[Dict[str, List[VoiceDescriptor]]]):
    """``GET /voices``: provider name -> its voices."""


def auth_headers(api_key: Optional[str], userinfo: Optional[tuple[str, str]]) -> dict[str, str]:
    """The ``Authorization`` header: Bearer for an API key, Basic for a URL's user:password.

    Raises:
        SaynaValidationError: both are given (only one header can be sent).
    """
    if userinfo is not None and api_key:
        raise SaynaValidationError(
            "url carries user:password credentials and an API key is set (api_key= or "
            "SAYNA_API_KEY); only one Authorization header can be sent: remove one"
        )
    if api_key:
        return {"Authorization": f"Bearer {api_key}"}
    if userinfo is not None:
        token = base64.b64encode(":".join(userinfo).encode("utf-8")).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    return {}


def _user_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel, for its caller, of the first frame outside this
    package: the user's line that made the client, however deep the constructors."""
    level = 1
    frame: Optional[FrameType] = sys._getframe(2)  # the caller of our caller
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("sayna_client"):
        level += 1
        frame = frame.f_back
    return level + 1


def _check_http_options(
    proxy: Optional[str],
    http_session: Optional[aiohttp.ClientSession],
    max_response_bytes: Optional[int],
) -> None:
    if max_response_bytes is not None and (
        type(max_response_bytes) is not int or max_response_bytes < 1
    ):
        raise SaynaValidationError(
            "max_response_bytes must be a positive whole number of bytes, or None for no bound"
        )
    if proxy is not None and (
        not isinstance(proxy, str) or not proxy.startswith(("http://", "https://"))
    ):
        raise SaynaValidationError(
            "proxy must be an http:// URL such as 'http://proxy.example:3128', or None"
        )
    if http_session is not None and not isinstance(http_session, aiohttp.ClientSession):
        raise SaynaValidationError(
            "http_session must be an aiohttp.ClientSession (or None), got "
            f"{type(http_session).__name__}"
        )


class RestClient:
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
        ssl: passed to aiohttp (``True`` verifies certificates).
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

    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        *,
        timeout: Optional[float] = _DEFAULT_REQUEST_TIMEOUT,
        retry: Optional[RetryPolicy] = None,
        ssl: Any = True,
        proxy: Optional[str] = None,
        http_session: Optional[aiohttp.ClientSession] = None,
        max_response_bytes: Optional[int] = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        bare, userinfo = split_userinfo(url.strip()) if isinstance(url, str) else (url, None)
        self._http_base = derive_urls(bare)[0]
        check_seconds("timeout", timeout)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise SaynaValidationError(
                f"retry must be a RetryPolicy, e.g. RetryPolicy(max_retries=2), got "
                f"{type(retry).__name__}"
            )
        _check_http_options(proxy, http_session, max_response_bytes)
        self._api_key = resolve_api_key(api_key)
        self._redactor = Redactor(
            [self._api_key, *url_secrets(url), *(url_secrets(proxy) if proxy else ())]
        )
        self._auth_headers = auth_headers(self._api_key, userinfo)
        self._ssl = ssl
        if (
            self._auth_headers
            and is_plaintext(self._http_base)
            and not is_loopback_host(self._http_base)
        ):
            warnings.warn(
                "An API key will be sent over unencrypted http/ws to a non-loopback host; "
                "use https:// or wss:// so it cannot be read on the network",
                stacklevel=_user_stacklevel(),
            )
        self._http_options: dict[str, Any] = {
            "timeout": timeout,
            "retry": retry or _DEFAULT_RETRY,
            "ssl": ssl,
            "max_response_bytes": max_response_bytes,
            "proxy": proxy,
            "http_session": http_session,
        }
        self._http = self._new_transport()

    def _new_transport(self) -> HttpTransport:
        """A transport with this client's settings (a new event loop needs a new one:
        its aiohttp session belongs to the old loop)."""
        return HttpTransport(
            self._http_base,
            api_key=self._api_key,
            headers=self._auth_headers,
            redactor=self._redactor,
            **self._http_options,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={safe_url(self._http_base)!r})"

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the HTTP connections (the next call opens new ones). Safe to call
        twice; a user's ``http_session`` stays open."""
        await self._http.close()

    @overload
    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[BaseModel] = None,
        cast_to: type[M],
        timeout: Seconds = CLIENT_DEFAULT,
        retry: Optional[RetryPolicy] = None,
        idempotent: bool = False,
    ) -> M: ...

    @overload
    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[BaseModel] = None,
        cast_to: None = None,
        timeout: Seconds = CLIENT_DEFAULT,
        retry: Optional[RetryPolicy] = None,
        idempotent: bool = False,
    ) -> HttpResponse: ...

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[BaseModel] = None,
        cast_to: Optional[type[M]] = None,
        timeout: Seconds = CLIENT_DEFAULT,
        retry: Optional[RetryPolicy] = None,
        idempotent: bool = False,
    ) -> Union[M, HttpResponse]:
        """Send one REST call: the only way any endpoint is reached.

        Args:
            method: HTTP method.
            path: path below the base URL, each variable segment percent-encoded
                (``path_segment``).
            body: the request model, sent as JSON without its ``None`` fields.
            cast_to: the response model to parse the 2xx body into; ``None`` returns
                the raw response (audio, recordings).
            timeout: seconds for each attempt; ``None``: no limit; ``CLIENT_DEFAULT``:
                the client's.
            retry: this call's retry policy instead of the client's.
            idempotent: the call has no side effect and may be re-sent.

        Returns:
            a ``cast_to`` instance, or the ``HttpResponse`` when ``cast_to`` is None.

        Raises:
            SaynaInvalidResponseError: the body is not a ``cast_to`` (not JSON, nested
                too deeply, another shape, over ``max_response_bytes``): a
                ``SaynaServerError`` with the status and the start of the body.
            SaynaHttpError: a non-2xx status (a subclass per status).
            SaynaTimeoutError: an attempt exceeded ``timeout``.
            SaynaConnectionError: the connection failed.

        Cancellation: cancelling the awaiting task abandons the request (its
        connection is closed, not reused).
        """
        if timeout is not CLIENT_DEFAULT:
            check_seconds("timeout", timeout)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise SaynaValidationError("retry must be a RetryPolicy or None")
        response = await self._http.request(
            method, path, body=body, timeout=timeout, retry=retry, idempotent=idempotent
        )
        if cast_to is None:
            return response
        return _parse(cast_to, response)

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
            ``x-audio-format`` and ``x-sample-rate``. PCM formats are headerless
            16-bit mono; ``sayna_client.audio.pcm_to_wav_bytes`` makes them playable.

        Raises:
            SaynaValidationError: empty text or a ``tts_config`` that is not a ``TTSConfig``.
            SaynaBadRequestError: the server refused the text or the provider.
        """
        _require_text("text", text, "Hello, world!")
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
        return response.body, dict(response.headers)

    async def get_livekit_token(
        self,
        room_name: str,
        participant_name: str,
        participant_identity: str,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> LiveKitTokenResponse:
        """``POST /livekit/token``: a LiveKit access token for a participant.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaValidationError: an empty argument.
            SaynaPermissionDeniedError: the room belongs to another tenant (403).
        """
        body = LiveKitTokenRequest(
            room_name=_require_text("room_name", room_name, "my-room"),
            participant_name=_require_text("participant_name", participant_name, "Jane"),
            participant_identity=_require_text(
                "participant_identity", participant_identity, "user-123"
            ),
        )
        return await self._request(
            "POST",
            "/livekit/token",
            body=body,
            cast_to=LiveKitTokenResponse,
            timeout=timeout,
            idempotent=True,
        )

    async def get_livekit_rooms(self, *, timeout: Seconds = CLIENT_DEFAULT) -> LiveKitRoomsResponse:
        """``GET /livekit/rooms``: the rooms this API key may see.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.
        """
        return await self._request(
            "GET", "/livekit/rooms", cast_to=LiveKitRoomsResponse, timeout=timeout, idempotent=True
        )

    async def get_livekit_room(
        self, room_name: str, *, timeout: Seconds = CLIENT_DEFAULT
    ) -> LiveKitRoomDetails:
        """``GET /livekit/rooms/{room_name}``: one room with its participants.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaNotFoundError: no such room, or it belongs to another tenant.
        """
        _require_text("room_name", room_name, "my-room")
        return await self._request(
            "GET",
            f"/livekit/rooms/{path_segment(room_name)}",
            cast_to=LiveKitRoomDetails,
            timeout=timeout,
            idempotent=True,
        )

    async def remove_livekit_participant(
        self, room_name: str, participant_identity: str, *, timeout: Seconds = CLIENT_DEFAULT
    ) -> RemoveLiveKitParticipantResponse:
        """``DELETE /livekit/participant``: disconnect a participant (its token stays
        valid). Sent once, never retried.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaNotFoundError: room or participant not found or not accessible.
        """
        body = RemoveLiveKitParticipantRequest(
            room_name=_require_text("room_name", room_name, "my-room"),
            participant_identity=_require_text(
                "participant_identity", participant_identity, "user-123"
            ),
        )
        return await self._request(
            "DELETE",
            "/livekit/participant",
            body=body,
            cast_to=RemoveLiveKitParticipantResponse,
            timeout=timeout,
        )

    async def mute_livekit_participant_track(
        self,
        room_name: str,
        participant_identity: str,
        track_sid: str,
        muted: bool,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> MuteLiveKitParticipantResponse:
        """``POST /livekit/participant/mute``: mute or unmute one published track.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaValidationError: an empty name or ``muted`` not a bool.
        """
        if not isinstance(muted, bool):
            raise SaynaValidationError(f"muted must be True or False, got {muted!r}")
        body = MuteLiveKitParticipantRequest(
            room_name=_require_text("room_name", room_name, "my-room"),
            participant_identity=_require_text(
                "participant_identity", participant_identity, "user-123"
            ),
            track_sid=_require_text("track_sid", track_sid, "TR_abc123"),
            muted=muted,
        )
        return await self._request(
            "POST",
            "/livekit/participant/mute",
            body=body,
            cast_to=MuteLiveKitParticipantResponse,
            timeout=timeout,
            idempotent=True,
        )

    async def get_sip_hooks(self, *, timeout: Seconds = CLIENT_DEFAULT) -> SipHooksResponse:
        """``GET /sip/hooks``: the SIP routing table (secrets are never returned).

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.
        """
        return await self._request(
            "GET", "/sip/hooks", cast_to=SipHooksResponse, timeout=timeout, idempotent=True
        )

    async def set_sip_hooks(
        self,
        hooks: Sequence[Union[SipHook, dict[str, Any]]],
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> SipHooksResponse:
        """``POST /sip/hooks``: add or replace hooks by host; returns the merged table.

        Args:
            hooks: ``SipHook`` models or dicts of their fields.
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaValidationError: a hook is malformed or two hooks share a host.
            SaynaMethodNotAllowedError: a host is fixed in the server's config (405).
        """
        items: list[SipHook] = []
        seen: set[str] = set()
        for index, hook in enumerate(hooks):
            try:
                model = hook if isinstance(hook, SipHook) else SipHook.model_validate(hook)
            except ValidationError as exc:
                raise SaynaValidationError(
                    f"hooks[{index}] is not a valid SipHook(host=..., url=..., auth_id=...): {exc}"
                ) from exc
            _require_text(f"hooks[{index}].host", model.host, "sip.example.com")
            _require_text(f"hooks[{index}].url", model.url, "https://example.com/webhook")
            host = model.host.strip().lower()
            if host in seen:
                raise SaynaValidationError(
                    f"hooks[{index}].host {model.host!r} appears twice; send one hook per host"
                )
            seen.add(host)
            items.append(model)
        return await self._request(
            "POST",
            "/sip/hooks",
            body=SetSipHooksRequest(hooks=items),
            cast_to=SipHooksResponse,
            timeout=timeout,
            idempotent=True,
        )

    async def delete_sip_hooks(
        self, hosts: Sequence[str], *, timeout: Seconds = CLIENT_DEFAULT
    ) -> SipHooksResponse:
        """``DELETE /sip/hooks``: remove runtime hooks by host; returns what remains.

        Args:
            hosts: host names of the hooks to remove.
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaValidationError: ``hosts`` is empty or holds an empty name.
        """
        if isinstance(hosts, str) or not hosts:
            raise SaynaValidationError(
                "hosts must be a non-empty list of host names, e.g. ['sip.example.com']"
            )
        names = [_require_text(f"hosts[{i}]", h, "sip.example.com") for i, h in enumerate(hosts)]
        return await self._request(
            "DELETE",
            "/sip/hooks",
            body=DeleteSipHooksRequest(hosts=names),
            cast_to=SipHooksResponse,
            timeout=timeout,
            idempotent=True,
        )

    async def sip_transfer_rest(
        self,
        room_name: str,
        participant_identity: str,
        transfer_to: str,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> SipTransferResponse:
        """``POST /sip/transfer``: transfer a SIP participant (SIP REFER). Sent once.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.

        Returns:
            ``status`` ``"completed"`` or ``"initiated"`` (unconfirmed after 2 s) and
            ``transfer_to`` as ``"tel:<number>"``.
        """
        body = SipTransferRequest(
            room_name=_require_text("room_name", room_name, "call-room"),
            participant_identity=_require_text(
                "participant_identity", participant_identity, "sip-caller"
            ),
            transfer_to=_require_text("transfer_to", transfer_to, "+15551234567"),
        )
        return await self._request(
            "POST", "/sip/transfer", body=body, cast_to=SipTransferResponse, timeout=timeout
        )

    async def sip_call(
        self,
        room_name: str,
        participant_name: str,
        participant_identity: str,
        from_phone_number: str,
        to_phone_number: str,
        sip_config: Optional[SipCallSipConfig] = None,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> SipCallResponse:
        """``POST /sip/call``: place an outbound call into a room (sent once, never retried).

        Args:
            sip_config: per-call SIP overrides (``None``: the server's configuration).
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaValidationError: an empty argument or a ``sip_config`` of another type.
        """
        if sip_config is not None and not isinstance(sip_config, SipCallSipConfig):
            raise SaynaValidationError("sip_config must be a SipCallSipConfig or None")
        body = SipCallRequest(
            room_name=_require_text("room_name", room_name, "call-room"),
            participant_name=_require_text("participant_name", participant_name, "Caller"),
            participant_identity=_require_text(
                "participant_identity", participant_identity, "caller-1"
            ),
            from_phone_number=_require_text("from_phone_number", from_phone_number, "+15105550123"),
            to_phone_number=_require_text("to_phone_number", to_phone_number, "+15551234567"),
            sip=sip_config,
        )
        return await self._request(
            "POST", "/sip/call", body=body, cast_to=SipCallResponse, timeout=timeout
        )

    async def get_recording(
        self, stream_id: str, *, timeout: Seconds = CLIENT_DEFAULT
    ) -> tuple[bytes, dict[str, str]]:
        """``GET /recording/{stream_id}``: a session's recording (OGG on the real server).

        Args:
            stream_id: the session's id (``received_stream_id`` after ``ready``).
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaValidationError: ``stream_id`` is empty or holds ``/`` or ``..``.
            SaynaNotFoundError: no recording for that stream.
        """
        _require_text("stream_id", stream_id, "call-42")
        if "/" in stream_id or ".." in stream_id:
            raise SaynaValidationError(
                f"stream_id {stream_id!r} must not contain '/' or '..' (it names a storage path)"
            )
        response = await self._request(
            "GET", f"/recording/{path_segment(stream_id)}", timeout=timeout, idempotent=True
        )
        return response.body, dict(response.headers)
