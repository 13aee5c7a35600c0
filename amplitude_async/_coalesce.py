"""Coalescing: merge one identity's consecutive operations into as few identifications as
the server's semantics allow (DESIGN section 4).

Merging B (later) into A (earlier) is allowed only when applying the merged
identification, in the server's fixed operation order, gives exactly the properties
that applying A then B gives. Within one Identify every property has exactly one
operation, so the server's order across properties does not matter; the question is
only what two operations on the *same* property collapse to:

    anything  + $set       -> B's value (a later $set decides the value alone)
    anything  + $unset     -> $unset    (the property ends up absent either way)
    $setOnce  + $setOnce   -> A's value
    $add      + $add       -> the sum (ints only, |values| <= 2**53: float sums could
                              round differently)
    $append   + $append    -> A's values then B's
    $prepend  + $prepend   -> B's values then A's
    $remove   + $remove    -> the union
    anything else          -> start a new identification

A list operand (JSON array: a Python list *or tuple*) stands for its values; any other
value for itself. Device fields (platform, os_*, device_*, carrier) and location fields
(country, region, city, dma) are "sent together" groups: when B carries any field of a
group, B's group replaces A's whole; other fields: B's value wins.

Never merged: different ``user_id`` or ``device_id``; ``groups`` on both; ``groups`` on
one and an operation on a property named like one of its group types on the other
(Amplitude also sets ``group type = group name`` as a user property); ``$clearAll``;
and an operation that would grow the identification past ``max_bytes`` (an estimate of
its JSON size), so that merging never makes an identification too large to send.
"""

from __future__ import annotations

from typing import Any, Final

from ._identify import Identify
from ._outcome import Receipt
from ._rules import DEVICE_FIELDS, LOCATION_FIELDS, NO_VALUE, json_key

__all__ = ["MERGE_BYTES_MAX", "Group", "coalesce", "single"]

_DEVICE: Final = frozenset(DEVICE_FIELDS)
_LOCATION: Final = frozenset(LOCATION_FIELDS)
#: Merged $add operands stay integers a double holds exactly.
_EXACT_INT: Final = 2**53
#: By default a merged identification stops growing at about this many bytes of JSON
#: (form escaping can triple it on the wire; still far below the 1 MB request cap).
MERGE_BYTES_MAX: Final = 16_384
# Estimated JSON bytes of values with no variable part.
_NUMBER_COST: Final = 24
_KEY_COST: Final = 4  # quotes, colon, comma
# The braces, the "user_id"/"device_id"/"user_properties" keys and one "$op": {} bucket
# per kind of operation.
_BASE_COST: Final = 64 + 12 * 10


class Group:
    """One identification on the wire and the receipts of the operations it carries."""

    __slots__ = ("encoded", "key", "receipts", "size", "wire")

    def __init__(self, key: str, receipts: list[Receipt], wire: dict[str, Any] | None) -> None:
        self.key = key
        self.receipts = receipts
        #: The identification as a dictionary, until it is encoded (then None: a
        #: request in flight keeps only the bytes).
        self.wire = wire
        #: The encoded identification and its size in a body, cached so a re-send
        #: does not encode again.
        self.encoded: bytes | None = None
        self.size = 0


def single(receipt: Receipt) -> Group:
    """The group of one operation, unmerged."""
    op = receipt.op
    return Group(op.identity, [receipt], op.to_dict())


def coalesce(receipts: list[Receipt], *, max_bytes: int = MERGE_BYTES_MAX) -> list[Group]:
    """Merge consecutive operations of one identity wherever the result is the same.

    ``max_bytes`` bounds the estimated JSON size a merge may grow an identification to
    (an operation larger than that on its own is still sent, alone).
    """
    if len(receipts) == 1:
        return [single(receipts[0])]
    groups: list[Group] = []
    current: _Merged | None = None
    for receipt in receipts:
        op = receipt.op
        if current is not None and current.absorb(op, max_bytes):
            current.receipts.append(receipt)
            continue
        if current is not None:
            groups.append(current.to_group())
        current = _Merged(receipt)
    assert current is not None
    groups.append(current.to_group())
    return groups


class _Merged:
    """An identification being built from consecutive operations."""

    __slots__ = (
        "clear_all",
        "cost",
        "device_id",
        "fields",
        "groups",
        "props",
        "receipts",
        "user_id",
    )

    def __init__(self, receipt: Receipt) -> None:
        op = receipt.op
        self.receipts = [receipt]
        self.user_id = op.user_id
        self.device_id = op.device_id
        self.groups = op.groups
        self.fields: dict[str, Any] = op.fields
        self.clear_all = bool(op._ops) and op._ops[0] == "$clearAll"
        # property -> [operation, value, estimated JSON bytes]; one operation per
        # property, as in an Identify.
        self.props: dict[str, list[Any]] = {
            name: [operation, value, _prop_cost(name, value)]
            for operation, name, value in op._triples()
        }
        self.cost = (
            _BASE_COST
            + len(op.user_id or "")
            + len(op.device_id or "")
            + sum(entry[2] for entry in self.props.values())
            + _fields_cost(self.fields)
            + (_value_cost(op.groups) if op.groups else 0)
        )

    def absorb(self, op: Identify, max_bytes: int = MERGE_BYTES_MAX) -> bool:
        """Merge ``op`` in if the result is the same as sending both; else change nothing."""
        if self.clear_all or op.user_id != self.user_id or op.device_id != self.device_id:
            return False
        ops = op._ops
        if ops and ops[0] == "$clearAll":
            return False
        if op.groups or self.groups:
            if op.groups and self.groups:
                return False
            # Setting groups also sets "group type = group name" as a user property:
            # keep it apart from operations on a property of that name.
            if op.groups and any(name in op.groups for name in self.props):
                return False
            if self.groups and any(name in self.groups for name in ops[1::3]):
                return False
        merged: list[tuple[str, str, Any, int]] = []
        props = self.props
        cost = self.cost
        for operation, name, value in op._triples():
            mine = props.get(name)
            if mine is None:
                added = _prop_cost(name, value)
                merged.append((operation, name, value, added))
                cost += added
                continue
            result = _merge_values(mine[0], mine[1], operation, value)
            if result is _REFUSE:
                return False
            if operation in ("$append", "$prepend", "$remove"):
                new_cost = mine[2] + _value_cost(value)
            elif operation == "$set":
                new_cost = _prop_cost(name, value)
            else:  # $setOnce keeps A's value; $add and $unset stay about as small
                new_cost = mine[2]
            merged.append((operation, name, result, new_cost))
            cost += new_cost - mine[2]
        if op.groups:
            cost += _value_cost(op.groups)  # self.groups is None: never both
        fields = self.fields
        if op._fields:
            fields = _merge_fields(fields, op._fields)
            cost += _fields_cost(fields) - _fields_cost(self.fields)
        if cost > max_bytes:
            return False
        # Every property merges and the result is small enough: commit.
        for operation, name, value, value_cost in merged:
            props[name] = [operation, value, value_cost]
        self.cost = cost
        self.fields = fields
        if op.groups:
            self.groups = op.groups
        return True

    def to_group(self) -> Group:
        if len(self.receipts) == 1:
            return single(self.receipts[0])
        wire: dict[str, Any] = {}
        if self.user_id is not None:
            wire["user_id"] = self.user_id
        if self.device_id is not None:
            wire["device_id"] = self.device_id
        if self.props:
            user_properties: dict[str, dict[str, Any]] = {}
            for name, (operation, value, _) in self.props.items():
                bucket = user_properties.get(operation)
                if bucket is None:
                    user_properties[operation] = bucket = {}
                bucket[name] = value
            wire["user_properties"] = user_properties
        if self.groups:
            wire["groups"] = self.groups
        if self.fields:
            wire.update(self.fields)
        key = self.user_id if self.user_id is not None else self.device_id
        assert key is not None
        return Group(key, self.receipts, wire)


_REFUSE: Final[Any] = object()


def _values(value: Any) -> list[Any]:
    """A list operand as its values (a tuple encodes as a JSON array too); else [value]."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _merge_values(first_op: str, first: Any, op: str, value: Any) -> Any:
    """The merged value of two operations on one property, or _REFUSE."""
    if op == "$set":
        # A later $set decides the final value alone, whatever came before it.
        return value
    if op == "$unset":
        # Likewise a later $unset: the property ends up absent either way.
        return NO_VALUE
    if first_op != op:
        return _REFUSE
    if op == "$setOnce":
        return first
    if op == "$add":
        # bool is an int subclass but never reaches here: Identify.add refuses it.
        if type(first) is int and type(value) is int:
            total = first + value
            if max(abs(first), abs(value), abs(total)) <= _EXACT_INT:
                return total
        return _REFUSE
    if op == "$append":
        return _values(first) + _values(value)
    if op == "$prepend":
        return _values(value) + _values(first)
    if op == "$remove":
        # Removing a value twice is harmless, so only exact repeats are dropped: JSON
        # tells true from 1 where Python's == does not, and 1.0 is kept apart from 1 so
        # as not to rely on the server comparing numbers by value.
        merged = _values(first)
        seen = {json_key(v, exact_numbers=True) for v in merged}
        for v in _values(value):
            key = json_key(v, exact_numbers=True)
            if key not in seen:
                merged.append(v)
                seen.add(key)
        return merged
    return _REFUSE


def _merge_fields(first: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    merged = dict(first)
    if not _DEVICE.isdisjoint(later):
        for name in _DEVICE:
            merged.pop(name, None)
    if not _LOCATION.isdisjoint(later):
        for name in _LOCATION:
            merged.pop(name, None)
    merged.update(later)
    return merged


def _prop_cost(name: str, value: Any) -> int:
    return len(name) + _KEY_COST + _value_cost(value)


def _fields_cost(fields: dict[str, Any]) -> int:
    return sum(len(k) + len(v) + 2 * _KEY_COST for k, v in fields.items()) if fields else 0


def _value_cost(value: Any) -> int:
    """About how many bytes ``value`` takes as JSON (UTF-8 counted at its worst)."""
    if isinstance(value, str):
        return len(value) + 3 if value.isascii() else 4 * len(value) + 3
    if isinstance(value, (list, tuple)):
        return 2 + sum(_value_cost(v) + 1 for v in value)
    if isinstance(value, dict):
        return 2 + sum(len(k) + _KEY_COST + _value_cost(v) for k, v in value.items())
    return _NUMBER_COST
