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
"""

from __future__ import annotations

from typing import Final

import msgspec

from ._identify import Identify

__all__ = ["oversize_problem"]

_encode = msgspec.json.Encoder().encode
#: Bytes per (operation, name, value) triple that its JSON array has and the wire
#: object does not: '"$postInsert",' and the comma after the name.
_TRIPLE_SLACK: Final = 15
_ENCODE_ERRORS: Final = (msgspec.EncodeError, ValueError, TypeError, OverflowError)


def oversize_problem(op: Identify, max_bytes: int) -> str | None:
    """Why ``op`` can never be sent in a body of ``max_bytes``, or None if it might be."""
    ops = op._ops
    if not ops:
        return None
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
