"""Amplitude's user-property semantics as a pure function: the reference for the emulator.

``apply_identification(props, identification)`` returns the properties a user has after
the server applies one wire identification. Within one identification the operations run
in the server's documented order (:data:`~amplitude_async._rules.OPERATION_ORDER`), not
in the order they appear in the JSON; every operation present is applied.

Rules (DESIGN section 3):

- ``$clearAll`` removes every property; ``$unset`` removes the named ones.
- ``$set`` overwrites; ``$setOnce`` sets only a property that has no value yet.
- ``$add`` adds a number; a missing (or non-numeric) property starts from 0. Numeric
  strings are accepted on both sides, as Amplitude stores many numbers as strings.
- ``$append``/``$prepend`` add a value, or each value of a list, at the end/front; a
  missing property starts as an empty list and a scalar becomes a one-item list.
- ``$preInsert``/``$postInsert`` do the same but only with values not yet present.
- ``$remove`` drops every instance of a value (or of each value of a list).
- "Present" and "instance" compare JSON values (:func:`~amplitude_async._rules.json_key`),
  not Python ones: ``true`` is not ``1`` and ``false`` is not ``0``; ``1`` and ``1.0``
  are one number; arrays and objects compare structurally by the same rule.
- Plain properties (no ``$`` keys at all) are a ``$set``.

Lists are never mutated in place: every change builds a new list, so a shallow copy of a
property dict is an independent snapshot. The emulator relies on that to apply in place
(:func:`apply_user_properties`) and still hand out cheap snapshots.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .._rules import DEVICE_FIELDS, LOCATION_FIELDS, OPERATION_ORDER, is_number, json_key

__all__ = [
    "apply_fields",
    "apply_identification",
    "apply_user_properties",
]

_DEVICE_GROUP: Final = frozenset(DEVICE_FIELDS)
_LOCATION_GROUP: Final = frozenset(LOCATION_FIELDS)


def apply_identification(props: dict[str, Any], identification: dict[str, Any]) -> dict[str, Any]:
    """The user properties after applying one wire identification to ``props``.

    Pure: neither argument is changed. ``identification`` is the wire object, e.g.
    ``{"user_id": "user-1", "user_properties": {"$set": {"plan": "pro"}}}``.
    """
    result = dict(props)
    user_properties = identification.get("user_properties")
    if isinstance(user_properties, dict):
        apply_user_properties(result, user_properties)
    return result


def apply_user_properties(props: dict[str, Any], user_properties: dict[str, Any]) -> None:
    """Apply a wire ``user_properties`` object to ``props`` in place (lists are replaced).

    ``user_properties`` must already be valid (see ``_validation``); malformed operation
    bodies are skipped rather than raised on, since the server never fails half-way.
    """
    if not user_properties:
        return
    # Plain properties: the whole object is a $set. One key check decides it, because a
    # valid object is either all operations or all plain properties.
    first = next(iter(user_properties))
    if not first.startswith("$"):
        props.update(user_properties)
        return
    if len(user_properties) == 1:
        # The common case (one operation): skip walking the full order.
        _apply_operation(props, first, user_properties[first])
        return
    for operation in OPERATION_ORDER:
        if operation in user_properties:
            _apply_operation(props, operation, user_properties[operation])


def apply_fields(fields: dict[str, Any], identification: dict[str, Any]) -> None:
    """Apply the device/location/app fields of an identification to ``fields`` in place.

    Amplitude sends the device fields (platform, os, device, carrier) together and the
    location fields (country, region, city, dma) together: a change to one member of a
    group replaces the whole group, so stale siblings do not survive.
    """
    given = [name for name in identification if name in _DEVICE_GROUP]
    if given:
        for name in DEVICE_FIELDS:
            fields.pop(name, None)
    located = [name for name in identification if name in _LOCATION_GROUP]
    if located:
        for name in LOCATION_FIELDS:
            fields.pop(name, None)
    for name in ("app_version", "language", "paying", "start_version", *given, *located):
        value = identification.get(name)
        if value is not None:
            fields[name] = value


def _apply_operation(props: dict[str, Any], operation: str, body: Any) -> None:
    if operation == "$clearAll":
        props.clear()
        return
    if isinstance(body, dict):
        _HANDLERS[operation](props, body)


def _set(props: dict[str, Any], body: dict[str, Any]) -> None:
    props.update(body)


def _unset(props: dict[str, Any], body: dict[str, Any]) -> None:
    for name in body:
        props.pop(name, None)


def _set_once(props: dict[str, Any], body: dict[str, Any]) -> None:
    for name, value in body.items():
        if name not in props:
            props[name] = value


def _add(props: dict[str, Any], body: dict[str, Any]) -> None:
    for name, value in body.items():
        amount = _number(value)
        if amount is not None:
            base = _number(props.get(name))
            props[name] = (base if base is not None else 0) + amount


def _append(props: dict[str, Any], body: dict[str, Any]) -> None:
    for name, value in body.items():
        props[name] = _as_list(props.get(name, _MISSING)) + _values(value)


def _prepend(props: dict[str, Any], body: dict[str, Any]) -> None:
    for name, value in body.items():
        props[name] = _values(value) + _as_list(props.get(name, _MISSING))


def _pre_insert(props: dict[str, Any], body: dict[str, Any]) -> None:
    for name, value in body.items():
        current = _as_list(props.get(name, _MISSING))
        props[name] = _new_values(value, current) + current


def _post_insert(props: dict[str, Any], body: dict[str, Any]) -> None:
    for name, value in body.items():
        current = _as_list(props.get(name, _MISSING))
        props[name] = current + _new_values(value, current)


def _remove(props: dict[str, Any], body: dict[str, Any]) -> None:
    for name, value in body.items():
        if name not in props:
            continue
        # JSON-exact: Python's `in` would let true remove 1 (True == 1).
        drop = {json_key(item) for item in _values(value)}
        current = props[name]
        if isinstance(current, (list, tuple)):
            props[name] = [item for item in current if json_key(item) not in drop]
        elif json_key(current) in drop:
            # A scalar holding a removed value becomes the empty list it would be as a
            # one-item list; other scalars are left alone.
            props[name] = []


# One function per operation, looked up once: cheaper than an if-chain per operation.
_HANDLERS: Final[dict[str, Callable[[dict[str, Any], dict[str, Any]], None]]] = {
    "$set": _set,
    "$unset": _unset,
    "$setOnce": _set_once,
    "$add": _add,
    "$append": _append,
    "$prepend": _prepend,
    "$preInsert": _pre_insert,
    "$postInsert": _post_insert,
    "$remove": _remove,
}


class _Missing:
    """Marks an absent property (None is a real value)."""


_MISSING: Final = _Missing()


def _values(value: Any) -> list[Any]:
    """A list operand as its values; a scalar as one value.

    Tuples count as lists: callers in Python (the client's ``Identify``) may pass them,
    and on the wire they are JSON arrays.
    """
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _as_list(current: Any) -> list[Any]:
    if current is _MISSING:
        return []
    return list(current) if isinstance(current, (list, tuple)) else [current]


def _new_values(value: Any, current: list[Any]) -> list[Any]:
    """The values of ``value`` not in ``current`` (nor repeated), in their order.

    JSON-exact: true is new in [1], though Python's ``True in [1]`` says otherwise.
    """
    seen = {json_key(item) for item in current}
    out: list[Any] = []
    for item in _values(value):
        key = json_key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _number(value: Any) -> int | float | None:
    if is_number(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        if parsed != parsed or parsed in (float("inf"), float("-inf")):
            return None
        return int(parsed) if parsed.is_integer() and "." not in value else parsed
    return None
