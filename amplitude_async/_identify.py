"""``Identify``: one identify operation, built with chained calls and checked as it is built.

Kept compact on purpose: a queued operation is one slots object holding its ids, one
flat tuple ``(operation, property, value, operation, ...)`` and the few fields of its
:class:`~amplitude_async.Receipt` (an Identify is its own receipt); the wire dictionary
is built only when a batch is encoded. A queued two-operation Identify takes 216 bytes.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterator, Mapping
from typing import Any, Final, Protocol, cast

from ._errors import ValidationError
from ._outcome import FROZEN, Receipt
from ._plain import plain
from ._rules import (
    ANNOTATION_KEYS,
    FIELDS,
    IDENTIFICATION_KEYS,
    MAX_JSON_INT,
    NO_VALUE,
    OPERATIONS,
    PLACEHOLDER_IDS,
    id_problem,
    is_number,
    text_problem,
    value_problem,
)

__all__ = ["Identify", "Number", "Text"]


class Text(Protocol):
    """A ``str`` argument, as a type checker sees it: ``str`` and its subclasses match.

    Identify's parameters say this rather than ``str`` for the compiled build: mypyc
    checks a ``str`` parameter itself and raises its own TypeError, while a protocol it
    leaves to the code, so a wrong type gets our ValidationError in both builds.
    """

    def casefold(self) -> str: ...

    def isidentifier(self) -> bool: ...


class Number(Protocol):
    """An ``int`` or ``float`` argument, as a type checker sees it (see :class:`Text`)."""

    def __float__(self) -> float: ...

    def __abs__(self) -> Any: ...


_FIELD_SET: Final = frozenset(FIELDS)
# Builder method name for each wire operation, used in messages.
_METHOD: Final = {
    "$set": "set",
    "$setOnce": "set_once",
    "$add": "add",
    "$append": "append",
    "$prepend": "prepend",
    "$preInsert": "pre_insert",
    "$postInsert": "post_insert",
    "$remove": "remove",
    "$unset": "unset",
    "$clearAll": "clear_all",
}
# Above this many properties a set is kept to find repeated names in O(1).
_LINEAR_SCAN_MAX: Final = 8
# An ASCII id not starting or ending in whitespace strips to itself: it is a placeholder
# only if its length is one of theirs and it is one (the common case skips the rest).
_PLACEHOLDER_LENGTHS: Final = frozenset(len(p) for p in PLACEHOLDER_IDS)
_NO_FIELDS: Final = (None,) * 15
# Types that need no normalising (see _plain): the hot path checks only this.
_PLAIN_TYPES: Final = frozenset((str, int, float, bool, type(None)))
# reprs in error messages: bounded in depth and length, so that a value nested a
# thousand deep gets a ValidationError, not a RecursionError from repr().
_short = reprlib.Repr()
_short.maxlevel = 3
_short.maxstring = 60
_short.maxother = 60

Op = tuple[str, str, Any]
# (Inside Identify, "set" is its method.)
_NameSet = set[str]


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

    __slots__ = ("_extra", "_ops", "device_id", "user_id")

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
        if user_id is not None and not _plain_id(user_id):
            user_id = _check_id(user_id, "user_id")
        if device_id is not None:
            if not _plain_id(device_id):
                device_id = _check_id(device_id, "device_id")
        elif user_id is None:
            raise ValidationError("an identification needs a user_id or a device_id (or both)")
        # Plain str by now (checked above; a str subclass was made a str).
        self.user_id = cast("str | None", user_id)
        self.device_id = cast("str | None", device_id)
        # Flat and exactly sized: (operation, property, value, operation, ...). One
        # tuple instead of a list of tuples: about 130 bytes less per queued operation.
        self._ops: tuple[Any, ...] = ()
        # Groups, fields and the set of property names, in one object only when one of
        # them is used: two pointers less per queued operation in the usual case.
        self._extra: _Extra | None = None
        if groups is not None:
            self._extras().groups = _checked_groups(groups)
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
        if given != _NO_FIELDS:
            for name, field_value in zip(_FIELD_ORDER, given, strict=True):
                if field_value is not None:
                    self._set_field(name, field_value)

    @property
    def op(self) -> Identify:
        """The operation of this receipt: the Identify itself."""
        return self

    @property
    def _frozen(self) -> bool:
        return bool(self._flags & FROZEN)

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
                f"add({_short.repr(name)}, ...) needs a finite number, "
                f"got {type(value).__name__} {_short.repr(value)}"
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
        if self._ops:
            raise ValidationError(
                "clear_all() cannot be combined with other operations in one Identify"
            )
        self._ops = ("$clearAll", "", NO_VALUE)
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
        return _user_properties(self._ops)

    def to_dict(self) -> dict[str, Any]:
        """The wire identification object, as the Identify API documents it."""
        user_id = self.user_id
        wire: dict[str, Any] = {"user_id": user_id} if user_id is not None else {}
        if self.device_id is not None:
            wire["device_id"] = self.device_id
        ops = self._ops
        if ops:
            wire["user_properties"] = _user_properties(ops)
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
        if not isinstance(obj, Mapping):
            raise ValidationError(
                f"an identification must be a JSON object, got {type(obj).__name__}"
            )
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
            raise ValidationError(
                f"user_properties must be a JSON object, got {type(props).__name__}"
            )
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

    # -- internals ----------------------------------------------------------------

    def _add(self, operation: str, name: object, value: Any) -> Identify:
        if self._flags & FROZEN:
            self._check_mutable()
        if type(name) is not str or not name or not name.isascii():
            name = self._check_name(operation, name)
        ops = self._ops
        if ops:
            if ops[0] == "$clearAll":
                raise ValidationError(
                    "clear_all() cannot be combined with other operations in one Identify"
                )
            extra = self._extra
            names = extra.names if extra is not None else None
            if (
                name in names
                if names is not None
                else (ops[1] == name if len(ops) == 3 else name in ops[1::3])
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
                raise ValidationError(f"{_METHOD[operation]}({name!r}, ...): {problem}")
            if kind not in _PLAIN_TYPES:
                value = plain(value)
        self._ops = ops = (*ops, operation, name, value)
        extra = self._extra
        if extra is not None and extra.names is not None:
            extra.names.add(name)
        elif len(ops) > 3 * _LINEAR_SCAN_MAX:
            self._extras().names = set(ops[1::3])
        return self

    def _check_name(self, operation: str, name: object) -> str:
        """The checked name, a str subclass made a plain str."""
        if not isinstance(name, str) or not name:
            raise ValidationError(
                f"{_METHOD[operation]}(): property name must be a non-empty string, "
                f"got {_short.repr(name)}"
            )
        if type(name) is not str:
            name = str.__str__(name)
        problem = text_problem(name)
        if problem:
            raise ValidationError(f"{_METHOD[operation]}(): property name {problem}")
        return name

    def _uses(self, name: str) -> bool:
        names = self._names
        if names is not None:
            return name in names
        return name in self._ops[1::3]

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

    @property
    def _names(self) -> _NameSet | None:
        extra = self._extra
        return extra.names if extra is not None else None

    def _check_mutable(self) -> None:
        if self._flags & FROZEN:
            raise ValidationError(
                "this Identify was already handed to a client and cannot change; build a new one"
            )

    def _freeze(self) -> None:
        self._flags |= FROZEN

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


def _plain_id(value: object) -> bool:
    """An id that needs no further check: ASCII text without surrounding whitespace
    (ASCII whitespace is all at or below " ") that is no placeholder."""
    return (
        type(value) is str
        and value.isascii()
        and value != ""
        and value[0] > " "
        and value[-1] > " "
        and (len(value) not in _PLACEHOLDER_LENGTHS or value.lower() not in PLACEHOLDER_IDS)
    )


def _check_id(value: object, kind: str) -> str:
    """The checked id, a str subclass made a plain str."""
    if isinstance(value, str) and value and not value.strip():
        # Amplitude would create a user named "   ": surely a blank input.
        raise ValidationError(f"{kind} must not be only whitespace")
    problem = id_problem(value, kind, min_length=1)
    if problem:
        raise ValidationError(problem)
    assert isinstance(value, str)
    return value if type(value) is str else str.__str__(value)


_FIELD_ORDER: Final = (
    "app_version",
    "platform",
    "os_name",
    "os_version",
    "device_brand",
    "device_manufacturer",
    "device_model",
    "carrier",
    "country",
    "region",
    "city",
    "dma",
    "language",
    "paying",
    "start_version",
)


def _user_properties(ops: tuple[Any, ...]) -> dict[str, Any]:
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


class _Extra:
    """What few operations have: groups, device and location fields, and the set of
    property names of an Identify with many (see Identify._add)."""

    __slots__ = ("fields", "groups", "names")

    def __init__(self) -> None:
        self.groups: dict[str, Any] | None = None
        self.fields: dict[str, Any] | None = None
        self.names: set[str] | None = None


def _checked_groups(groups: Mapping[Any, Any]) -> dict[str, Any]:
    if not isinstance(groups, Mapping):
        raise ValidationError(f"groups must be an object, got {type(groups).__name__}")
    out: dict[str, Any] = {}
    for group_type, name in groups.items():
        if not isinstance(group_type, str) or not group_type:
            raise ValidationError(
                f"group type must be a non-empty string, got {_short.repr(group_type)}"
            )
        if isinstance(name, str):
            out[plain(group_type)] = plain(name)
        elif isinstance(name, (list, tuple)) and all(isinstance(n, str) for n in name):
            out[plain(group_type)] = [plain(n) for n in name]
        else:
            raise ValidationError(
                f"group {group_type!r} must name a string or a list of strings, "
                f"got {_short.repr(name)}"
            )
    return out
