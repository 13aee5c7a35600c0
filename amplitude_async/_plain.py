"""Subclasses of str, int and float become the plain type at the call.

``class UserId(str)`` (or an int or float subclass) is a common way to type ids and
values, and it holds a plain JSON value; msgspec, however, refuses to encode any
subclass, so such a value used to be accepted by ``Identify`` and then fail later, in its
batch, as ``invalid``. It is therefore converted where it enters (normalised, not
refused: the value is what the caller meant, and refusing would make every caller
write ``str(...)``). Enums stay as they are (msgspec sends their value), and ``bool``
is a type of its own. A container is copied only when something inside it changed, so
ordinary values are still kept by reference.
"""

from __future__ import annotations

import enum
from typing import Any, Final

__all__ = ["plain"]

_EXACT: Final = frozenset((str, int, float, bool, type(None)))


def plain(value: Any) -> Any:
    """``value`` with every str/int/float subclass in it made the base type (and list,
    tuple and dict subclasses the base container). Call it on a checked value only: it
    recurses once per nesting level."""
    kind = type(value)
    if kind in _EXACT or isinstance(value, enum.Enum):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, (list, tuple)):
        items = [plain(item) for item in value]
        if kind in (list, tuple) and all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        pairs = [(plain(k), plain(v)) for k, v in value.items()]
        if kind is dict and all(
            pk is k and pv is v for (pk, pv), (k, v) in zip(pairs, value.items(), strict=True)
        ):
            return value
        return dict(pairs)
    return value  # not a JSON value: validation refuses it
