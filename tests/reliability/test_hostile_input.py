"""Issue 13, items 7 and 8: odd input is settled at the call.

7. Values of a str, int or float subclass (``class UserId(str)``) were accepted at the
   call and then failed later, in their batch, as ``invalid`` ("Encoding objects of type
   UserId is unsupported"). They are now normalised to the base type at the call (the
   value is what the caller meant; refusing would make every caller write ``str()``),
   and delivered. Enums keep working as before.
8. Whitespace-only ids were accepted (and made a user named "      "); a value nested a
   thousand deep raised RecursionError instead of ValidationError.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from typing import Any

import pytest

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Delivered, Identify
from amplitude_async.emulator import Emulator

from ..conftest import fast_config

KEY = "hostile-key-000777"


class UserId(str):
    pass


class Name(str):
    pass


class Count(int):
    pass


class Ratio(float):
    pass


class Plan(enum.StrEnum):
    PRO = "pro"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_keys=[KEY]) as emulator:
        yield emulator


async def test_str_int_and_float_subclasses_are_delivered_as_plain_values(emu: Emulator) -> None:
    op = (
        Identify(
            user_id=UserId("user-00001"),
            device_id=UserId("device-0001"),
            platform=Name("iOS"),
            groups={Name("org"): Name("acme"), "teams": [Name("red"), "blue"]},
        )
        .set(Name("plan"), Plan.PRO)
        .set("label", Name("gold"))
        .set("obj", {Name("k"): [Name("v"), Count(3)], "r": Ratio(0.25)})
        .add("logins", Count(2))
        .add("score", Ratio(1.5))
        .append("tags", [Name("a"), Name("b")])
    )
    # Normalised at the call: what is queued is plain str/int/float.
    assert type(op.user_id) is str and type(op.device_id) is str
    wire = op.to_dict()
    assert type(wire["user_properties"]["$add"]["logins"]) is int
    assert type(wire["user_properties"]["$add"]["score"]) is float
    assert [type(t) for t in wire["user_properties"]["$append"]["tags"]] == [str, str]
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config()) as amp:
        receipt = await amp.identify(op)
        outcome = await asyncio.wait_for(_await(receipt), 10)
    assert isinstance(outcome, Delivered), outcome
    props = emu.user("user-00001")
    assert props is not None
    assert props["plan"] == "pro" and props["label"] == "gold"
    assert props["obj"] == {"k": ["v", 3], "r": 0.25}
    assert props["logins"] == 2 and props["score"] == 1.5 and props["tags"] == ["a", "b"]


async def test_a_plain_value_is_still_kept_by_reference() -> None:
    tags = ["a", "b"]
    op = Identify(user_id="user-00001").append("tags", tags)
    assert op.operations[0][2] is tags  # nothing to normalise: not copied


@pytest.mark.parametrize("blank", ["      ", "\t\n  ", "\u3000\u3000\u3000\u3000\u3000"])
def test_whitespace_only_ids_are_refused_at_the_call(blank: str) -> None:
    with pytest.raises(aa.ValidationError, match="whitespace"):
        Identify(user_id=blank)
    with pytest.raises(aa.ValidationError, match="whitespace"):
        Identify(device_id=blank)
    with pytest.raises(aa.ValidationError, match="whitespace"):
        Identify.from_dict({"user_id": blank, "user_properties": {"a": 1}})


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _deep_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("deep", [_deep_list(1000), _deep_dict(1000)], ids=["list", "dict"])
def test_a_value_nested_a_thousand_deep_is_a_validation_error(deep: Any) -> None:
    calls = [
        lambda: Identify(user_id="user-00001").set("x", deep),
        lambda: Identify(user_id="user-00001").append("x", deep),
        lambda: Identify(user_id="user-00001").add("x", deep),
        lambda: Identify(user_id="user-00001").set(deep, 1),  # type: ignore[arg-type]
        lambda: Identify(user_id="user-00001", groups={"org": deep}),
        lambda: Identify.from_dict({"user_id": "user-00001", "user_properties": {"x": deep}}),
        lambda: Identify.from_dict({"user_id": "user-00001", "groups": {"org": deep}}),
    ]
    for call in calls:
        with pytest.raises(aa.ValidationError) as info:
            call()
        assert len(str(info.value)) < 500


async def _await(receipt: aa.Receipt) -> aa.Outcome:
    return await receipt


def test_an_integer_no_double_can_hold_is_refused_at_the_call() -> None:
    """The emulator refuses it with a 400 (item 9); the client refuses it at the call."""
    for call in (
        lambda: Identify(user_id="user-00001").set("n", 10**400),
        lambda: Identify(user_id="user-00001").add("n", -(10**400)),
        lambda: Identify(user_id="user-00001").append("n", [1, 10**400]),
    ):
        with pytest.raises(aa.ValidationError, match="too large"):
            call()
    Identify(user_id="user-00001").set("n", 2**63).add("m", 10**300)  # large but fine
