"""The SIP endpoints: the hooks table, transfers and outbound calls (``/sip/*``)."""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Optional, Union

from pydantic import ValidationError

from .._defaults import CLIENT_DEFAULT, Seconds
from ..errors import SaynaValidationError
from ..types import (
    DeleteSipHooksRequest,
    SetSipHooksRequest,
    SipCallRequest,
    SipCallResponse,
    SipCallSipConfig,
    SipHook,
    SipHooksResponse,
    SipTransferRequest,
    SipTransferResponse,
)
from ..types._checked import describe
from .base import RestBase, require_text

__all__ = ["SipEndpoints"]


class SipEndpoints(RestBase):
    """``/sip/*`` over :meth:`RestBase._request` (part of ``RestClient``)."""

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
            SaynaValidationError: ``hooks`` is not a list, a hook is malformed, or two
                hooks share a host.
            SaynaMethodNotAllowedError: a host is fixed in the server's config (405).
        """
        if not isinstance(hooks, Sequence) or isinstance(hooks, (str, bytes, bytearray)):
            fix = (
                ": wrap it in a list, [hook]"
                if isinstance(hooks, (SipHook, dict))
                else ", e.g. [SipHook(host='sip.example.com', url='https://example.com/hook')]"
            )
            raise SaynaValidationError(
                "hooks must be a list of SipHook (or of dicts of their fields), got "
                f"{type(hooks).__name__}{fix}"
            )
        items: list[SipHook] = []
        seen: set[str] = set()
        for index, hook in enumerate(hooks):
            try:
                model = hook if isinstance(hook, SipHook) else SipHook.model_validate(hook)
            except ValidationError as exc:
                raise SaynaValidationError(
                    f"hooks[{index}] is not a valid SipHook(host=..., url=..., auth_id=...): "
                    f"{describe(exc, SipHook)}"
                ) from exc
            require_text(f"hooks[{index}].host", model.host, "sip.example.com")
            require_text(f"hooks[{index}].url", model.url, "https://example.com/webhook")
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
            SaynaValidationError: ``hosts`` is not a list (or tuple, or set) of names, is
                empty, or holds an empty name.
        """
        if isinstance(hosts, (str, bytes, bytearray, memoryview)) or not isinstance(
            hosts, (Sequence, AbstractSet)
        ):
            fix = ": wrap it in a list" if isinstance(hosts, str) else ""
            raise SaynaValidationError(
                f"hosts must be a list of host names, got {type(hosts).__name__}{fix}, e.g. "
                "['sip.example.com']"
            )
        if not hosts:
            raise SaynaValidationError(
                "hosts must be a non-empty list of host names, e.g. ['sip.example.com']"
            )
        names = [require_text(f"hosts[{i}]", h, "sip.example.com") for i, h in enumerate(hosts)]
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
            room_name=require_text("room_name", room_name, "call-room"),
            participant_identity=require_text(
                "participant_identity", participant_identity, "sip-caller"
            ),
            transfer_to=require_text("transfer_to", transfer_to, "+15551234567"),
        )
        return await self._request(
            "POST",
            "/sip/transfer",
            body=body,
            cast_to=SipTransferResponse,
            timeout=timeout,
            check=f"e.g. whether get_livekit_room({room_name!r}) still lists "
            f"{participant_identity!r}",
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
            room_name=require_text("room_name", room_name, "call-room"),
            participant_name=require_text("participant_name", participant_name, "Caller"),
            participant_identity=require_text(
                "participant_identity", participant_identity, "caller-1"
            ),
            from_phone_number=require_text("from_phone_number", from_phone_number, "+15105550123"),
            to_phone_number=require_text("to_phone_number", to_phone_number, "+15551234567"),
            sip=sip_config,
        )
        return await self._request(
            "POST",
            "/sip/call",
            body=body,
            cast_to=SipCallResponse,
            timeout=timeout,
            check=f"e.g. whether get_livekit_room({room_name!r}) lists {participant_identity!r}",
        )
