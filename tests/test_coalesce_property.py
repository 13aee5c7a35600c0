"""Coalescing changes nothing the server ends up with: hypothesis against the reference.

(a) The pure function: applying ``coalesce()``'s identifications one by one with the
emulator's reference semantics gives exactly the properties (and device/location/app
fields and groups) that applying every original operation one by one gives.
(b) End to end: the same random operations sent through ``AmplitudeClient`` to the
emulator on 127.0.0.1 end in exactly the reference state, coalescing on and off.

"Exactly" is JSON-exact: states are compared as canonical JSON, so ``1``, ``1.0`` and
``true`` are different values here even though Python's ``==`` says they are equal.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amplitude_async import AmplitudeClient, Delivered, Identify
from amplitude_async._coalesce import coalesce, ops_of
from amplitude_async.emulator import EmulatorThread, apply_identification
from amplitude_async.emulator._semantics import apply_fields

from .conftest import fast_config

USERS = ("user-alpha", "user-bravo", "user-charlie")
DEVICES = (None, None, "device-0001", "device-0002")
# "org" is also a group type below, so merges next to groups are exercised too.
PROPERTIES = ("p", "q", "r", "org")
KEY = "coalesce-key"

# Small JSON values. Floats are dyadic (exact in binary), so sums do not round; the
# rounding caveat of merged integer $adds onto a fractional value is a unit test.
scalars = st.one_of(
    st.integers(-3, 3),
    st.sampled_from(["a", "b", "7", "-2", "0.5", ""]),
    st.sampled_from([0.5, -1.5, 2.0]),
    st.booleans(),
    st.none(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.lists(scalars, max_size=3).map(tuple),
    st.dictionaries(st.sampled_from(["k", "m"]), scalars, max_size=2),
)
add_amounts = st.one_of(st.integers(-5, 5), st.sampled_from([0.5, -0.25, 1.5]))
KINDS = (
    "set",
    "set_once",
    "add",
    "append",
    "prepend",
    "pre_insert",
    "post_insert",
    "remove",
    "unset",
)
FIELD_CHOICES = {
    "platform": ("iOS", "Android"),
    "os_name": ("ios", "android"),
    "device_model": ("iPhone", "Pixel"),
    "carrier": ("Verizon",),
    "country": ("US", "FR"),
    "city": ("Paris", "Boston"),
    "dma": ("Boston",),
    "app_version": ("1.0", "2.0"),
    "language": ("en", "fr"),
    "paying": ("true", "false"),
}
GROUP_CHOICES = ({"org": "acme"}, {"team": ["red", "blue"]}, {"org": "initech", "team": "x"})


@st.composite
def operations(
    draw: st.DrawFn,
    users: tuple[str, ...] = USERS,
    kinds: tuple[str, ...] = KINDS,
    names: tuple[str, ...] = PROPERTIES,
    devices: tuple[str | None, ...] = DEVICES,
) -> Identify:
    """One random operation; ``clear_all`` about one time in ten (if not excluded)."""
    user = draw(st.sampled_from(users))
    device = draw(st.sampled_from(devices))
    chosen: dict[str, str] = {}
    if draw(st.integers(0, 2)) == 0:
        picked = draw(st.lists(st.sampled_from(sorted(FIELD_CHOICES)), max_size=3, unique=True))
        chosen = {name: draw(st.sampled_from(FIELD_CHOICES[name])) for name in picked}
    groups = draw(st.sampled_from(GROUP_CHOICES)) if draw(st.integers(0, 4)) == 0 else None
    op = Identify(user_id=user, device_id=device, groups=groups, **chosen)
    if draw(st.integers(0, 9)) == 0:
        return op.clear_all()
    for name in draw(st.lists(st.sampled_from(names), max_size=min(3, len(names)), unique=True)):
        kind = draw(st.sampled_from(kinds))
        if kind == "unset":
            op.unset(name)
        elif kind == "add":
            op.add(name, draw(add_amounts))
        else:
            getattr(op, kind)(name, draw(values))
    return op


@st.composite
def sequences(
    draw: st.DrawFn, *, min_size: int, max_size: int, users: tuple[str, ...] = USERS
) -> list[Identify]:
    """Random operations over a palette drawn per example (a few users, kinds,
    properties and devices), so that consecutive operations often meet on the same
    property with the same kind: the cases where merge rules apply."""
    palette_users = tuple(
        draw(st.lists(st.sampled_from(users), min_size=1, max_size=len(users), unique=True))
    )
    kinds = tuple(draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True)))
    names = tuple(draw(st.lists(st.sampled_from(PROPERTIES), min_size=1, max_size=3, unique=True)))
    devices = tuple(draw(st.lists(st.sampled_from(DEVICES), min_size=1, max_size=2)))
    return draw(
        st.lists(
            operations(palette_users, kinds, names, devices), min_size=min_size, max_size=max_size
        )
    )


initial_props = st.dictionaries(st.sampled_from(PROPERTIES), values, max_size=3)


def _wire(identification: dict[str, Any]) -> dict[str, Any]:
    """What the server decodes: the identification through JSON and back."""
    decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(identification))
    return decoded


class UserState:
    """The reference state of one user: properties, fields and groups."""

    def __init__(self, props: dict[str, Any] | None = None) -> None:
        self.props: dict[str, Any] = dict(props or {})
        self.fields: dict[str, Any] = {}
        self.groups: dict[str, Any] = {}

    def apply(self, identification: dict[str, Any]) -> None:
        wire = _wire(identification)
        self.props = apply_identification(self.props, wire)
        apply_fields(self.fields, wire)
        self.groups.update(wire.get("groups") or {})

    def canonical(self) -> str:
        return canonical({"props": self.props, "fields": self.fields, "groups": self.groups})


def canonical(value: Any) -> str:
    """JSON-exact form of a value: 1, 1.0 and true differ; key order does not matter."""
    return json.dumps(value, sort_keys=True)


def reference(ops: list[Identify], initial: dict[str, Any] | None = None) -> dict[str, UserState]:
    """Every operation applied one at a time, per user."""
    states: dict[str, UserState] = {}
    for op in ops:
        assert op.user_id is not None
        state = states.setdefault(op.user_id, UserState(initial))
        state.apply(op.to_dict())
    return states


def by_lane(ops: list[Identify]) -> dict[str, list[Identify]]:
    lanes: dict[str, list[Identify]] = {}
    for op in ops:
        lanes.setdefault(op.identity, []).append(op)
    return lanes


# -- (a) the pure function ---------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(sequences(min_size=1, max_size=12), initial_props)
def test_coalesced_groups_apply_to_the_same_state(
    ops: list[Identify], initial: dict[str, Any]
) -> None:
    expected = reference(ops, initial)
    for user, lane in by_lane(ops).items():
        units = coalesce(lane)
        # Every operation is carried exactly once, in order.
        assert [op for unit in units for op in ops_of(unit)] == lane
        state = UserState(initial)
        for unit in units:
            assert unit.identity == user
            wire = unit.to_dict()
            # Ids are never merged away: each operation goes out under its own ids.
            for op in ops_of(unit):
                assert wire.get("user_id") == op.user_id
                assert wire.get("device_id") == op.device_id
            state.apply(wire)
        assert state.canonical() == expected[user].canonical()


@settings(max_examples=200, deadline=None)
@given(sequences(min_size=2, max_size=30, users=USERS[:1]))
def test_one_hot_user_merges_and_stays_exact(ops: list[Identify]) -> None:
    """One lane, long sequences: the case coalescing is for."""
    units = coalesce(ops)
    assert 1 <= len(units) <= len(ops)
    state = UserState()
    for unit in units:
        state.apply(unit.to_dict())
    assert state.canonical() == reference(ops)[USERS[0]].canonical()


# -- (b) end to end through the client and the emulator ------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    """One emulator for the module (reset per example); no throttling, so every
    identification is applied on its first attempt and the examples stay fast."""
    with EmulatorThread(api_keys=[KEY], eps_threshold=None) as emu:
        yield emu


async def _send(url: str, ops: list[Identify], *, coalesce_on: bool) -> tuple[int, int, bool]:
    """Send ``ops`` in order; return (delivered, identifications, all delivered)."""
    config = fast_config(coalesce=coalesce_on, flush_interval=0.005)
    async with AmplitudeClient(KEY, server_url=url, config=config) as amp:
        receipts = [await amp.identify(op) for op in ops]
        await amp.flush()
        outcomes = [await r for r in receipts]
        stats = amp.stats()
    return stats.delivered, stats.identifications, all(isinstance(o, Delivered) for o in outcomes)


def _check_end_to_end(emu: EmulatorThread, ops: list[Identify], *, coalesce_on: bool) -> int:
    emu.reset()
    delivered, identifications, all_delivered = asyncio.run(
        _send(emu.identify_url, ops, coalesce_on=coalesce_on)
    )
    assert all_delivered
    assert delivered == len(ops)
    assert emu.stats().applied == identifications
    expected = reference(ops)
    for user, state in expected.items():
        record = emu.record(user_id=user)
        assert record is not None
        got = canonical(
            {
                "props": record["user_properties"],
                "fields": record["fields"],
                "groups": record["groups"],
            }
        )
        assert got == state.canonical(), user
    assert set(emu.users()) == set(expected)
    return identifications


E2E = settings(max_examples=100, deadline=None)


@E2E
@given(sequences(min_size=1, max_size=25))
def test_client_with_coalescing_reaches_the_reference_state(
    emulator: EmulatorThread, ops: list[Identify]
) -> None:
    identifications = _check_end_to_end(emulator, ops, coalesce_on=True)
    assert 1 <= identifications <= len(ops)


@E2E
@given(sequences(min_size=1, max_size=25))
def test_client_without_coalescing_reaches_the_reference_state(
    emulator: EmulatorThread, ops: list[Identify]
) -> None:
    identifications = _check_end_to_end(emulator, ops, coalesce_on=False)
    assert identifications == len(ops)


def test_hot_user_sequence_is_coalesced_end_to_end(emulator: EmulatorThread) -> None:
    """A literal case that must merge: 200 counter bumps and list appends of one user."""
    ops = [
        Identify(user_id=USERS[0]).add("logins", 1).append("seen", i).set("last", i)
        for i in range(200)
    ]
    identifications = _check_end_to_end(emulator, ops, coalesce_on=True)
    assert identifications < 20
    record = emulator.record(user_id=USERS[0])
    assert record is not None
    assert record["user_properties"] == {"logins": 200, "seen": list(range(200)), "last": 199}
