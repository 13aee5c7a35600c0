"""Identify: the builder, its wire form, and every validation rule (raised at the call)."""

from __future__ import annotations

import math
from typing import Any

import pytest

import amplitude_async as aa
from amplitude_async import Identify, ValidationError


def test_builder_produces_the_documented_wire_object() -> None:
    op = (
        Identify(user_id="user-1", device_id="device-1", platform="iOS", country="DE")
        .set("plan", "pro")
        .set_once("first_seen", "2026-11-22")
        .add("logins", 1)
        .append("tags", "beta")
        .prepend("recent", ["a", "b"])
        .pre_insert("pre", 1)
        .post_insert("post", 2)
        .remove("old_tags", "alpha")
        .unset("legacy")
    )
    assert op.to_dict() == {
        "user_id": "user-1",
        "device_id": "device-1",
        "user_properties": {
            "$set": {"plan": "pro"},
            "$setOnce": {"first_seen": "2026-11-22"},
            "$add": {"logins": 1},
            "$append": {"tags": "beta"},
            "$prepend": {"recent": ["a", "b"]},
            "$preInsert": {"pre": 1},
            "$postInsert": {"post": 2},
            "$remove": {"old_tags": "alpha"},
            "$unset": {"legacy": "-"},
        },
        "platform": "iOS",
        "country": "DE",
    }


def test_clear_all_and_groups_and_paying_bool() -> None:
    op = Identify(device_id="device-1", groups={"org": "acme", "teams": ["a", "b"]}, paying=True)
    op.clear_all()
    assert op.to_dict() == {
        "device_id": "device-1",
        "user_properties": {"$clearAll": "-"},
        "groups": {"org": "acme", "teams": ["a", "b"]},
        "paying": "true",
    }


def test_repr_shows_ids_and_operations() -> None:
    assert repr(Identify(user_id="user-1").set("plan", "pro")) == (
        "Identify(user_id='user-1', $set={'plan': 'pro'})"
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Identify(), "needs a user_id or a device_id"),
        (lambda: Identify(user_id="null"), "placeholder"),
        (lambda: Identify(user_id="Anonymous"), "placeholder"),
        (lambda: Identify(device_id="-1"), "placeholder"),
        (lambda: Identify(user_id=12345), "user_id must be a string"),  # type: ignore[arg-type]
        (lambda: Identify(user_id="user-1").set("a", 1).add("a", 2), "already used"),
        (lambda: Identify(user_id="user-1").set("a", 1).clear_all(), "cannot be combined"),
        (lambda: Identify(user_id="user-1").clear_all().set("a", 1), "cannot be combined"),
        (lambda: Identify(user_id="user-1").add("n", "1"), "needs a finite number"),
        (lambda: Identify(user_id="user-1").add("n", True), "needs a finite number"),
        (lambda: Identify(user_id="user-1").add("n", math.inf), "needs a finite number"),
        (lambda: Identify(user_id="user-1").set("x", object()), "not a JSON value"),
        (lambda: Identify(user_id="user-1").set("x", [[1, 2]]), "nested arrays"),
        (lambda: Identify(user_id="user-1").set("x", math.nan), "not a JSON number"),
        (lambda: Identify(user_id="user-1").set("x", {1: "a"}), "keys must be strings"),
        (lambda: Identify(user_id="user-1").set("", 1), "non-empty string"),
        (lambda: Identify(user_id="user-1", platform=5), "platform must be a string"),  # type: ignore[arg-type]
        (lambda: Identify(user_id="user-1", groups={"org": 5}), "group 'org'"),  # type: ignore[dict-item]
    ],
)
def test_bad_input_raises_a_clear_validation_error(build: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build()


def test_nesting_deeper_than_40_is_refused_and_40_is_fine() -> None:
    def nested(depth: int) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = {"k": value}
        return value

    Identify(user_id="user-1").set("ok", nested(38))
    with pytest.raises(ValidationError, match="deeper than 40"):
        Identify(user_id="user-1").set("deep", nested(45))


def test_validation_error_is_a_package_error_and_a_value_error() -> None:
    with pytest.raises(aa.AmplitudeError):
        Identify()
    with pytest.raises(ValueError):
        Identify()


def test_from_dict_round_trips_the_wire_object() -> None:
    wire = {
        "user_id": "user-1",
        "user_properties": {"$set": {"plan": "pro"}, "$add": {"n": 2}, "$unset": {"x": "-"}},
        "city": "Berlin",
    }
    assert Identify.from_dict(wire).to_dict() == wire


def test_from_dict_takes_plain_properties_as_set() -> None:
    op = Identify.from_dict({"user_id": "user-1", "user_properties": {"plan": "pro", "age": 3}})
    assert op.to_dict()["user_properties"] == {"$set": {"plan": "pro", "age": 3}}


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"user_id": "user-1", "user_properties": {"$set": {"a": 1}, "b": 2}}, "mixes operations"),
        ({"user_id": "user-1", "user_properties": {"$bogus": {"a": 1}}}, "unknown user property"),
        ({"user_id": "user-1", "event_type": "x"}, "unknown identification field"),
        ({"user_properties": {"a": 1}}, "needs a user_id or a device_id"),
        ({"user_id": "user-1", "user_properties": []}, "must be a JSON object"),
        ([1, 2], "must be a JSON object"),
        (
            {"user_id": "user-1", "user_properties": {"$set": {"a": 1}, "$add": {"a": 1}}},
            "already used",
        ),
    ],
)
def test_from_dict_refuses_what_amplitude_refuses(obj: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Identify.from_dict(obj)


def test_many_properties_still_detect_a_repeated_name() -> None:
    op = Identify(user_id="user-1")
    for i in range(50):
        op.set(f"p{i}", i)
    with pytest.raises(ValidationError, match="'p7' is already used"):
        op.add("p7", 1)
    assert len(op.operations) == 50


@pytest.mark.parametrize(
    "build",
    [
        lambda: Identify(user_id="user-\ud800"),
        lambda: Identify(user_id="user-1").set("plan", "pro\udfff"),
        lambda: Identify(user_id="user-1").set("bad\ud800name", 1),
        lambda: Identify(user_id="user-1").append("tags", ["ok", {"k\ud800": 1}]),
    ],
)
def test_text_that_cannot_be_sent_as_json_is_refused_at_the_call(build: Any) -> None:
    with pytest.raises(ValidationError, match="lone surrogate"):
        build()


def test_non_ascii_text_is_fine() -> None:
    op = Identify(user_id="usér-ü").set("ciudad", "Zürich ✓")
    assert op.to_dict()["user_properties"] == {"$set": {"ciudad": "Zürich ✓"}}


def test_every_field_keyword_lands_in_its_own_wire_field() -> None:
    # Identify's constructor pairs its keyword values with a field order kept apart
    # from its signature: each keyword must come out under its own name.
    from amplitude_async._rules import FIELDS

    for name in FIELDS:
        wire = Identify(user_id="user-00001", **{name: "v-" + name}).to_dict()
        assert {k: v for k, v in wire.items() if k in FIELDS} == {name: "v-" + name}
