"""The ``/_local/...`` control endpoints: drive the simulated LiveKit and faults over HTTP.

These exist only on the local server (the real one has no such routes) so tests written in
any language, or a second process, can inject room events. They require the same
authentication as every other route (the API key, when one is set), and refuse what a web
page could send (:func:`control_guard`): a ``Host`` that is neither an IP address,
``localhost`` nor the bound host name (DNS rebinding), and any cross-origin request
(``Origin`` other than the server's own, ``Sec-Fetch-Site`` cross-site). Turn them off with
``LocalServer(control=False)`` / ``sayna serve --no-control``. Errors are
``{"error": text}`` with status 400/403/404.

=========================================================  ==================================
``POST   /_local/rooms/{room}/participants``               join: ``{"identity", "name"?,
                                                           "kind"?, "attributes"?,
                                                           "metadata"?, "audio"?}``
``DELETE /_local/rooms/{room}/participants/{identity}``    leave (sessions close 100 ms later)
``POST   /_local/rooms/{room}/sip``                        SIP caller joins (+ webhook):
                                                           ``{"identity", "from_phone_number",
                                                           "to_phone_number", "sip_host"?,
                                                           "name"?, "headers"?}``
``POST   /_local/rooms/{room}/data``                       data packet: ``{"message"|"data"
                                                           (base64), "identity"?, "topic"?}``
``POST   /_local/rooms/{room}/audio?identity=...``         raw pcm16 body -> STT of the agents
``GET    /_local/rooms/{room}/data``                       packets published into the room
``GET    /_local/faults`` / ``PUT /_local/faults``         read / replace the :class:`Faults`
``POST   /_local/speech``                                  script what callers say next:
                                                           ``{"transcripts": [...], "unit"?:
                                                           "utterance"|"burst", "stream_id"?}``
``GET    /_local/speech`` / ``DELETE /_local/speech``      pending lines / forget them
``POST   /_local/tts-failures``                            fail the next TTS requests
                                                           (:meth:`LocalServer.fail_tts`):
                                                           ``{"message"?, "after_chunks"?,
                                                           "times"?, "stream_id"?,
                                                           "refuse"?}``
``GET    /_local/tts-failures`` / ``DELETE``               pending failures / forget them
=========================================================  ==================================
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import ipaddress
import json
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import urlsplit

from aiohttp import web

from .bench import add_bench_routes
from .faults import Faults, fault_type_problem
from .routes import state_of
from .voice import DEFAULT_TTS_FAILURE
from .web_util import error, json_response, read_body, read_object

if TYPE_CHECKING:
    from .app import LocalServer

__all__ = ["SERVER_KEY", "add_control_routes", "control_guard"]

SERVER_KEY: web.AppKey[LocalServer] = web.AppKey("sayna_local_server")


def _server(request: web.Request) -> LocalServer:
    return request.app[SERVER_KEY]


def control_guard(bound_host: str) -> Callable[[web.Request], Optional[str]]:
    """The check of every ``/_local`` request: returns why it is refused, or ``None``.

    A web page can make a browser send simple cross-origin POSTs to loopback, and DNS
    rebinding makes such a page same-origin with a name that resolves to 127.0.0.1. So
    the ``Host`` must be an IP literal, ``localhost`` or ``bound_host``, and a request
    carrying an ``Origin`` must come from ``http://<that Host>``.
    """
    bound = bound_host.strip("[]").lower()

    def check(request: web.Request) -> Optional[str]:
        host_header = request.headers.get("Host", "")
        try:
            hostname = urlsplit("//" + host_header).hostname or ""
        except ValueError:
            hostname = ""
        if not _local_name(hostname, bound):
            return (
                f"/_local refuses Host {host_header[:100]!r}: address the server as "
                "127.0.0.1, localhost or its IP address"
            )
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"http://{host_header}".lower():
            return f"/_local refuses cross-origin requests (Origin {origin[:100]!r})"
        if request.headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site"):
            return "/_local refuses cross-site requests"
        return None

    return check


def _local_name(hostname: str, bound: str) -> bool:
    if not hostname:
        return False
    if hostname in ("localhost", bound):
        return True
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def _bad(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _object(request: web.Request) -> dict[str, Any]:
    return await read_object(request)


def _str(body: dict[str, Any], key: str, default: Optional[str] = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise _bad(f"'{key}' must be a string")
    return value


def _optional_str(body: dict[str, Any], key: str) -> Optional[str]:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _bad(f"'{key}' must be a string")
    return value


def _str_map(body: dict[str, Any], key: str) -> dict[str, str]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise _bad(f"'{key}' must be an object")
    return {str(k): str(v) for k, v in value.items()}


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise _bad(f"'{key}' must be true or false")
    return value


async def add_participant(request: web.Request) -> web.Response:
    body = await _object(request)
    participant = await _server(request).inject_participant(
        request.match_info["room"],
        _str(body, "identity"),
        name=_str(body, "name", ""),
        kind=_str(body, "kind", "STANDARD"),
        attributes=_str_map(body, "attributes"),
        metadata=_str(body, "metadata", ""),
        audio=_bool(body, "audio", True),
    )
    return json_response(participant)


async def remove_participant(request: web.Request) -> web.Response:
    room, identity = request.match_info["room"], request.match_info["identity"]
    if not await _server(request).inject_participant_left(room, identity):
        return error(404, f"Participant '{identity}' not found in room '{room}'")
    return json_response({"status": "removed"})


async def add_sip_participant(request: web.Request) -> web.Response:
    body = await _object(request)
    participant = await _server(request).inject_sip_participant(
        request.match_info["room"],
        _str(body, "identity"),
        from_phone_number=_str(body, "from_phone_number"),
        to_phone_number=_str(body, "to_phone_number"),
        sip_host=body.get("sip_host") if isinstance(body.get("sip_host"), str) else None,
        name=_str(body, "name", ""),
        headers=_str_map(body, "headers"),
    )
    return json_response(participant)


async def send_data(request: web.Request) -> web.Response:
    body = await _object(request)
    if isinstance(body.get("data"), str):
        try:
            payload = base64.b64decode(body["data"], validate=True)
        except (binascii.Error, ValueError):
            return error(400, "'data' must be base64")
    else:
        payload = _str(body, "message").encode()
    identity = body.get("identity")
    topic = body.get("topic")
    delivered = await _server(request).inject_data(
        request.match_info["room"],
        payload,
        identity=identity if isinstance(identity, str) else None,
        topic=topic if isinstance(topic, str) else None,
    )
    if not delivered:
        return error(404, f"Room '{request.match_info['room']}' not found")
    return json_response({"status": "sent"})


async def send_audio(request: web.Request) -> web.Response:
    identity = request.query.get("identity", "user")
    room = request.match_info["room"]
    if not await _server(request).inject_audio(room, identity, await read_body(request)):
        return error(404, f"Room '{room}' not found")
    return json_response({"status": "sent"})


async def list_data(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    packets = []
    for packet in state_of(request).records.data_packets:
        if packet.room != room:
            continue
        item: dict[str, Any] = {"identity": packet.identity, "topic": packet.topic}
        try:
            item["message"] = packet.payload.decode("utf-8")
        except UnicodeDecodeError:
            item["data"] = base64.b64encode(packet.payload).decode()
        packets.append(item)
    return json_response({"packets": packets})


async def get_faults(request: web.Request) -> web.Response:
    return json_response(dataclasses.asdict(_server(request).faults))


async def put_faults(request: web.Request) -> web.Response:
    body = await _object(request)
    names = {f.name for f in dataclasses.fields(Faults)}
    unknown = sorted(set(body) - names)
    if unknown:
        return error(400, f"unknown fault(s): {', '.join(unknown)}")
    problem = fault_type_problem(body)
    if problem is not None:
        return error(400, problem)
    faults = Faults(**body)
    _server(request).faults = faults
    return json_response(dataclasses.asdict(faults))


def _pending(server: LocalServer) -> web.Response:
    return json_response({"pending": [line.to_wire() for line in server.scripted_speech]})


async def add_speech(request: web.Request) -> web.Response:
    body = await _object(request)
    transcripts = body.get("transcripts")
    if not isinstance(transcripts, list) or not transcripts:
        return error(400, "'transcripts' must be a non-empty list of strings")
    stream_id = _optional_str(body, "stream_id")
    server = _server(request)
    try:
        unit = _str(body, "unit", "utterance")
        server.script_speech(*transcripts, unit=unit, stream_id=stream_id)
    except ValueError as exc:
        return error(400, str(exc))
    return _pending(server)


async def get_speech(request: web.Request) -> web.Response:
    return _pending(_server(request))


async def clear_speech(request: web.Request) -> web.Response:
    server = _server(request)
    server.clear_scripted_speech()
    return _pending(server)


def _failures(server: LocalServer) -> web.Response:
    return json_response({"pending": [dataclasses.asdict(f) for f in server.tts_failures]})


async def add_tts_failures(request: web.Request) -> web.Response:
    body = await _object(request)
    unknown = sorted(set(body) - {"message", "after_chunks", "times", "stream_id", "refuse"})
    if unknown:
        return error(400, f"unknown field(s): {', '.join(unknown)}")
    stream_id = _optional_str(body, "stream_id")
    server = _server(request)
    try:
        server.fail_tts(
            _str(body, "message", DEFAULT_TTS_FAILURE),
            after_chunks=body.get("after_chunks", 0),
            times=body.get("times", 1),
            stream_id=stream_id,
            refuse=_bool(body, "refuse", False),
        )
    except ValueError as exc:
        return error(400, str(exc))
    return _failures(server)


async def get_tts_failures(request: web.Request) -> web.Response:
    return _failures(_server(request))


async def clear_tts_failures(request: web.Request) -> web.Response:
    server = _server(request)
    server.clear_tts_failures()
    return _failures(server)


def add_control_routes(app: web.Application) -> None:
    app.router.add_post("/_local/rooms/{room}/participants", add_participant)
    app.router.add_delete("/_local/rooms/{room}/participants/{identity}", remove_participant)
    app.router.add_post("/_local/rooms/{room}/sip", add_sip_participant)
    app.router.add_post("/_local/rooms/{room}/data", send_data)
    app.router.add_get("/_local/rooms/{room}/data", list_data)
    app.router.add_post("/_local/rooms/{room}/audio", send_audio)
    app.router.add_get("/_local/faults", get_faults)
    app.router.add_put("/_local/faults", put_faults)
    app.router.add_post("/_local/speech", add_speech)
    app.router.add_get("/_local/speech", get_speech)
    app.router.add_delete("/_local/speech", clear_speech)
    app.router.add_post("/_local/tts-failures", add_tts_failures)
    app.router.add_get("/_local/tts-failures", get_tts_failures)
    app.router.add_delete("/_local/tts-failures", clear_tts_failures)
    add_bench_routes(app)  # /_local/bench/... (see bench.py)
