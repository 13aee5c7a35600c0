"""Validation of decoded identifications, as Amplitude documents it.

Produces the HTTP V2 error shape: which items (by index in the request's array) miss a
required field or carry an invalid one. A request with any bad item is refused whole,
so nothing of it is applied and the client can narrow down and resend the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from .._rules import FIELDS, MAX_JSON_INT, OPERATIONS, id_problem, int_problem, value_problem

__all__ = ["Problems", "check_identifications", "identification_problem"]

_FIELD_NAMES: Final = frozenset(FIELDS)
_SCALARS: Final = (str, int, bool)
# Property values sit at depth 2 (user_properties -> operation -> value), the same
# depth the client's Identify checks at, so both agree on "nesting at most 40 deep".
_VALUE_DEPTH: Final = 2


@dataclass
class Problems:
    """What is wrong with a request's items, keyed by field name, in the HTTP V2 shape."""

    missing: dict[str, list[int]] = field(default_factory=dict)
    invalid: dict[str, list[int]] = field(default_factory=dict)
    #: One human-readable reason per bad item (index -> message).
    reasons: dict[int, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.reasons)

    def add(self, index: int, kind: str, name: str, reason: str) -> None:
        target = self.missing if kind == "missing" else self.invalid
        target.setdefault(name, []).append(index)
        self.reasons.setdefault(index, reason)

    def body(self) -> dict[str, Any]:
        """The 400 body: the HTTP V2 fields plus ``problems`` (index -> reason)."""
        shown = sorted(self.reasons.items())[:5]
        summary = "; ".join(f"item {i}: {reason}" for i, reason in shown)
        more = len(self.reasons) - len(shown)
        if more > 0:
            summary += f"; and {more} more"
        return {
            "code": 400,
            "error": f"Invalid identifications: {summary}",
            "events_with_invalid_fields": self.invalid,
            "events_with_missing_fields": self.missing,
            "problems": {str(i): reason for i, reason in sorted(self.reasons.items())},
        }


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


def identification_problem(
    item: Any, min_id_length: int, require_event_type: bool = False
) -> tuple[str, str, str] | None:
    """``(kind, field, reason)`` for the first problem of one item, or None if it is valid.

    ``kind`` is ``"missing"`` or ``"invalid"``; ``field`` names the offending field.
    """
    if not isinstance(item, dict):
        return ("invalid", "event", f"must be a JSON object, got {_json_type(item)}")
    if require_event_type:
        event_type = item.get("event_type")
        if event_type is None:
            return ("missing", "event_type", "event_type is required")
        if not isinstance(event_type, str) or not event_type:
            return ("invalid", "event_type", "event_type must be a non-empty string")
    user_id = item.get("user_id")
    device_id = item.get("device_id")
    if user_id is None and device_id is None:
        return ("missing", "user_id", "an identification needs a user_id or a device_id")
    if user_id is not None:
        problem = id_problem(user_id, "user_id", min_id_length)
        if problem:
            return ("invalid", "user_id", problem)
    if device_id is not None:
        problem = id_problem(device_id, "device_id", min_id_length)
        if problem:
            return ("invalid", "device_id", problem)
    user_properties = item.get("user_properties")
    if user_properties is not None:
        problem = user_properties_problem(user_properties)
        if problem:
            return ("invalid", "user_properties", problem)
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
