"""Messages of the identify topic: key = identity, value = one wire identification.

The value is exactly an ``amplitude-async import`` JSON line (without the newline), read
back with the importer's parser (:mod:`amplitude_async._wire_lines`), so a topic can be
filled from a file and a file from a dead-letter topic.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from .. import Identify, ValidationError
from .._wire_lines import check_ids, decode_line, identify_from_wire

__all__ = ["decode_message", "identity_key", "message_value", "refuse_bad_op"]

_encode: Final = msgspec.json.Encoder().encode
_decode: Final = msgspec.json.Decoder().decode


def refuse_bad_op(op: object, min_id_length: int) -> Identify:
    """The operation if a client would accept it; ValidationError (raised before anything
    is queued) otherwise."""
    if not isinstance(op, Identify):
        raise ValidationError(f"expected an Identify, got {type(op).__name__}")
    return check_ids(op, min_id_length)


def identity_key(op: Identify) -> bytes:
    """The message key: ``user_id``, else ``device_id``, as UTF-8 (the client's lane key)."""
    return op.identity.encode("utf-8")


def message_value(op: Identify) -> bytes:
    """The message value: the wire identification as JSON (an ``import`` line)."""
    return _encode(op.to_dict())


def decode_message(value: Any, min_id_length: int) -> Identify:
    """The operation a message carries. Raises ValueError (a LineError or a
    ValidationError) with the reason when it carries none."""
    if not isinstance(value, bytes):
        raise ValueError("the message has no value" if value is None else "the value is not bytes")
    return identify_from_wire(decode_line(value, _decode), min_id_length)
