"""The ``/_emulator/`` control API: inspect and steer a running emulator over HTTP.

Everything the Python API offers that a process outside the test can need: stats,
users, the applied log, reset, faults (random and scripted), forced throttling, pause,
and the profile models (cohorts as property equality, recommendation models,
computations as a property's value, predictions). JSON in, JSON out; bad input is a
400 with ``{"error": ...}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from ._decode import DecodeError, decode_json
from ._faults import Fault, Faults

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["add_control_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=msgspec.json.encode(data), content_type="application/json"
    )


class _BadInput(ValueError):
    pass


class _NotFound(LookupError):
    pass


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = decode_json(raw)
    except DecodeError as exc:
        raise _BadInput(str(exc)) from exc
    if not isinstance(data, dict):
        raise _BadInput("the body must be a JSON object")
    return data


def _strings(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _BadInput(f"{name} must be a list of strings")
    return value


def _string(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise _BadInput(f"{name} must be a non-empty string")
    return value


def _guard(handler: Callable[[web.Request], Awaitable[Any]]) -> Handler:
    """Turn a handler's result into JSON and its bad input into a 400."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            result = await handler(request)
        except _NotFound as exc:
            return _json({"error": str(exc)}, 404)
        except (ValueError, TypeError, KeyError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json(result)

    return wrapped


def add_control_routes(app: web.Application, emu: Emulator) -> None:
    """Register the control API for ``emu`` on ``app``."""

    async def stats(request: web.Request) -> Any:
        return emu.stats().to_json()

    async def users(request: web.Request) -> Any:
        return emu.users()

    async def user(request: web.Request) -> Any:
        record = emu.record(user_id=request.match_info["user_id"])
        if record is None:
            raise _NotFound("unknown user_id")
        return record

    async def device(request: web.Request) -> Any:
        record = emu.record(device_id=request.match_info["device_id"])
        if record is None:
            raise _NotFound("unknown device_id")
        return record

    async def applied(request: web.Request) -> Any:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            raise _BadInput("since must be an integer") from None
        return [entry.to_json() for entry in emu.applied[max(since, 0) :]]

    async def reset(request: web.Request) -> Any:
        emu.reset()
        return {"reset": True}

    async def get_faults(request: web.Request) -> Any:
        return emu.faults.to_json()

    async def set_faults(request: web.Request) -> Any:
        emu.set_faults(Faults.from_json(await _body(request)))
        return emu.faults.to_json()

    async def script(request: web.Request) -> Any:
        data = await _body(request)
        raw = data.get("faults")
        if not isinstance(raw, list) or not all(isinstance(f, dict) for f in raw):
            raise _BadInput("faults must be a list of objects like {'kind': 'http', 'status': 503}")
        endpoint = data.get("endpoint", "identify")
        emu.script(*(Fault.from_json(f) for f in raw), endpoint=str(endpoint))
        return {"queued": len(raw)}

    async def throttle(request: web.Request) -> Any:
        data = await _body(request)
        emu.throttle(_strings(data, "users"), _strings(data, "devices"))
        return {
            "held_users": sorted(emu.throttle_state.held_users),
            "held_devices": sorted(emu.throttle_state.held_devices),
        }

    async def unthrottle(request: web.Request) -> Any:
        data = await _body(request)
        if not data:
            emu.unthrottle()
        else:
            emu.unthrottle(_strings(data, "users"), _strings(data, "devices"))
        return {
            "held_users": sorted(emu.throttle_state.held_users),
            "held_devices": sorted(emu.throttle_state.held_devices),
        }

    async def silence(request: web.Request) -> Any:
        data = await _body(request)
        emu.silence(_strings(data, "devices"))
        return {"silenced_devices": sorted(emu.ingestor.silenced_devices)}

    async def unsilence(request: web.Request) -> Any:
        data = await _body(request)
        emu.unsilence(_strings(data, "devices") if data else None)
        return {"silenced_devices": sorted(emu.ingestor.silenced_devices)}

    async def group(request: web.Request) -> Any:
        group_type = request.match_info["group_type"]
        found = emu.group(group_type, request.match_info["group_name"])
        if found is None:
            raise _NotFound(f"unknown group {group_type}/{request.match_info['group_name']}")
        return found

    async def pause(request: web.Request) -> Any:
        emu.pause()
        return {"paused": True}

    async def resume(request: web.Request) -> Any:
        emu.resume()
        return {"paused": False}

    async def cohort(request: web.Request) -> Any:
        data = await _body(request)
        where = data.get("where")
        if not isinstance(where, dict):
            raise _BadInput("where must be an object of property: value")
        emu.define_cohort(_string(data, "cohort_id"), where)
        return {"cohort_id": data["cohort_id"]}

    async def recommendation(request: web.Request) -> Any:
        data = await _body(request)
        emu.define_recommendation(
            _string(data, "rec_id"),
            _strings(data, "items"),
            title=str(data.get("title", "")),
            is_control=bool(data.get("is_control", False)),
            source=str(data.get("source", "model")),
        )
        return {"rec_id": data["rec_id"]}

    async def computation(request: web.Request) -> Any:
        data = await _body(request)
        if "value" in data:
            constant = data["value"]
            emu.define_computation(_string(data, "comp_id"), lambda props: constant)
        else:
            emu.define_computation(
                _string(data, "comp_id"),
                property=_string(data, "property"),
                default=data.get("default"),
            )
        return {"comp_id": data["comp_id"]}

    async def prediction(request: web.Request) -> Any:
        data = await _body(request)
        emu.define_prediction(_string(data, "prediction_id"))
        return {"prediction_id": data["prediction_id"]}

    routes: list[tuple[str, str, Callable[[web.Request], Awaitable[Any]]]] = [
        ("GET", "/_emulator/stats", stats),
        ("GET", "/_emulator/users", users),
        ("GET", "/_emulator/users/{user_id}", user),
        ("GET", "/_emulator/devices/{device_id}", device),
        ("GET", "/_emulator/applied", applied),
        ("POST", "/_emulator/reset", reset),
        ("GET", "/_emulator/faults", get_faults),
        ("PUT", "/_emulator/faults", set_faults),
        ("POST", "/_emulator/faults", set_faults),
        ("POST", "/_emulator/script", script),
        ("POST", "/_emulator/throttle", throttle),
        ("POST", "/_emulator/unthrottle", unthrottle),
        ("POST", "/_emulator/silence", silence),
        ("POST", "/_emulator/unsilence", unsilence),
        ("GET", "/_emulator/groups/{group_type}/{group_name}", group),
        ("POST", "/_emulator/pause", pause),
        ("POST", "/_emulator/resume", resume),
        ("POST", "/_emulator/cohorts", cohort),
        ("POST", "/_emulator/recommendations", recommendation),
        ("POST", "/_emulator/computations", computation),
        ("POST", "/_emulator/predictions", prediction),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _guard(handler))
