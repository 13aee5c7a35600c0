"""Coalescing: merge one identity's consecutive operations into as few identifications as
the server's semantics allow (DESIGN section 4).

Merging B (later) into A (earlier) is allowed only when applying the merged
identification, in the server's fixed operation order, gives exactly the properties
that applying A then B gives. Within one Identify every property has exactly one
operation, so the server's order across properties does not matter; the question is
only what two operations on the *same* property collapse to:

    $set      + $set       -> B's value
    $setOnce  + $setOnce   -> A's value
    $add      + $add       -> the sum (ints only: float sums could round differently)
    $append   + $append    -> A's values then B's
    $prepend  + $prepend   -> B's values then A's
    $unset    + $unset     -> $unset
    $remove   + $remove    -> the union
    anything else          -> start a new identification

Device fields (platform, os_*, device_*, carrier) and location fields (country,
region, city, dma) are "sent together" groups: when B carries any field of a group,
B's group replaces A's whole. Ids must match exactly; groups may not both be set;
``$clearAll`` never merges.
"""

from __future__ import annotations

from typing import Any, Final

from ._identify import Identify
from ._outcome import Receipt
from ._rules import DEVICE_FIELDS, LOCATION_FIELDS, NO_VALUE

__all__ = ["Group", "coalesce", "single"]

_DEVICE: Final = frozenset(DEVICE_FIELDS)
_LOCATION: Final = frozenset(LOCATION_FIELDS)


class Group:
    """One identification on the wire and the receipts of the operations it carries."""

    __slots__ = ("encoded", "key", "receipts", "size", "wire")

    def __init__(self, key: str, receipts: list[Receipt], wire: dict[str, Any]) -> None:
        self.key = key
        self.receipts = receipts
        self.wire = wire
        #: The encoded identification and its size in a body, cached so a re-send
        #: does not encode again.
        self.encoded: bytes | None = None
        self.size = 0


def single(receipt: Receipt) -> Group:
    """The group of one operation, unmerged."""
    op = receipt.op
    return Group(op.identity, [receipt], op.to_dict())


def coalesce(receipts: list[Receipt]) -> list[Group]:
    """Merge consecutive operations of one identity wherever the result is the same."""
    if len(receipts) == 1:
        return [single(receipts[0])]
    groups: list[Group] = []
    current: _Merged | None = None
    for receipt in receipts:
        op = receipt.op
        if current is not None and current.absorb(op):
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

    __slots__ = ("clear_all", "device_id", "fields", "groups", "props", "receipts", "user_id")

    def __init__(self, receipt: Receipt) -> None:
        op = receipt.op
        self.receipts = [receipt]
        self.user_id = op.user_id
        self.device_id = op.device_id
        self.groups = op.groups
        self.fields: dict[str, Any] = op.fields
        self.clear_all = bool(op._ops) and op._ops[0][0] == "$clearAll"
        # property -> [operation, value]; one operation per property, as in an Identify.
        self.props: dict[str, list[Any]] = {
            name: [operation, value] for operation, name, value in op._ops
        }

    def absorb(self, op: Identify) -> bool:
        """Merge ``op`` in if the result is the same as sending both; else change nothing."""
        if self.clear_all or op.user_id != self.user_id or op.device_id != self.device_id:
            return False
        ops = op._ops
        if ops and ops[0][0] == "$clearAll":
            return False
        if op.groups and self.groups:
            return False
        merged: list[tuple[str, str, Any]] = []
        props = self.props
        for operation, name, value in ops:
            mine = props.get(name)
            if mine is None:
                merged.append((operation, name, value))
                continue
            result = _merge_values(mine[0], mine[1], operation, value)
            if result is _REFUSE:
                return False
            merged.append((operation, name, result))
        # Every property merges: commit.
        for operation, name, value in merged:
            props[name] = [operation, value]
        if op.groups:
            self.groups = op.groups
        if op._fields:
            self.fields = _merge_fields(self.fields, op._fields)
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
            for name, (operation, value) in self.props.items():
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


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _merge_values(first_op: str, first: Any, op: str, value: Any) -> Any:
    """The merged value of two operations on one property, or _REFUSE."""
    if first_op != op:
        return _REFUSE
    if op == "$set":
        return value
    if op == "$setOnce":
        return first
    if op == "$add":
        # bool is an int subclass but never reaches here: Identify.add refuses it.
        if type(first) is int and type(value) is int:
            return first + value
        return _REFUSE
    if op == "$append":
        return _as_list(first) + _as_list(value)
    if op == "$prepend":
        return _as_list(value) + _as_list(first)
    if op == "$unset":
        return NO_VALUE
    if op == "$remove":
        merged = _as_list(first)
        merged.extend(v for v in _as_list(value) if v not in merged)
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
