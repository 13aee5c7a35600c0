"""Checking what a caller hands ``Identify``: ids, groups, and the argument types.

The compiled build checks a parameter annotated ``str`` itself, with its own TypeError;
the protocols here are what ``Identify``'s parameters say instead (a type checker still
flags the same calls), so that these checks, and their ValidationError, decide in both
builds. Bad input is refused here, before anything is queued.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Any, Final, Protocol

from ._errors import ValidationError
from ._plain import plain
from ._rules import DEVICE_FIELDS, LOCATION_FIELDS, OTHER_FIELDS, PLACEHOLDER_IDS, id_problem

__all__ = [
    "FIELD_ORDER",
    "METHOD",
    "Number",
    "Text",
    "check_id",
    "checked_groups",
    "plain_id",
    "short_repr",
]


class Text(Protocol):
    """A ``str`` argument, as a type checker sees it: ``str`` and its subclasses match.

    Identify's parameters say this rather than ``str`` for the compiled build: mypyc
    checks a ``str`` parameter itself and raises its own TypeError, while a protocol it
    leaves to the code, so a wrong type gets our ValidationError in both builds.
    """

    def casefold(self) -> str: ...

    def isidentifier(self) -> bool: ...


class Number(Protocol):
    """An ``int`` or ``float`` argument, as a type checker sees it (see :class:`Text`)."""

    def __float__(self) -> float: ...

    def __abs__(self) -> Any: ...


# Builder method name for each wire operation, used in messages.
METHOD: Final = {
    "$set": "set",
    "$setOnce": "set_once",
    "$add": "add",
    "$append": "append",
    "$prepend": "prepend",
    "$preInsert": "pre_insert",
    "$postInsert": "post_insert",
    "$remove": "remove",
    "$unset": "unset",
    "$clearAll": "clear_all",
}


# An ASCII id not starting or ending in whitespace strips to itself: it is a placeholder
# only if its length and its last character are those of one (in either case) and it
# is one. The common id fails the first two, so it skips lower() and the set lookup.
def _placeholder_last_characters() -> dict[int, str]:
    """Length -> the last characters (both cases) of the placeholder ids of that length."""
    out: dict[int, str] = {}
    for placeholder in PLACEHOLDER_IDS:
        if placeholder:
            last = placeholder[-1]
            out[len(placeholder)] = out.get(len(placeholder), "") + last.lower() + last.upper()
    return out


_PLACEHOLDER_LAST: Final = _placeholder_last_characters()
# reprs in error messages: bounded in depth and length, so that a value nested a
# thousand deep gets a ValidationError, not a RecursionError from repr().
_short = reprlib.Repr()
_short.maxlevel = 3
_short.maxstring = 60
_short.maxother = 60

short_repr = _short.repr


def plain_id(value: object) -> bool:
    """An id that needs no further check: ASCII text without surrounding whitespace
    (ASCII whitespace is all at or below " ") that is no placeholder."""
    if type(value) is not str or not value or not value.isascii():
        return False
    last = value[-1]
    if value[0] <= " " or last <= " ":
        return False
    lasts = _PLACEHOLDER_LAST.get(len(value))
    return lasts is None or last not in lasts or value.lower() not in PLACEHOLDER_IDS


def check_id(value: object, kind: str) -> str:
    """The checked id, a str subclass made a plain str."""
    if isinstance(value, str) and value and not value.strip():
        # Amplitude would create a user named "   ": surely a blank input.
        raise ValidationError(f"{kind} must not be only whitespace")
    problem = id_problem(value, kind, min_length=1)
    if problem:
        raise ValidationError(problem)
    assert isinstance(value, str)
    return value if type(value) is str else str.__str__(value)


# The device, location and app fields in the order of Identify's keyword parameters
# (its constructor zips the values it was given with this).
FIELD_ORDER: Final = (OTHER_FIELDS[0], *DEVICE_FIELDS, *LOCATION_FIELDS, *OTHER_FIELDS[1:])


def checked_groups(groups: Mapping[Any, Any]) -> dict[str, Any]:
    if not isinstance(groups, Mapping):
        raise ValidationError(f"groups must be an object, got {type(groups).__name__}")
    out: dict[str, Any] = {}
    for group_type, name in groups.items():
        if not isinstance(group_type, str) or not group_type:
            raise ValidationError(
                f"group type must be a non-empty string, got {short_repr(group_type)}"
            )
        if isinstance(name, str):
            out[plain(group_type)] = plain(name)
        elif isinstance(name, (list, tuple)) and all(isinstance(n, str) for n in name):
            out[plain(group_type)] = [plain(n) for n in name]
        else:
            raise ValidationError(
                f"group {group_type!r} must name a string or a list of strings, "
                f"got {short_repr(name)}"
            )
    return out
