"""The ingestion core: decoded request in, :class:`Reply` out. No HTTP, no I/O.

Order of checks for one request, as a client sees them: API key (400
``invalid_api_key``), identification present and JSON (400 ``missing_event``), item count
(413), per-item validation (400 with indices, nothing applied), throttling (429 naming
the identities, nothing applied), then every item is applied in array order (200).

Kept apart from the aiohttp layer so the benchmark can drive it directly and the server
stays a thin adapter.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from .._rules import DEFAULT_MIN_ID_LENGTH, INVALID_API_KEY_TEXT, MISSING_EVENT_TEXT
from ._decode import DecodeError, decode_json
from ._state import State
from ._throttle import Rejection, Throttle
from ._validation import check_identifications

__all__ = ["Ingestor", "Reply", "error_reply", "json_reply"]

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
INVALID_API_KEY: Final = error_reply(400, INVALID_API_KEY_TEXT)
MISSING_EVENT: Final = error_reply(400, MISSING_EVENT_TEXT)
TOO_LARGE: Final = error_reply(413, "Payload too large")
THROTTLED_TEXT: Final = "Too many requests for some devices and users"


class Ingestor:
    """Validates, throttles and applies identify and HTTP V2 requests."""

    def __init__(
        self,
        state: State,
        throttle: Throttle,
        *,
        api_keys: Collection[str] | None,
        max_items: int,
        min_id_length: int = DEFAULT_MIN_ID_LENGTH,
    ) -> None:
        self.state = state
        self.throttle = throttle
        self.api_keys = frozenset(api_keys) if api_keys is not None else None
        self.max_items = max_items
        self.min_id_length = min_id_length

    def key_ok(self, api_key: Any) -> bool:
        if not isinstance(api_key, str) or not api_key:
            return False
        return self.api_keys is None or api_key in self.api_keys

    # -- /identify -------------------------------------------------------------------

    def identify_form(self, form: Mapping[str, Any], request: int) -> Reply:
        """``/identify`` with fields from a form, a query string or a JSON object."""
        if not self.key_ok(form.get("api_key")):
            return INVALID_API_KEY
        raw = form.get("identification")
        if raw is None:
            return MISSING_EVENT
        if isinstance(raw, (str, bytes)):
            try:
                raw = decode_json(raw)
            except DecodeError:
                return MISSING_EVENT
        if isinstance(raw, dict):
            items: list[Any] = [raw]
        elif isinstance(raw, list) and raw:
            items = raw
        else:
            return MISSING_EVENT
        min_id_length = self._min_id_length(form.get("options"))
        if min_id_length is None:
            return error_reply(400, "options must be a JSON object with min_id_length >= 1")
        return self._ingest(items, request, min_id_length, identify_only=False)

    # -- /2/httpapi and /batch -----------------------------------------------------

    def http_v2(self, payload: Any, request: int, size: int) -> Reply:
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
        reply = self._ingest(events, request, min_id_length, identify_only=True)
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
        self, items: list[Any], request: int, min_id_length: int, *, identify_only: bool
    ) -> Reply:
        state = self.state
        if len(items) > self.max_items:
            return TOO_LARGE
        problems = check_identifications(items, min_id_length, require_event_type=identify_only)
        if problems:
            state.rejected_items += len(problems.reasons)
            return json_reply(400, problems.body())
        users: dict[str, int] = {}
        devices: dict[str, int] = {}
        for item in items:
            user_id = item.get("user_id")
            if user_id is not None:
                users[user_id] = users.get(user_id, 0) + 1
            device_id = item.get("device_id")
            if device_id is not None:
                devices[device_id] = devices.get(device_id, 0) + 1
        rejection = self.throttle.check(users, devices)
        if rejection is not None:
            state.throttled_requests += 1
            state.throttled_items += len(items)
            return self._throttled(items, rejection)
        if identify_only:
            identifies = [item for item in items if item.get("event_type") == "$identify"]
            state.events_ingested += len(items) - len(identifies)
            state.apply(request, identifies)
        else:
            state.apply(request, items)
        return SUCCESS

    def _throttled(self, items: list[Any], rejection: Rejection) -> Reply:
        body: dict[str, Any] = {
            "code": 429,
            "error": THROTTLED_TEXT,
            "eps_threshold": self.throttle.eps_threshold,
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
