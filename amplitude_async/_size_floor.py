"""Refusing, at ``identify()``, an operation that could never fit in one request.

An operation larger than ``batch_max_bytes`` however small its batch can only fail; the
caller should hear it at the call, as a ValidationError, rather than from its receipt.
The exact size needs the wire object, JSON and form escaping, which the hot path does
not build. A lower bound is cheap instead: the JSON text of the operation's flat
``(operation, name, value, ...)`` tuple, which msgspec writes in about 0.1 us for a
usual operation, less what that tuple spells out and the wire object does not (each
triple's operation name, quotes and commas: at most 15 bytes). Escaping only grows text,
so the bound never refuses an operation that would fit. What it misses (text that grows
when escaped) still fails alone with reason ``too_large`` when its batch is assembled.

Most operations are far from any limit, and for them even that encoding is wasted (it
was a tenth of the client's work per operation): when every value is a scalar, a
ceiling of the same JSON text is counted from lengths alone, and only an operation whose
ceiling could pass ``batch_max_bytes`` is encoded.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from ._identify import Identify

__all__ = ["oversize_problem"]

_encode = msgspec.json.Encoder().encode
#: Bytes per (operation, name, value) triple that its JSON array has and the wire
#: object does not: '"$postInsert",' and the comma after the name.
_TRIPLE_SLACK: Final = 15
_ENCODE_ERRORS: Final = (msgspec.EncodeError, ValueError, TypeError, OverflowError)


#: JSON text of a number at most this long: a float's shortest repr, an int below 10**18.
_NUMBER_MAX: Final = 24
_SMALL_INT: Final = 10**18
#: Per triple: quotes, commas, brackets, the longest operation name ("$postInsert").
_TRIPLE_MAX: Final = 24


def _ceiling(ops: tuple[Any, ...]) -> int:
    """At least ``len(_encode(ops))`` when every value is a scalar (a JSON string takes
    at most 6 bytes a character, a ``\\u`` escape); -1 when one is not."""
    total = 2
    for i in range(1, len(ops), 3):
        name: str = ops[i]
        value = ops[i + 1]
        # isinstance, not type(): the compiled build then works on native str and int.
        if isinstance(value, str):
            size = 6 * len(value)
        elif isinstance(value, int):  # bool included: at most "false"
            if not -_SMALL_INT < value < _SMALL_INT:
                return -1
            size = _NUMBER_MAX
        elif isinstance(value, float) or value is None:
            size = _NUMBER_MAX
        else:
            return -1
        total += _TRIPLE_MAX + 6 * len(name) + size
    return total


def oversize_problem(op: Identify, max_bytes: int) -> str | None:
    """Why ``op`` can never be sent in a body of ``max_bytes``, or None if it might be."""
    ops = op._ops
    if not ops:
        return None
    ceiling = _ceiling(ops)
    if ceiling >= 0 and ceiling - _TRIPLE_SLACK * (len(ops) // 3) - 2 <= max_bytes:
        return None  # even the ceiling's floor fits
    try:
        floor = len(_encode(ops)) - _TRIPLE_SLACK * (len(ops) // 3) - 2
    except _ENCODE_ERRORS:
        return None  # refused, with the encoder's reason, when its batch is assembled
    if floor <= max_bytes:
        return None
    return (
        f"the operation is too large for any request: its properties take at least "
        f"{floor:,} bytes encoded, over batch_max_bytes={max_bytes:,}; split it into "
        "smaller operations"
    )
