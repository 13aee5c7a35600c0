"""One JSON line: a wire identification, as ``import`` reads it and the Kafka worker too.

The format of an ``amplitude-async import`` JSON line, of the spool, and of a Kafka
message value written by :class:`amplitude_async.kafka.IdentifyProducer`: one JSON
object, the identification as Amplitude's Identify API documents it. Parsing it is
shared so that a line the importer accepts is a message the worker accepts, and the
same problem gets the same words. No event loop, no I/O: plain functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._rules import ANNOTATION_KEYS, FAILURE_KEY

if TYPE_CHECKING:
    from ._identify import Identify

__all__ = [
    "FAILURE_KEY",
    "LineError",
    "check_ids",
    "decode_line",
    "decode_object",
    "identify_from_wire",
    "identity_of",
]

# FAILURE_KEY: the annotation ``import --failed-out`` adds to each line; SPOOL_KEY: the
# client's spool's. Both are ignored on input.


class LineError(ValueError):
    """The bytes are not one JSON object (the message says why)."""


def decode_line(raw: bytes, decode: Callable[[bytes], Any]) -> dict[str, Any]:
    """The JSON object of one line, without the ``_failure`` / ``_spool`` annotations.

    ``decode`` is a ``msgspec.json.Decoder().decode`` (made once by the caller). Raises
    :class:`LineError` for text that is not JSON (or not UTF-8, or nested too deep) or
    not an object.
    """
    obj = decode_object(raw, decode)
    for key in ANNOTATION_KEYS:
        obj.pop(key, None)
    return obj


def decode_object(raw: bytes, decode: Callable[[bytes], Any]) -> dict[str, Any]:
    """The JSON object of one line, annotations included; :class:`LineError` if not one."""
    import msgspec

    try:
        obj = decode(raw)
    except msgspec.DecodeError as exc:
        raise LineError(f"not valid JSON: {exc}") from None
    except RecursionError:  # a line nested thousands deep: a bad line, not a crash
        raise LineError("not valid JSON: nested too deep") from None
    if not isinstance(obj, dict):
        raise LineError(f"expected a JSON object, got {_kind(obj)}")
    return obj


def identity_of(obj: Mapping[str, Any]) -> str | None:
    """The lane key the client will use: user_id if present, else device_id."""
    user_id = obj.get("user_id")
    if isinstance(user_id, str):
        return user_id
    device_id = obj.get("device_id")
    return device_id if isinstance(device_id, str) else None


def identify_from_wire(wire: Mapping[str, Any], min_id_length: int) -> Identify:
    """The operation of one wire identification; :class:`ValidationError` if it is not one.

    Also refuses the short ids the client would refuse at ``identify()``, so that the
    problem is reported with the line (or the message) it came from.
    """
    from ._identify import Identify

    return check_ids(Identify.from_dict(wire), min_id_length)


def check_ids(op: Identify, min_id_length: int) -> Identify:
    """``op``, unless an id is one the client refuses (too short, a placeholder):
    then :class:`ValidationError`."""
    from ._errors import ValidationError
    from ._rules import id_problem

    for kind, value in (("user_id", op.user_id), ("device_id", op.device_id)):
        if value is not None:
            problem = id_problem(value, kind, min_id_length)
            if problem:
                raise ValidationError(problem)
    return op


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
