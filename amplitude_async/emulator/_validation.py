"""Validation of decoded identifications and events, as Amplitude documents it.

Produces Amplitude's 400 shape: which items (by index in the request's array) miss a
required field, carry an invalid one, or have no id of a valid length. A request with
any bad item is refused whole, so nothing of it is applied; the official SDKs then fail
the named items and resend the rest (amplitude/Amplitude-Python processor.py,
``invalid_or_silenced_index``; analytics-go ``invalidOrSilencedEventIndexes``;
Amplitude-TypeScript analytics-core ``handleInvalidResponse``).

Ids (HTTP V2 API docs, "Device IDs and User IDs minimum length"): an id on the
documented invalid list ("null", "", ...) makes the item invalid; an id shorter than
``min_id_length`` is *dropped* from the item ("the ID value is removed from the
event"), and only an item left with no id at all is refused, under
``events_with_invalid_id_lengths`` (the body Amplitude returned in
amplitude/Amplitude-TypeScript#81).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from .._rules import FIELDS, MAX_JSON_INT, OPERATIONS, id_problem, int_problem, value_problem

__all__ = [
    "INVALID_FIELDS_TEXT",
    "INVALID_ID_LENGTH_TEXT",
    "Problems",
    "check_identifications",
    "identification_problem",
    "short_ids",
]

_FIELD_NAMES: Final = frozenset(FIELDS)
_SCALARS: Final = (str, int, bool)
_IDS: Final = ("user_id", "device_id")
# Property values sit at depth 2 (user_properties -> operation -> value), the same
# depth the client's Identify checks at, so both agree on "nesting at most 40 deep".
_VALUE_DEPTH: Final = 2
#: The ``error`` texts: one of the values the HTTP V2 docs list for a 400, and the text
#: Amplitude sent with ``events_with_invalid_id_lengths`` (Amplitude-TypeScript#81).
INVALID_FIELDS_TEXT: Final = "Invalid field values on some events"
INVALID_ID_LENGTH_TEXT: Final = "Invalid id length for user_id or device_id"


@dataclass
class Problems:
    """What is wrong with a request's items, keyed by field name, in Amplitude's shape."""

    missing: dict[str, list[int]] = field(default_factory=dict)
    invalid: dict[str, list[int]] = field(default_factory=dict)
    id_lengths: dict[str, list[int]] = field(default_factory=dict)
    #: One human-readable reason per bad item (index -> message).
    reasons: dict[int, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.reasons)

    def add(self, index: int, kind: str, name: str, reason: str) -> None:
        if kind == "missing":
            target = self.missing
        elif kind == "id_length":
            target = self.id_lengths
        else:
            target = self.invalid
        target.setdefault(name, []).append(index)
        self.reasons.setdefault(index, reason)

    def body(self) -> dict[str, Any]:
        """The 400 body: Amplitude's fields (empty ones left out, as Amplitude does in
        the one body on record), plus ``problems`` (index -> reason), which is the
        emulator's own addition so a failing test says why."""
        only_lengths = not self.missing and not self.invalid
        body: dict[str, Any] = {
            "code": 400,
            "error": INVALID_ID_LENGTH_TEXT if only_lengths else INVALID_FIELDS_TEXT,
        }
        if self.invalid:
            body["events_with_invalid_fields"] = self.invalid
        if self.missing:
            body["events_with_missing_fields"] = self.missing
        if self.id_lengths:
            body["events_with_invalid_id_lengths"] = self.id_lengths
        body["problems"] = {str(i): reason for i, reason in sorted(self.reasons.items())}
        return body


def check_identifications(
    items: list[Any], min_id_length: int, *, require_event_type: bool = False
) -> Problems:
    """Check every item; an empty (falsy) :class:`Problems` means all are valid."""
    problems = Problems()
    for index, item in enumerate(items):
        found = identification_problem(item, min_id_length, require_event_type)
        if found is not None:
            problems.add(index, *found)
    return problems


def short_ids(item: dict[str, Any], min_id_length: int) -> tuple[str, ...]:
    """The id fields of a *valid* item that are too short, which the server drops."""
    user_id = item.get("user_id")
    device_id = item.get("device_id")
    # The hot path: every id long enough (validation made them strings or None).
    user_short = isinstance(user_id, str) and len(user_id) < min_id_length
    device_short = isinstance(device_id, str) and len(device_id) < min_id_length
    if not user_short and not device_short:
        return ()
    return ("user_id",) * user_short + ("device_id",) * device_short


def identification_problem(
    item: Any, min_id_length: int, require_event_type: bool = False
) -> tuple[str, str, str] | None:
    """``(kind, field, reason)`` for the first problem of one item, or None if it is valid.

    ``kind`` is ``"missing"``, ``"invalid"`` or ``"id_length"``; ``field`` names the
    offending field. ``require_event_type`` checks an HTTP V2 event (``event_type``,
    ``time``) rather than an Identify API identification.
    """
    if not isinstance(item, dict):
        return ("invalid", "event", f"must be a JSON object, got {_json_type(item)}")
    if require_event_type:
        found = _event_problem(item)
        if found is not None:
            return found
        if item.get("event_type") == "$groupidentify":
            # A group identify names groups, not necessarily a user (Amplitude-Python
            # client.group_identify sends only the event options the caller gives).
            return _group_identify_problem(item, min_id_length)
    found = _ids_problem(item, min_id_length)
    if found is not None:
        return found
    return _body_problem(item, "user_properties")


def _event_problem(item: dict[str, Any]) -> tuple[str, str, str] | None:
    event_type = item.get("event_type")
    if event_type is None:
        return ("missing", "event_type", "event_type is required")
    if not isinstance(event_type, str) or not event_type:
        return ("invalid", "event_type", "event_type must be a non-empty string")
    # HTTP V2 API docs, "Set time values": milliseconds since epoch; "any other format
    # (such as ISO format) results in a 400".
    time = item.get("time")
    if time is not None and (isinstance(time, bool) or not isinstance(time, int) or time < 0):
        return ("invalid", "time", f"time must be milliseconds since epoch, got {time!r:.40}")
    return None


def _ids_problem(item: dict[str, Any], min_id_length: int) -> tuple[str, str, str] | None:
    present = [(name, item[name]) for name in _IDS if item.get(name) is not None]
    if not present:
        return ("missing", "user_id", "an identification needs a user_id or a device_id")
    short: tuple[str, str] | None = None
    usable = False
    for name, value in present:
        # min_length=1: placeholders (the empty string among them) and non-strings here;
        # length against min_id_length below, since a short id is dropped, not refused.
        problem = id_problem(value, name, 1)
        if problem:
            return ("invalid", name, problem)
        if len(value) < min_id_length:
            short = short or (
                name,
                f"{name} {value!r} is shorter than min_id_length={min_id_length}",
            )
        else:
            usable = True
    if not usable and short is not None:
        return ("id_length", *short)
    return None


def _group_identify_problem(
    item: dict[str, Any], min_id_length: int
) -> tuple[str, str, str] | None:
    groups = item.get("groups")
    if not isinstance(groups, dict) or not groups:
        return ("missing", "groups", "a $groupidentify event needs a groups object")
    if any(item.get(name) is not None for name in _IDS):
        found = _ids_problem(item, min_id_length)
        if found is not None:
            return found
    return _body_problem(item, "group_properties")


def _body_problem(item: dict[str, Any], properties: str) -> tuple[str, str, str] | None:
    user_id = item.get("user_id")
    device_id = item.get("device_id")
    user_properties = item.get(properties)
    if user_properties is not None:
        problem = user_properties_problem(user_properties)
        if problem:
            return ("invalid", properties, problem.replace("user_properties", properties))
    groups = item.get("groups")
    if groups is not None and not isinstance(groups, dict):
        return ("invalid", "groups", f"groups must be a JSON object, got {_json_type(groups)}")
    standard = (user_id is not None) + (device_id is not None) + (user_properties is not None)
    if len(item) <= standard + (groups is not None):
        # Only ids and properties: no device/location fields to check (the hot path).
        return None
    for name in item.keys() & _FIELD_NAMES:
        value = item[name]
        if value is not None and not isinstance(value, str):
            if name == "paying" and isinstance(value, bool):
                continue
            return ("invalid", name, f"{name} must be a string, got {_json_type(value)}")
    return None


def user_properties_problem(user_properties: Any) -> str | None:
    """Why a wire ``user_properties`` object is invalid, or None."""
    if not isinstance(user_properties, dict):
        return f"user_properties must be a JSON object, got {_json_type(user_properties)}"
    operations = 0
    for key in user_properties:
        if key.startswith("$"):
            operations += 1
            if key not in OPERATIONS:
                return f"unknown operation {key!r}"
    if operations == 0:
        return _values_problem(user_properties)
    if operations != len(user_properties):
        return "operations cannot be mixed with plain properties; put them inside $set"
    for operation, body in user_properties.items():
        if operation == "$clearAll":
            continue
        if not isinstance(body, dict):
            return f"{operation} must map property names to values, got {_json_type(body)}"
        if operation == "$add":
            for name, value in body.items():
                if not _is_addable(value):
                    return f"$add {name!r} needs a number, got {_json_type(value)}"
        elif operation != "$unset":
            problem = _values_problem(body)
            if problem:
                return f"{operation}: {problem}"
    return None


def _values_problem(body: dict[str, Any]) -> str | None:
    for name, value in body.items():
        # Scalars are by far the most common value; skip the recursive check for them.
        if type(value) in _SCALARS:
            if type(value) is int and not -MAX_JSON_INT <= value <= MAX_JSON_INT:
                return f"property {name!r}: {int_problem()}"
            continue
        problem = value_problem(value, _VALUE_DEPTH)
        if problem:
            return f"property {name!r}: {problem}"
    return None


def _is_addable(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -MAX_JSON_INT <= value <= MAX_JSON_INT
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
