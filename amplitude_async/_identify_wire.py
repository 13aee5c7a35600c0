"""``Identify`` and the Identify API's wire objects: the ``user_properties`` object of an
operation (built for every identification sent), and an Identify read back from one
identification object (``Identify.from_dict``: import files, Kafka messages, spools).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._errors import ValidationError
from ._rules import ANNOTATION_KEYS, FIELDS, IDENTIFICATION_KEYS, NO_VALUE, OPERATIONS

if TYPE_CHECKING:
    from ._identify import Identify

__all__ = ["from_wire", "user_properties_of"]


def from_wire(cls: type[Identify], obj: Mapping[str, Any]) -> Identify:
    """See :meth:`Identify.from_dict`."""
    if not isinstance(obj, Mapping):
        raise ValidationError(f"an identification must be a JSON object, got {type(obj).__name__}")
    # Keys and values as they came: anything (the compiled build would check a key
    # typed str itself, with its own TypeError).
    source: Mapping[Any, Any] = obj
    unknown = sorted(
        str(k) for k in source if k not in IDENTIFICATION_KEYS and k not in ANNOTATION_KEYS
    )
    if unknown:
        example = unknown[0] if not unknown[0].startswith("$") else "plan"
        raise ValidationError(
            f"unknown identification field(s) {', '.join(map(repr, unknown))}; an "
            "identification has user_id, device_id, user_properties, groups and the "
            f"fields {', '.join(FIELDS)}. User properties go inside user_properties: "
            f'{{"user_id": "user-1", "user_properties": {{"$set": {{"{example}": ...}}}}}}'
        )
    fields = {name: source[name] for name in FIELDS if source.get(name) is not None}
    op = cls(
        user_id=source.get("user_id"),
        device_id=source.get("device_id"),
        groups=source.get("groups"),
        **fields,
    )
    props = source.get("user_properties")
    if props is None:
        return op
    if not isinstance(props, Mapping):
        raise ValidationError(f"user_properties must be a JSON object, got {type(props).__name__}")
    operations = [k for k in props if isinstance(k, str) and k.startswith("$")]
    if not operations:
        for name, value in props.items():
            op.set(name, value)
        return op
    if len(operations) != len(props):
        plain = sorted(str(k) for k in props if k not in operations)
        raise ValidationError(
            "user_properties mixes operations with plain properties "
            f"({', '.join(map(repr, plain))}); put plain properties inside $set"
        )
    for operation, body in props.items():
        if operation not in OPERATIONS:
            raise ValidationError(
                f"unknown user property operation {operation!r}; "
                f"known: {', '.join(sorted(OPERATIONS))}"
            )
        if operation == "$clearAll":
            op.clear_all()
            continue
        if not isinstance(body, Mapping):
            raise ValidationError(
                f"{operation} must map property names to values, got {type(body).__name__}"
            )
        for name, value in body.items():
            if operation == "$unset":
                op.unset(name)
            elif operation == "$add":
                op.add(name, value)
            else:
                op._add(operation, name, value)
    return op


def user_properties_of(ops: tuple[Any, ...]) -> dict[str, Any]:
    # Built for every operation sent (the hot path), so one and two operations, the
    # usual sizes, are spelled out instead of looped over. ``ops`` is flat (see _ops).
    if len(ops) == 3:
        operation, name, value = ops
        if operation == "$clearAll":  # never combined with other operations
            return {"$clearAll": NO_VALUE}
        return {operation: {name: value}}
    if len(ops) == 6:
        op1, name1, value1, op2, name2, value2 = ops
        if op1 != op2:
            return {op1: {name1: value1}, op2: {name2: value2}}
        return {op1: {name1: value1, name2: value2}}
    out: dict[str, Any] = {}
    for i in range(0, len(ops), 3):
        operation, name, value = ops[i], ops[i + 1], ops[i + 2]
        bucket = out.get(operation)
        if bucket is None:
            out[operation] = {name: value}
        else:
            bucket[name] = value
    return out
