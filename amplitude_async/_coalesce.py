"""Coalescing: merge one identity's consecutive operations into as few identifications as
the server's semantics allow (DESIGN section 4), as they arrive.

A lane keeps its operations as *units*: an :class:`~amplitude_async.Identify` alone, or a
:class:`Merged` identification carrying several. When an operation arrives, the lane
tries :func:`merge_into` its last unit; batch assembly later only collects units.

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

from mypy_extensions import mypyc_attr

from ._identify import Identify
from ._identify_wire import user_properties_of
from ._limits import MERGE_BYTES_MAX
from ._rules import DEVICE_FIELDS, LOCATION_FIELDS, NO_VALUE, json_key

__all__ = ["MERGE_BYTES_MAX", "Merged", "Unit", "coalesce", "merge_into", "ops_of"]

_DEVICE: Final = frozenset(DEVICE_FIELDS)
_LOCATION: Final = frozenset(LOCATION_FIELDS)
#: Merged $add operands stay integers a double holds exactly.
_EXACT_INT: Final = 2**53
# Estimated JSON bytes of values with no variable part.
_NUMBER_COST: Final = 24
_KEY_COST: Final = 4  # quotes, colon, comma
# The braces, the "user_id"/"device_id"/"user_properties" keys and one "$op": {} bucket
# per kind of operation.
_BASE_COST: Final = 64 + 12 * 10
# Above this many properties a merge keeps an index of property positions.
_LINEAR_SCAN_MAX: Final = 8
_LIST_OPERATIONS: Final = frozenset(("$append", "$prepend", "$remove"))


@mypyc_attr(acyclic=True)
class Merged:
    """One identification built from several consecutive operations of one identity.

    ``props`` is flat like :attr:`Identify._ops` (operation, property, value, ...), one
    operation per property, kept up to date as operations are absorbed; the wire object
    is built from it once, when the batch is encoded.
    """

    __slots__ = (
        "_index",
        "cost",
        "device_id",
        "fields",
        "groups",
        "ops",
        "props",
        "sent",
        "user_id",
    )

    def __init__(self, first: Identify) -> None:
        self.ops: list[Identify] = [first]
        self.user_id = first.user_id
        self.device_id = first.device_id
        self.groups = first.groups
        self.fields: dict[str, Any] | None = first._fields
        self.props: tuple[Any, ...] = first._ops
        #: Property name -> position of its operation in ``props`` (many properties only).
        self._index: dict[str, int] | None = None
        if len(self.props) > 3 * _LINEAR_SCAN_MAX:
            self._index = {name: i - 1 for i, name in enumerate(self.props) if i % 3 == 1}
        props = self.props
        self.cost = (
            _BASE_COST
            + len(first.user_id or "")
            + len(first.device_id or "")
            + sum(_prop_cost(props[i + 1], props[i + 2]) for i in range(0, len(props), 3))
            + _fields_cost(self.fields)
            + (_value_cost(first.groups) if first.groups else 0)
        )
        #: Taken into a request once: it absorbs nothing more (a re-send carries exactly
        #: what the server may already have seen).
        self.sent = False

    @property
    def identity(self) -> str:
        return self.user_id if self.user_id is not None else self.device_id  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        """The merged wire identification."""
        wire: dict[str, Any] = {"user_id": self.user_id} if self.user_id is not None else {}
        if self.device_id is not None:
            wire["device_id"] = self.device_id
        if self.props:
            wire["user_properties"] = user_properties_of(self.props)
        if self.groups:
            wire["groups"] = self.groups
        if self.fields:
            wire.update(self.fields)
        return wire

    def _position(self, name: str) -> int:
        """Where ``name``'s operation is in ``props``, or -1."""
        index = self._index
        if index is not None:
            return index.get(name, -1)
        props = self.props
        for i in range(1, len(props), 3):
            if props[i] == name:
                return i - 1
        return -1

    def absorb(self, op: Identify, max_bytes: int = MERGE_BYTES_MAX) -> bool:
        """Merge ``op`` in if the result is the same as sending both; else change nothing."""
        if self.sent or op.user_id != self.user_id or op.device_id != self.device_id:
            return False
        ops = op._ops
        if ops and ops[0] == "$clearAll":
            return False
        props = self.props
        if props and props[0] == "$clearAll":
            return False
        if op.groups or self.groups:
            if op.groups and self.groups:
                return False
            # Setting groups also sets "group type = group name" as a user property:
            # keep it apart from operations on a property of that name.
            if op.groups and any(self._position(name) >= 0 for name in op.groups):
                return False
            if self.groups and any(name in self.groups for name in ops[1::3]):
                return False
        merged = list(props)
        cost = self.cost
        added: list[tuple[str, int]] | None = None
        for i in range(0, len(ops), 3):
            operation, name, value = ops[i], ops[i + 1], ops[i + 2]
            at = self._position(name)
            if at < 0:
                if self._index is not None:
                    if added is None:
                        added = []
                    added.append((name, len(merged)))
                merged += (operation, name, value)
                cost += _prop_cost(name, value)
                continue
            old = merged[at + 2]
            result = _merge_values(merged[at], old, operation, value)
            if result is _REFUSE:
                return False
            if operation in _LIST_OPERATIONS:
                cost += _value_cost(value)
            elif operation == "$set":
                cost += _value_cost(value) - _value_cost(old)
            # $setOnce keeps A's value; $add and $unset stay about as small.
            merged[at] = operation
            merged[at + 2] = result
        fields = self.fields
        if op._fields:
            fields = _merge_fields(fields, op._fields)
            cost += _fields_cost(fields) - _fields_cost(self.fields)
        if op.groups:
            cost += _value_cost(op.groups)  # self.groups is None: never both
        if cost > max_bytes:
            return False
        # Every property merges and the result is small enough: commit.
        self.props = tuple(merged)
        if added is not None and self._index is not None:
            self._index.update(added)
        elif self._index is None and len(merged) > 3 * _LINEAR_SCAN_MAX:
            self._index = {n: i - 1 for i, n in enumerate(merged) if i % 3 == 1}
        self.cost = cost
        self.fields = fields
        if op.groups:
            self.groups = op.groups
        self.ops.append(op)
        return True

    def __repr__(self) -> str:
        return f"<Merged {len(self.ops)} operation(s) of {self.identity!r}>"


#: What a lane holds and a batch carries: one operation, or several merged.
Unit = Identify | Merged


def merge_into(unit: Unit, op: Identify, max_bytes: int) -> Merged | None:
    """``unit`` with ``op`` merged in (a new :class:`Merged` when ``unit`` was one
    operation), or None when they must go as two identifications."""
    if isinstance(unit, Merged):
        return unit if unit.absorb(op, max_bytes) else None
    if (
        unit.first_sent_at is not None  # sent once: a re-send carries exactly what it did
        or unit.user_id != op.user_id
        or unit.device_id != op.device_id
    ):
        return None
    merged = Merged(unit)
    return merged if merged.absorb(op, max_bytes) else None


def ops_of(unit: Unit) -> list[Identify]:
    """The operations a unit carries, in order."""
    return unit.ops if isinstance(unit, Merged) else [unit]


def coalesce(ops: list[Identify], *, max_bytes: int = MERGE_BYTES_MAX) -> list[Unit]:
    """Merge consecutive operations of one identity wherever the result is the same, as
    a lane does while they arrive. ``max_bytes`` bounds the estimated JSON size a merge
    may grow an identification to (an operation larger than that alone still goes)."""
    units: list[Unit] = []
    for op in ops:
        if units:
            merged = merge_into(units[-1], op, max_bytes)
            if merged is not None:
                units[-1] = merged
                continue
        units.append(op)
    return units


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


def _merge_fields(first: dict[str, Any] | None, later: dict[str, Any]) -> dict[str, Any]:
    merged = dict(first) if first else {}
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


def _fields_cost(fields: dict[str, Any] | None) -> int:
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
