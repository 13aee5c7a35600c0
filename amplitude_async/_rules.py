"""Amplitude's documented rules for identifications, shared by the client and the emulator.

One place for the facts of DESIGN section 3, so that the client's validation and the
emulator's cannot drift apart.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Hashable
from typing import Any, Final

#: The user-property operations, in the order the server applies them within one
#: identification.
OPERATION_ORDER: Final = (
    "$clearAll",
    "$unset",
    "$set",
    "$setOnce",
    "$add",
    "$append",
    "$prepend",
    "$preInsert",
    "$postInsert",
    "$remove",
)
OPERATIONS: Final = frozenset(OPERATION_ORDER)

#: Top-level fields of an identification besides ids, user_properties and groups.
DEVICE_FIELDS: Final = (
    "platform",
    "os_name",
    "os_version",
    "device_brand",
    "device_manufacturer",
    "device_model",
    "carrier",
)
LOCATION_FIELDS: Final = ("country", "region", "city", "dma")
OTHER_FIELDS: Final = ("app_version", "language", "paying", "start_version")
FIELDS: Final = DEVICE_FIELDS + LOCATION_FIELDS + OTHER_FIELDS
IDENTIFICATION_KEYS: Final = frozenset(
    ("user_id", "device_id", "user_properties", "groups", *FIELDS)
)
#: Annotations a line of ours may carry besides the identification (the spool's, and
#: ``import --failed-out``'s); ``Identify.from_dict`` ignores them.
SPOOL_KEY: Final = "_spool"
FAILURE_KEY: Final = "_failure"
ANNOTATION_KEYS: Final = frozenset((SPOOL_KEY, FAILURE_KEY))

#: Ids Amplitude rejects as invalid (compared case-insensitively, surrounding blanks
#: ignored): exactly the "Invalid IDs" list of the HTTP V2 API docs, section "Device
#: IDs and User IDs minimum length" (amplitude-dev-center docs/analytics/apis/
#: http-v2-api.md), which the Identify API inherits. "lmy47d" is an Android build id
#: that some devices report as their serial; "" is the empty string.
PLACEHOLDER_IDS: Final = frozenset(
    (
        "anonymous",
        "nil",
        "none",
        "null",
        "n/a",
        "na",
        "undefined",
        "unknown",
        "",
        "00000000-0000-0000-0000-000000000000",
        "{}",
        "lmy47d",
        "0",
        "-1",
    )
)
DEFAULT_MIN_ID_LENGTH: Final = 5
#: user_properties may nest at most this deep.
MAX_DEPTH: Final = 40
#: JSON numbers are doubles at Amplitude: an integer past this has no value there (and
#: $add-ing it to a float raises OverflowError).
MAX_JSON_INT: Final = int(sys.float_info.max)
#: Safe caps for one request (HTTP V2's documented limits).
MAX_ITEMS_PER_REQUEST: Final = 2000
MAX_BODY_BYTES: Final = 1_000_000
#: The value sent for operations that take no value ($unset, $clearAll).
NO_VALUE: Final = "-"

INVALID_API_KEY_TEXT: Final = "invalid_api_key"
MISSING_EVENT_TEXT: Final = "missing_event"


def text_problem(value: str) -> str | None:
    """Why a string cannot travel as JSON text (UTF-8), or None if it can."""
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{value[:20]!r} is not valid Unicode text (a lone surrogate cannot be sent as JSON)"
    return None


def id_problem(value: object, kind: str, min_length: int = DEFAULT_MIN_ID_LENGTH) -> str | None:
    """Why ``value`` is not an acceptable ``user_id``/``device_id``, or None if it is."""
    if not isinstance(value, str):
        return f"{kind} must be a string, got {type(value).__name__}"
    problem = text_problem(value)
    if problem:
        return f"{kind}: {problem}"
    if value.strip().lower() in PLACEHOLDER_IDS:
        return f"{kind} {value!r} is a placeholder id that Amplitude rejects"
    if len(value) < min_length:
        return f"{kind} {value!r} is shorter than min_id_length={min_length}"
    return None


def value_problem(value: Any, depth: int = 1, *, in_list: bool = False) -> str | None:
    """Why ``value`` cannot be a user property value, or None if it can.

    JSON scalars, lists of scalars or objects (no nested arrays), and objects with
    string keys, nested at most :data:`MAX_DEPTH` deep.
    """
    if isinstance(value, str):
        return text_problem(value)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -MAX_JSON_INT <= value <= MAX_JSON_INT else int_problem()
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return f"{value!r} is not a JSON number"
    if depth > MAX_DEPTH:
        return f"nesting deeper than {MAX_DEPTH} levels"
    if isinstance(value, (list, tuple)):
        if in_list:
            return "nested arrays are not allowed"
        for item in value:
            problem = value_problem(item, depth + 1, in_list=True)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"object keys must be strings, got {type(key).__name__}"
            if not key.isascii() and text_problem(key):
                return f"object key {text_problem(key)}"
            problem = value_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"{type(value).__name__} is not a JSON value"


def int_problem() -> str:
    return "an integer too large for a JSON number (Amplitude's numbers are doubles)"


def is_number(value: object) -> bool:
    """True for int and finite float, not bool (which $add must refuse)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def json_key(value: Any, *, exact_numbers: bool = False) -> Hashable:
    """A hashable identity for a JSON value: two values get equal keys exactly when they
    are the same JSON value, which Python's ``==`` does not decide (``True == 1 == 1.0``).

    - A boolean never equals a number; ``null`` only equals ``null``.
    - Numbers compare by value (``1`` and ``1.0`` are one JSON number) unless
      ``exact_numbers``, which also tells ints from floats: for callers that must not
      rely on the server treating ``1`` and ``1.0`` alike.
    - Arrays (lists or tuples) compare item by item in order, objects by their keys and
      values whatever the key order; both with this same rule, recursively.
    """
    if value is None or type(value) is str:
        return value
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        if exact_numbers and isinstance(value, float):
            return ("float", value)
        return value
    if isinstance(value, (list, tuple)):
        return ("array", tuple(json_key(item, exact_numbers=exact_numbers) for item in value))
    if isinstance(value, dict):
        return (
            "object",
            frozenset((k, json_key(v, exact_numbers=exact_numbers)) for k, v in value.items()),
        )
    if isinstance(value, str):
        return str(value)
    # Not a JSON value (validation refuses these): only equal to an equal value of its type.
    return ("other", type(value), value)
