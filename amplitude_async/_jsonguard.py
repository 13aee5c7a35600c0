"""JSON from the other side is hostile input: bounded nesting, and no decoding error escapes.

msgspec recurses once per nesting level (also to *skip* an unknown field), so a body
nested a few thousand deep raises :class:`RecursionError`, which is neither a
``DecodeError`` nor a ``ValidationError`` and would escape a handler that catches only
those. :func:`too_deep` refuses such a body before it is decoded, in C-speed passes
(about 3 ms for 256 KiB of brackets; nothing at all for a body with fewer brackets than
the limit, which is every ordinary answer), and :func:`decode_or_none` turns every way
a decode can fail into ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import msgspec

__all__ = ["ANSWER_NESTING_MAX", "decode_or_none", "too_deep"]

T = TypeVar("T")

#: Nesting (arrays and objects) accepted in an answer from a server. Amplitude's own
#: limit for user properties is 40 levels; an envelope adds two or three.
ANSWER_NESTING_MAX = 64

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_DELETE_ALL_BUT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_CURLY_TO_SQUARE = bytes.maketrans(b"{}", b"[]")


def too_deep(data: bytes, limit: int) -> bool:
    """Whether ``data``, read as JSON, nests arrays/objects more than ``limit`` deep.

    Brackets inside strings do not count. For text that is not JSON the answer may be
    either; such text does not decode anyway.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    if b'"' in data:
        data = _STRING.sub(b"", data)
    stream = data.translate(_CURLY_TO_SQUARE, _DELETE_ALL_BUT_BRACKETS)
    # Only "[" and "]" are left: each piece between two "]" is a run of openers.
    depth = 0
    for run in stream.split(b"]"):
        depth += len(run)
        if depth > limit:
            return True
        depth -= 1
    return False


def decode_or_none(decode: Callable[[bytes], T], data: bytes, limit: int) -> T | None:
    """``decode(data)``, or None when it is nested past ``limit`` or does not decode."""
    if too_deep(data, limit):
        return None
    try:
        return decode(data)
    # RecursionError: the stack was already deep when the decoder was called.
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeError):
        return None
