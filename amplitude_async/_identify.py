"""``Identify``: one identify operation, built with chained calls and checked as it is built.

Kept compact on purpose: a queued operation is one slots object holding its ids, its
first two ``(operation, property, value)`` triples in slots, any further ones in one flat
tuple, and the few fields of its :class:`~amplitude_async.Receipt` (an Identify is its
own receipt); the wire dictionary is built only when a batch is encoded. A queued
two-operation Identify is one object of 160 bytes, 152 compiled, where the compiled
build also keeps it out of CPython's cycle collector (docs/build.md). Checks of what a
caller hands it are in ``_identify_checks``; its wire objects (both ways) in
``_identify_wire``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final, cast

from mypy_extensions import mypyc_attr

from ._errors import ValidationError
from ._identify_checks import (
    FIELD_ORDER,
    METHOD,
    Number,
    Text,
    check_id,
    checked_groups,
    plain_id,
    short_repr,
)
from ._identify_wire import from_wire, user_properties_of
from ._outcome import FROZEN, Receipt
from ._plain import plain
from ._rules import (
    MAX_JSON_INT,
    NO_VALUE,
    is_number,
    text_problem,
    value_problem,
)

__all__ = ["Identify", "Number", "Text"]


# Above this many properties a set is kept to find repeated names in O(1).
_LINEAR_SCAN_MAX: Final = 8
# Types that need no normalising (see _plain): the hot path checks only this.
_PLAIN_TYPES: Final = frozenset((str, int, float, bool, type(None)))
Op = tuple[str, str, Any]


@mypyc_attr(acyclic=True)
class Identify(Receipt):
    """One identify operation: ids, user-property operations and device/location fields.

    >>> Identify(user_id="user-1").set("plan", "pro").add("logins", 1)
    Identify(user_id='user-1', $set={'plan': 'pro'}, $add={'logins': 1})

    Every method checks its input and raises :class:`ValidationError` at once, so bad
    input never reaches the queue. Once handed to a client the operation is frozen, and
    it is its own :class:`~amplitude_async.Receipt`: ``await amp.identify(op)`` returns
    ``op``, whose ``outcome`` the client sets. Identifies compare by content (``==``) and
    hash by identity, so receipts can be kept in sets and dicts.
    """

    __slots__ = (
        "_extra",
        "_more",
        "_name1",
        "_name2",
        "_op1",
        "_op2",
        "_value1",
        "_value2",
        "device_id",
        "user_id",
    )

    user_id: str | None
    device_id: str | None

    def __init__(
        self,
        user_id: Text | None = None,
        device_id: Text | None = None,
        *,
        groups: Mapping[str, str | list[str]] | None = None,
        app_version: Text | None = None,
        platform: Text | None = None,
        os_name: Text | None = None,
        os_version: Text | None = None,
        device_brand: Text | None = None,
        device_manufacturer: Text | None = None,
        device_model: Text | None = None,
        carrier: Text | None = None,
        country: Text | None = None,
        region: Text | None = None,
        city: Text | None = None,
        dma: Text | None = None,
        language: Text | None = None,
        paying: Text | bool | None = None,
        start_version: Text | None = None,
    ) -> None:
        # The receipt's fields, set here rather than through Receipt.__init__ (the hot
        # path: one call less per operation).
        self.outcome = None
        self._listeners = None
        self.attempts = 0
        self.first_sent_at = None
        self.gen = 0
        self._flags = 0
        # Length is checked by the client against its own min_id_length; the rest here.
        if user_id is not None and not plain_id(user_id):
            user_id = check_id(user_id, "user_id")
        if device_id is not None:
            if not plain_id(device_id):
                device_id = check_id(device_id, "device_id")
        elif user_id is None:
            raise ValidationError("an identification needs a user_id or a device_id (or both)")
        # Plain str by now (checked above; a str subclass was made a str).
        self.user_id = cast("str | None", user_id)
        self.device_id = cast("str | None", device_id)
        # The first two (operation, property, value) triples in slots of their own, the
        # rest flat in ``_more`` (operation, property, value, operation, ...): most
        # operations have one or two, and then no tuple exists. A tuple is a GC-tracked
        # object, and one per queued operation is what made a burst of them trigger
        # CPython's full collections (docs/build.md).
        self._op1: str | None = None
        self._name1 = ""
        self._value1: Any = None
        self._op2: str | None = None
        self._name2 = ""
        self._value2: Any = None
        self._more: tuple[Any, ...] = ()
        # Groups, fields and the set of property names, in one object only when one of
        # them is used: two pointers less per queued operation in the usual case.
        self._extra: _Extra | None = None
        if groups is not None:
            self._extras().groups = checked_groups(groups)
        # Most operations set none of these: fifteen identity checks, no tuple.
        if not (
            app_version is None
            and platform is None
            and os_name is None
            and os_version is None
            and device_brand is None
            and device_manufacturer is None
            and device_model is None
            and carrier is None
            and country is None
            and region is None
            and city is None
            and dma is None
            and language is None
            and paying is None
            and start_version is None
        ):
            given = (
                app_version,
                platform,
                os_name,
                os_version,
                device_brand,
                device_manufacturer,
                device_model,
                carrier,
                country,
                region,
                city,
                dma,
                language,
                paying,
                start_version,
            )
            for name, field_value in zip(FIELD_ORDER, given, strict=True):
                if field_value is not None:
                    self._set_field(name, field_value)

    @property
    def op(self) -> Identify:
        """The operation of this receipt: the Identify itself."""
        return self

    def __hash__(self) -> int:
        # By identity, as a Receipt: ``__eq__`` compares content, and a class that
        # defines it would otherwise be unhashable.
        return object.__hash__(self)

    # -- user-property operations -------------------------------------------------

    def set(self, name: Text, value: Any) -> Identify:
        """``$set``: set the property to ``value``."""
        return self._add("$set", name, value)

    def set_once(self, name: Text, value: Any) -> Identify:
        """``$setOnce``: set the property only if it has no value yet."""
        return self._add("$setOnce", name, value)

    def add(self, name: Text, value: Number) -> Identify:
        """``$add``: add a number to the property (a missing property starts at 0)."""
        if type(value) is not int and not is_number(value):
            raise ValidationError(
                f"add({short_repr(name)}, ...) needs a finite number, "
                f"got {type(value).__name__} {short_repr(value)}"
            )
        return self._add("$add", name, value)

    def append(self, name: Text, value: Any) -> Identify:
        """``$append``: append a value (or each value of a list) to the property's list."""
        return self._add("$append", name, value)

    def prepend(self, name: Text, value: Any) -> Identify:
        """``$prepend``: put a value (or each value of a list) at the front of the list."""
        return self._add("$prepend", name, value)

    def pre_insert(self, name: Text, value: Any) -> Identify:
        """``$preInsert``: like prepend, but only values not yet in the list."""
        return self._add("$preInsert", name, value)

    def post_insert(self, name: Text, value: Any) -> Identify:
        """``$postInsert``: like append, but only values not yet in the list."""
        return self._add("$postInsert", name, value)

    def remove(self, name: Text, value: Any) -> Identify:
        """``$remove``: remove every instance of a value (or of each value of a list)."""
        return self._add("$remove", name, value)

    def unset(self, name: Text) -> Identify:
        """``$unset``: remove the property."""
        return self._add("$unset", name, NO_VALUE)

    def clear_all(self) -> Identify:
        """``$clearAll``: remove every user property. Cannot be combined with other operations."""
        self._check_mutable()
        if self._op1 is not None:
            raise ValidationError(
                "clear_all() cannot be combined with other operations in one Identify"
            )
        self._op1, self._name1, self._value1 = "$clearAll", "", NO_VALUE
        return self

    # -- inspection ---------------------------------------------------------------

    @property
    def operations(self) -> tuple[tuple[str, str, Any], ...]:
        """The ``(operation, property, value)`` triples in the order they were added."""
        return tuple(self._triples())

    @property
    def fields(self) -> dict[str, Any]:
        """The device, location and app fields that are set (a copy)."""
        return dict(self._fields) if self._fields else {}

    @property
    def identity(self) -> str:
        """The key of this operation's lane: ``user_id`` if present, else ``device_id``."""
        return self.user_id if self.user_id is not None else self.device_id  # type: ignore[return-value]

    def user_properties(self) -> dict[str, Any]:
        """The wire ``user_properties`` object: operation -> {property: value}, and
        ``{"$clearAll": "-"}`` for :meth:`clear_all`."""
        # Built for every operation sent (the hot path): one and two operations, the
        # usual sizes, straight from the slots.
        op1 = self._op1
        if op1 is None:
            return {}
        op2 = self._op2
        if op2 is None:
            if op1 == "$clearAll":  # never combined with other operations
                return {"$clearAll": NO_VALUE}
            return {op1: {self._name1: self._value1}}
        if self._more:
            return user_properties_of(self._ops)
        if op1 != op2:
            return {op1: {self._name1: self._value1}, op2: {self._name2: self._value2}}
        return {op1: {self._name1: self._value1, self._name2: self._value2}}

    def to_dict(self) -> dict[str, Any]:
        """The wire identification object, as the Identify API documents it."""
        user_id = self.user_id
        wire: dict[str, Any] = {"user_id": user_id} if user_id is not None else {}
        if self.device_id is not None:
            wire["device_id"] = self.device_id
        if self._op1 is not None:
            wire["user_properties"] = self.user_properties()
        extra = self._extra
        if extra is not None:
            if extra.groups:
                wire["groups"] = extra.groups
            if extra.fields:
                wire.update(extra.fields)
        return wire

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Identify:
        """Build an Identify from one wire identification object (as in the API docs).

        Plain properties in ``user_properties`` (no ``$`` operations) are taken as ``$set``;
        mixing plain properties with operations is refused, as Amplitude refuses it.
        """
        return from_wire(cls, obj)

    # -- internals ----------------------------------------------------------------

    def _add(self, operation: str, name: object, value: Any) -> Identify:
        if self._flags & FROZEN:
            self._check_mutable()
        if type(name) is not str or not name or not name.isascii():
            name = self._check_name(operation, name)
        op1 = self._op1
        if op1 is not None:
            if op1 == "$clearAll":
                raise ValidationError(
                    "clear_all() cannot be combined with other operations in one Identify"
                )
            extra = self._extra
            names = extra.names if extra is not None else None
            if (
                name in names
                if names is not None
                else (
                    name == self._name1
                    or (self._op2 is not None and name == self._name2)
                    or name in self._more[1::3]
                )
            ):
                raise ValidationError(
                    f"property {name!r} is already used by another operation in this "
                    "Identify; use a second Identify for a second operation on the same "
                    "property"
                )
        # Plain ASCII text and ints (the usual values) need no further check.
        kind = type(value)
        if not (
            (kind is str and value.isascii())
            or (kind is int and -MAX_JSON_INT <= value <= MAX_JSON_INT)
        ):
            problem = value_problem(value, depth=2)
            if problem:
                raise ValidationError(f"{METHOD[operation]}({name!r}, ...): {problem}")
            if kind not in _PLAIN_TYPES:
                value = plain(value)
        if op1 is None:
            self._op1, self._name1, self._value1 = operation, name, value
            return self
        if self._op2 is None:
            self._op2, self._name2, self._value2 = operation, name, value
            return self
        self._more = more = (*self._more, operation, name, value)
        extra = self._extra
        if extra is not None and extra.names is not None:
            extra.names.add(name)
        elif len(more) > 3 * (_LINEAR_SCAN_MAX - 2):
            self._extras().names = {self._name1, self._name2, *more[1::3]}
        return self

    def _check_name(self, operation: str, name: object) -> str:
        """The checked name, a str subclass made a plain str."""
        if not isinstance(name, str) or not name:
            raise ValidationError(
                f"{METHOD[operation]}(): property name must be a non-empty string, "
                f"got {short_repr(name)}"
            )
        if type(name) is not str:
            name = str.__str__(name)
        problem = text_problem(name)
        if problem:
            raise ValidationError(f"{METHOD[operation]}(): property name {problem}")
        return name

    @property
    def _ops(self) -> tuple[Any, ...]:
        """Every operation flat, (operation, property, value, operation, ...), in order."""
        op1 = self._op1
        if op1 is None:
            return ()
        if self._op2 is None:
            return (op1, self._name1, self._value1)
        two = (op1, self._name1, self._value1, self._op2, self._name2, self._value2)
        more = self._more
        return two + more if more else two

    def _triples(self) -> Iterator[Op]:
        """The ``(operation, property, value)`` triples, in order."""
        ops = self._ops
        return zip(ops[0::3], ops[1::3], ops[2::3], strict=True)

    def _set_field(self, name: str, value: Any) -> None:
        if name == "paying" and isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str):
            raise ValidationError(f"{name} must be a string, got {type(value).__name__}")
        if type(value) is not str:
            value = str.__str__(value)
        extra = self._extras()
        if extra.fields is None:
            extra.fields = {}
        extra.fields[name] = value

    def _extras(self) -> _Extra:
        extra = self._extra
        if extra is None:
            extra = self._extra = _Extra()
        return extra

    @property
    def groups(self) -> dict[str, Any] | None:
        """The groups given (group type -> name or names), or None."""
        extra = self._extra
        return extra.groups if extra is not None else None

    @property
    def _fields(self) -> dict[str, Any] | None:
        extra = self._extra
        return extra.fields if extra is not None else None

    def _check_mutable(self) -> None:
        if self._flags & FROZEN:
            raise ValidationError(
                "this Identify was already handed to a client and cannot change; build a new one"
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identify):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        parts = []
        if self.user_id is not None:
            parts.append(f"user_id={self.user_id!r}")
        if self.device_id is not None:
            parts.append(f"device_id={self.device_id!r}")
        for operation, body in self.user_properties().items():
            parts.append(f"{operation}={body!r}")
        if self.groups:
            parts.append(f"groups={self.groups!r}")
        if self._fields:
            parts.extend(f"{k}={v!r}" for k, v in self._fields.items())
        return f"Identify({', '.join(parts)})"


@mypyc_attr(acyclic=True)
class _Extra:
    """What few operations have: groups, device and location fields, and the set of
    property names of an Identify with many (see Identify._add)."""

    __slots__ = ("fields", "groups", "names")

    def __init__(self) -> None:
        self.groups: dict[str, Any] | None = None
        self.fields: dict[str, Any] | None = None
        self.names: set[str] | None = None
