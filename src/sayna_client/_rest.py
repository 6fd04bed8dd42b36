"""Every REST endpoint of the Sayna server, as methods mixed into ``SaynaClient``.

Arguments are checked before anything is sent (``SaynaValidationError`` names the
argument and the fix); responses are parsed into typed models. Read-only and
repeatable calls are marked idempotent so the retry policy may re-send them;
calls with side effects (placing a SIP call, a transfer, removing a participant)
are sent once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

from pydantic import ValidationError

from ._config import MAX_TEXT_CHARS, RetryPolicy
from ._http import HttpResponse, HttpTransport, path_segment
from .errors import SaynaValidationError
from .types import (
    HealthResponse,
    LiveKitRoomDetails,
    LiveKitRoomsResponse,
    LiveKitTokenResponse,
    MuteLiveKitParticipantResponse,
    RemoveLiveKitParticipantResponse,
    SipCallResponse,
    SipCallSipConfig,
    SipHook,
    SipHooksResponse,
    SipTransferResponse,
    TTSConfig,
    VoiceDescriptor,
)

__all__ = ["RestMethods"]


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


def _parse(model: Any, response: HttpResponse, endpoint: str) -> Any:
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
    response.endpoint = response.endpoint or endpoint
    raise response.unreadable(problem)


class RestMethods:
    """REST half of :class:`~sayna_client.SaynaClient` (no WebSocket needed)."""

    _http: HttpTransport

    async def health(self, *, timeout: Optional[float] = None) -> HealthResponse:
        """``GET /``: check the server is up.

        Returns:
            ``HealthResponse`` whose ``status`` is ``"OK"`` when healthy.

        Raises:
            SaynaConnectionError / SaynaTimeoutError: the server is unreachable.
            SaynaHttpError: a non-2xx answer.
        """
        response = await self._http.request("GET", "/", timeout=timeout, idempotent=True)
        return _parse(HealthResponse, response, "GET /")  # type: ignore[no-any-return]

    async def health_check(self) -> HealthResponse:
        """Alias of :meth:`health` kept from sayna-client 0.0.18."""
        return await self.health()

    async def get_voices(
        self, *, timeout: Optional[float] = None
    ) -> dict[str, list[VoiceDescriptor]]:
        """``GET /voices``: the voice catalogue grouped by provider.

        A provider is absent when the server has no credentials for it or its
        upstream failed; the result may be empty.

        Raises:
            SaynaInvalidResponseError: the body is not a JSON object of voice lists
                (with the status and the start of the body).
            SaynaHttpError, SaynaConnectionError, SaynaTimeoutError: as every call.
        """
        response = await self._http.request("GET", "/voices", timeout=timeout, idempotent=True)
        data = response.json()
        if not isinstance(data, dict):
            raise response.unreadable("expected a JSON object of providers")
        try:
            return {
                str(provider): [VoiceDescriptor.model_validate(v) for v in voices]
                for provider, voices in data.items()
            }
        except ValidationError as exc:
            problem = f"an unreadable voice ({_problems(exc)})"
        except TypeError:
            problem = "a provider whose voices are not a list"
        raise response.unreadable(problem)

    async def speak_rest(
        self,
        text: str,
        tts_config: TTSConfig,
        *,
        timeout: Optional[float] = None,
        retry: Optional[RetryPolicy] = None,
    ) -> tuple[bytes, dict[str, str]]:
        """``POST /speak``: synthesize ``text`` in one request, no WebSocket needed.

        Args:
            text: non-empty text to speak.
            tts_config: provider, voice and output format.
            timeout: seconds for the whole request (default: the client's).
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
        body = {"text": text, "tts_config": tts_config.model_dump(mode="json", exclude_none=True)}
        response = await self._http.request(
            "POST", "/speak", json_body=body, timeout=timeout, retry=retry, idempotent=True
        )
        return response.body, dict(response.headers)

    async def get_livekit_token(
        self, room_name: str, participant_name: str, participant_identity: str
    ) -> LiveKitTokenResponse:
        """``POST /livekit/token``: a LiveKit access token for a participant.

        Raises:
            SaynaValidationError: an empty argument.
            SaynaPermissionDeniedError: the room belongs to another tenant (403).
        """
        body = {
            "room_name": _require_text("room_name", room_name, "my-room"),
            "participant_name": _require_text("participant_name", participant_name, "Jane"),
            "participant_identity": _require_text(
                "participant_identity", participant_identity, "user-123"
            ),
        }
        response = await self._http.request(
            "POST", "/livekit/token", json_body=body, idempotent=True
        )
        return _parse(LiveKitTokenResponse, response, "POST /livekit/token")  # type: ignore[no-any-return]

    async def get_livekit_rooms(self) -> LiveKitRoomsResponse:
        """``GET /livekit/rooms``: the rooms this API key may see."""
        response = await self._http.request("GET", "/livekit/rooms", idempotent=True)
        return _parse(LiveKitRoomsResponse, response, "GET /livekit/rooms")  # type: ignore[no-any-return]

    async def get_livekit_room(self, room_name: str) -> LiveKitRoomDetails:
        """``GET /livekit/rooms/{room_name}``: one room with its participants.

        Raises:
            SaynaNotFoundError: no such room, or it belongs to another tenant.
        """
        _require_text("room_name", room_name, "my-room")
        path = f"/livekit/rooms/{path_segment(room_name)}"
        response = await self._http.request("GET", path, idempotent=True)
        return _parse(LiveKitRoomDetails, response, "GET /livekit/rooms/{room_name}")  # type: ignore[no-any-return]

    async def remove_livekit_participant(
        self, room_name: str, participant_identity: str
    ) -> RemoveLiveKitParticipantResponse:
        """``DELETE /livekit/participant``: disconnect a participant (its token stays valid).

        Raises:
            SaynaNotFoundError: room or participant not found or not accessible.
        """
        body = {
            "room_name": _require_text("room_name", room_name, "my-room"),
            "participant_identity": _require_text(
                "participant_identity", participant_identity, "user-123"
            ),
        }
        response = await self._http.request("DELETE", "/livekit/participant", json_body=body)
        return _parse(RemoveLiveKitParticipantResponse, response, "DELETE /livekit/participant")  # type: ignore[no-any-return]

    async def mute_livekit_participant_track(
        self, room_name: str, participant_identity: str, track_sid: str, muted: bool
    ) -> MuteLiveKitParticipantResponse:
        """``POST /livekit/participant/mute``: mute or unmute one published track."""
        if not isinstance(muted, bool):
            raise SaynaValidationError(f"muted must be True or False, got {muted!r}")
        body = {
            "room_name": _require_text("room_name", room_name, "my-room"),
            "participant_identity": _require_text(
                "participant_identity", participant_identity, "user-123"
            ),
            "track_sid": _require_text("track_sid", track_sid, "TR_abc123"),
            "muted": muted,
        }
        response = await self._http.request(
            "POST", "/livekit/participant/mute", json_body=body, idempotent=True
        )
        return _parse(MuteLiveKitParticipantResponse, response, "POST /livekit/participant/mute")  # type: ignore[no-any-return]

    async def get_sip_hooks(self) -> SipHooksResponse:
        """``GET /sip/hooks``: the SIP routing table (secrets are never returned)."""
        response = await self._http.request("GET", "/sip/hooks", idempotent=True)
        return _parse(SipHooksResponse, response, "GET /sip/hooks")  # type: ignore[no-any-return]

    async def set_sip_hooks(
        self, hooks: Sequence[Union[SipHook, dict[str, Any]]]
    ) -> SipHooksResponse:
        """``POST /sip/hooks``: add or replace hooks by host; returns the merged table.

        Raises:
            SaynaValidationError: a hook is malformed or two hooks share a host.
            SaynaMethodNotAllowedError: a host is fixed in the server's config (405).
        """
        items: list[dict[str, Any]] = []
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
            items.append(model.model_dump(mode="json"))
        response = await self._http.request(
            "POST", "/sip/hooks", json_body={"hooks": items}, idempotent=True
        )
        return _parse(SipHooksResponse, response, "POST /sip/hooks")  # type: ignore[no-any-return]

    async def delete_sip_hooks(self, hosts: Sequence[str]) -> SipHooksResponse:
        """``DELETE /sip/hooks``: remove runtime hooks by host; returns what remains.

        Raises:
            SaynaValidationError: ``hosts`` is empty or holds an empty name.
        """
        if isinstance(hosts, str) or not hosts:
            raise SaynaValidationError(
                "hosts must be a non-empty list of host names, e.g. ['sip.example.com']"
            )
        names = [_require_text(f"hosts[{i}]", h, "sip.example.com") for i, h in enumerate(hosts)]
        response = await self._http.request(
            "DELETE", "/sip/hooks", json_body={"hosts": names}, idempotent=True
        )
        return _parse(SipHooksResponse, response, "DELETE /sip/hooks")  # type: ignore[no-any-return]

    async def sip_transfer_rest(
        self, room_name: str, participant_identity: str, transfer_to: str
    ) -> SipTransferResponse:
        """``POST /sip/transfer``: transfer a SIP participant (SIP REFER).

        Returns:
            ``status`` ``"completed"`` or ``"initiated"`` (unconfirmed after 2 s) and
            ``transfer_to`` as ``"tel:<number>"``.
        """
        body = {
            "room_name": _require_text("room_name", room_name, "call-room"),
            "participant_identity": _require_text(
                "participant_identity", participant_identity, "sip-caller"
            ),
            "transfer_to": _require_text("transfer_to", transfer_to, "+15551234567"),
        }
        response = await self._http.request("POST", "/sip/transfer", json_body=body)
        return _parse(SipTransferResponse, response, "POST /sip/transfer")  # type: ignore[no-any-return]

    async def sip_call(
        self,
        room_name: str,
        participant_name: str,
        participant_identity: str,
        from_phone_number: str,
        to_phone_number: str,
        sip_config: Optional[SipCallSipConfig] = None,
    ) -> SipCallResponse:
        """``POST /sip/call``: place an outbound call into a room (sent once, never retried)."""
        body: dict[str, Any] = {
            "room_name": _require_text("room_name", room_name, "call-room"),
            "participant_name": _require_text("participant_name", participant_name, "Caller"),
            "participant_identity": _require_text(
                "participant_identity", participant_identity, "caller-1"
            ),
            "from_phone_number": _require_text(
                "from_phone_number", from_phone_number, "+15105550123"
            ),
            "to_phone_number": _require_text("to_phone_number", to_phone_number, "+15551234567"),
        }
        if sip_config is not None:
            if not isinstance(sip_config, SipCallSipConfig):
                raise SaynaValidationError("sip_config must be a SipCallSipConfig or None")
            body["sip"] = sip_config.model_dump(mode="json", exclude_none=True)
        response = await self._http.request("POST", "/sip/call", json_body=body)
        return _parse(SipCallResponse, response, "POST /sip/call")  # type: ignore[no-any-return]

    async def get_recording(
        self, stream_id: str, *, timeout: Optional[float] = None
    ) -> tuple[bytes, dict[str, str]]:
        """``GET /recording/{stream_id}``: a session's recording (OGG on the real server).

        Raises:
            SaynaValidationError: ``stream_id`` is empty or holds ``/`` or ``..``.
            SaynaNotFoundError: no recording for that stream.
        """
        _require_text("stream_id", stream_id, "call-42")
        if "/" in stream_id or ".." in stream_id:
            raise SaynaValidationError(
                f"stream_id {stream_id!r} must not contain '/' or '..' (it names a storage path)"
            )
        path = f"/recording/{path_segment(stream_id)}"
        response = await self._http.request("GET", path, timeout=timeout, idempotent=True)
        return response.body, dict(response.headers)
