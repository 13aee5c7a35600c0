"""The ingestion core: decoded request in, :class:`Reply` out. No HTTP, no I/O.

Order of checks for one request, as a client sees them: API key (400 "Invalid API key:
..."), identification present and JSON (400 ``missing_event``), item count (413),
per-item validation (400 with indices, nothing applied), silenced devices (400 with
``silenced_events``), throttling (429 naming the identities, nothing applied), then
every item is applied in array order (200).

Kept apart from the aiohttp layer so the benchmark can drive it directly and the server
stays a thin adapter.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from .._rules import (
    DEFAULT_MIN_ID_LENGTH,
    MAX_BODY_BYTES,
    MAX_ITEMS_PER_REQUEST,
    MISSING_EVENT_TEXT,
)
from ._decode import DecodeError, decode_json
from ._state import State
from ._throttle import Rejection, Throttle
from ._validation import check_identifications, short_ids, user_properties_problem

__all__ = ["Ingestor", "Limits", "Reply", "error_reply", "json_reply"]

_encode = msgspec.json.encode


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer: status, body bytes and content type."""

    status: int
    body: bytes
    content_type: str = "application/json"
    #: Seconds for a ``Retry-After`` header (scripted faults only).
    retry_after: float | None = None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def json_reply(status: int, body: Any) -> Reply:
    return Reply(status, _encode(body))


def error_reply(status: int, error: str, **extra: Any) -> Reply:
    """Amplitude's error shape: ``{"code": status, "error": ..., **extra}``."""
    return json_reply(status, {"code": status, "error": error, **extra})


SUCCESS: Final = Reply(200, b"success", "text/plain")
#: The official SDKs recognise a wrong key only by an ``error`` that starts with
#: "Invalid API key:" (Amplitude-Python processor.py ``res.error.startswith``;
#: analytics-go ``strings.HasPrefix(response.Error, "Invalid API key:")``;
#: Amplitude-TypeScript analytics-core ``INVALID_API_KEY``). What Amplitude writes after
#: the colon is not documented; the emulator never echoes the key (a secret).
INVALID_API_KEY_TEXT: Final = "Invalid API key: the key is not known to this emulator"
INVALID_API_KEY: Final = error_reply(400, INVALID_API_KEY_TEXT)
MISSING_EVENT: Final = error_reply(400, MISSING_EVENT_TEXT)
TOO_LARGE: Final = error_reply(413, "Payload too large")
THROTTLED_TEXT: Final = "Too many requests for some devices and users"
#: HTTP V2 API docs, 400 "Silenced devices example".
SILENCED_TEXT: Final = "Events silenced for device_id"
_GROUP_IDENTIFY: Final = "$groupidentify"
_IDENTIFY: Final = "$identify"
_ENDPOINTS: Final = ("identify", "httpapi", "batch")


@dataclass(frozen=True, slots=True)
class Limits:
    """What one endpoint accepts: items and body bytes per request."""

    max_items: int
    max_body_bytes: int


class Ingestor:
    """Validates, throttles and applies Identify, Group Identify, HTTP V2 and Batch requests."""

    def __init__(
        self,
        state: State,
        throttles: Throttle | Mapping[str, Throttle],
        *,
        api_keys: Collection[str] | None,
        max_items: int = MAX_ITEMS_PER_REQUEST,
        limits: Mapping[str, Limits] | None = None,
        min_id_length: int = DEFAULT_MIN_ID_LENGTH,
    ) -> None:
        """``throttles`` and ``limits`` by endpoint ("identify", "httpapi", "batch"); one
        :class:`Throttle`, or ``max_items`` alone, stands for every endpoint."""
        self.state = state
        if isinstance(throttles, Throttle):
            throttles = dict.fromkeys(_ENDPOINTS, throttles)
        self.throttles = throttles
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        if limits is None:
            limits = dict.fromkeys(_ENDPOINTS, Limits(max_items, MAX_BODY_BYTES))
        self.limits = limits
        self.min_id_length = min_id_length
        #: Device ids whose events are refused as silenced (``Emulator.silence``).
        self.silenced_devices: set[str] = set()

    def key_ok(self, api_key: Any) -> bool:
        if not isinstance(api_key, str) or not api_key:
            return False
        return self.api_keys is None or api_key in self.api_keys

    # -- /identify -------------------------------------------------------------------

    def identify_form(self, form: Mapping[str, Any], request: int) -> Reply:
        """``/identify`` with fields from a form, a query string or a JSON object."""
        if not self.key_ok(form.get("api_key")):
            return INVALID_API_KEY
        items = _identification_items(form.get("identification"))
        if items is None:
            return MISSING_EVENT
        min_id_length = self._min_id_length(form.get("options"))
        if min_id_length is None:
            return error_reply(400, "options must be a JSON object with min_id_length >= 1")
        return self._ingest("identify", items, request, min_id_length, events=False)

    # -- /groupidentify -----------------------------------------------------------------

    def group_identify_form(self, form: Mapping[str, Any]) -> Reply:
        """``/groupidentify``: ``identification`` objects with group_type, group_value and
        group_properties (Group Identify API docs). Not throttled: the docs give limits
        per request (1,024 identifications) but no rate."""
        if not self.key_ok(form.get("api_key")):
            return INVALID_API_KEY
        items = _identification_items(form.get("identification"))
        if items is None:
            return MISSING_EVENT
        if len(items) > 1024:
            return TOO_LARGE
        for index, item in enumerate(items):
            problem = _group_item_problem(item)
            if problem:
                return error_reply(400, f"Invalid group identification {index}: {problem}")
        for item in items:
            self.state.apply_group(
                item["group_type"], item["group_value"], item.get("group_properties")
            )
        return SUCCESS

    # -- /2/httpapi and /batch -----------------------------------------------------

    def http_v2(self, endpoint: str, payload: Any, request: int, size: int) -> Reply:
        """``/2/httpapi`` and ``/batch``: ``{"api_key", "events", "options"}``."""
        if not isinstance(payload, dict):
            return error_reply(400, "Invalid JSON request body")
        if "api_key" not in payload:
            return error_reply(400, "Request missing required field", missing_field="api_key")
        if not self.key_ok(payload["api_key"]):
            return INVALID_API_KEY
        events = payload.get("events")
        if not isinstance(events, list) or not events:
            return error_reply(400, "Request missing required field", missing_field="events")
        min_id_length = self._min_id_length(payload.get("options"))
        if min_id_length is None:
            return error_reply(400, "options must be a JSON object with min_id_length >= 1")
        reply = self._ingest(endpoint, events, request, min_id_length, events=True)
        if reply is not SUCCESS:
            return reply
        return json_reply(
            200,
            {
                "code": 200,
                "events_ingested": len(events),
                "payload_size_bytes": size,
                "server_upload_time": int(time.time() * 1000),
            },
        )

    # -- shared ----------------------------------------------------------------------

    def _ingest(
        self, endpoint: str, items: list[Any], request: int, min_id_length: int, *, events: bool
    ) -> Reply:
        state = self.state
        if len(items) > self.limits[endpoint].max_items:
            return TOO_LARGE
        problems = check_identifications(items, min_id_length, require_event_type=events)
        if problems:
            state.rejected_items += len(problems.reasons)
            return json_reply(400, problems.body())
        if self.silenced_devices:
            silenced = self._silenced(items)
            if silenced is not None:
                return silenced
        # HTTP V2 API docs: an id that is too short "is removed from the event"; the
        # item keeps its other, valid id (validation refused items left with none).
        for index, item in enumerate(items):
            short = short_ids(item, min_id_length)
            if short:
                items[index] = {key: value for key, value in item.items() if key not in short}
        users: dict[str, int] = {}
        devices: dict[str, int] = {}
        for item in items:
            user_id = item.get("user_id")
            if user_id is not None:
                users[user_id] = users.get(user_id, 0) + 1
            device_id = item.get("device_id")
            if device_id is not None:
                devices[device_id] = devices.get(device_id, 0) + 1
        throttle = self.throttles[endpoint]
        rejection = throttle.check(users, devices)
        if rejection is not None:
            state.throttled_requests += 1
            state.throttled_items += len(items)
            return self._throttled(throttle, items, rejection)
        if not events:
            state.apply(request, items)
            return SUCCESS
        # HTTP V2 API docs: user_properties on any event update the user, and any event
        # creates the user; a $groupidentify updates its groups, not the user.
        users_events: list[tuple[int, dict[str, Any]]] = []
        for index, item in enumerate(items):
            event_type = item.get("event_type")
            if event_type == _GROUP_IDENTIFY:
                state.apply_group_event(item)
            else:
                users_events.append((index, item))
            if event_type != _IDENTIFY:
                state.events_ingested += 1
        state.apply_indexed(request, users_events)
        return SUCCESS

    def _silenced(self, items: list[Any]) -> Reply | None:
        indices = [
            index
            for index, item in enumerate(items)
            if item.get("device_id") in self.silenced_devices
        ]
        if not indices:
            return None
        self.state.rejected_items += len(indices)
        devices = sorted({items[i]["device_id"] for i in indices})
        # The documented body also names throttling; nothing is throttled here.
        return json_reply(
            400,
            {
                "code": 400,
                "error": SILENCED_TEXT,
                "eps_threshold": self.throttles["httpapi"].eps_threshold,
                "exceeded_daily_quota_devices": {},
                "silenced_devices": devices,
                "silenced_events": indices,
                "throttled_devices": {},
                "throttled_events": [],
            },
        )

    def _throttled(self, throttle: Throttle, items: list[Any], rejection: Rejection) -> Reply:
        body: dict[str, Any] = {
            "code": 429,
            "error": THROTTLED_TEXT,
            "eps_threshold": throttle.eps_threshold,
            "throttled_devices": rejection.devices,
            "throttled_users": rejection.users,
            "throttled_events": [
                index
                for index, item in enumerate(items)
                if rejection.names(item.get("user_id"), item.get("device_id"))
            ],
        }
        if rejection.quota_users or rejection.quota_devices:
            body["exceeded_daily_quota_users"] = rejection.quota_users
            body["exceeded_daily_quota_devices"] = rejection.quota_devices
        return json_reply(429, body)

    def _min_id_length(self, options: Any) -> int | None:
        if options is None:
            return self.min_id_length
        if isinstance(options, str):
            try:
                options = decode_json(options)
            except DecodeError:
                return None
        if not isinstance(options, dict):
            return None
        value = options.get("min_id_length", self.min_id_length)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return None
        return value


def _identification_items(raw: Any) -> list[Any] | None:
    """The identification field as a list of items, or None when it is missing or bad."""
    if raw is None:
        return None
    if isinstance(raw, (str, bytes)):
        try:
            raw = decode_json(raw)
        except DecodeError:
            return None
    if isinstance(raw, dict):
        return [raw]
    if isinstance(raw, list) and raw:
        return raw
    return None


def _group_item_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "must be a JSON object"
    for name in ("group_type", "group_value"):
        value = item.get(name)
        if not isinstance(value, str) or not value:
            return f"{name} must be a non-empty string"
    properties = item.get("group_properties")
    if properties is not None:
        return user_properties_problem(properties)
    return None
