"""The pure semantics: every operation and rule, with literal expected properties."""

from __future__ import annotations

from typing import Any

import pytest

from amplitude_async.emulator import apply_identification
from amplitude_async.emulator._semantics import apply_fields


def apply(props: dict[str, Any], user_properties: dict[str, Any]) -> dict[str, Any]:
    return apply_identification(props, {"user_id": "user-1", "user_properties": user_properties})


@pytest.mark.parametrize(
    ("before", "user_properties", "after"),
    [
        # $set overwrites and adds.
        ({"a": 1}, {"$set": {"a": 2, "b": "x"}}, {"a": 2, "b": "x"}),
        # $setOnce only sets what has no value yet (null counts as a value).
        ({"a": 1, "n": None}, {"$setOnce": {"a": 2, "b": 3, "n": 4}}, {"a": 1, "n": None, "b": 3}),
        # $add starts from 0, sums ints and floats, accepts numeric strings.
        ({"n": 5}, {"$add": {"n": 3, "m": 2}}, {"n": 8, "m": 2}),
        ({"n": 1.5}, {"$add": {"n": -0.5}}, {"n": 1.0}),
        ({"n": "10"}, {"$add": {"n": "5"}}, {"n": 15}),
        # A non-numeric property is treated as missing by $add.
        ({"n": "abc"}, {"$add": {"n": 2}}, {"n": 2}),
        # $append: missing starts a list, a scalar becomes a list, a list value appends each.
        ({}, {"$append": {"l": "a"}}, {"l": ["a"]}),
        ({"l": "x"}, {"$append": {"l": "a"}}, {"l": ["x", "a"]}),
        ({"l": ["x"]}, {"$append": {"l": ["a", "b", "x"]}}, {"l": ["x", "a", "b", "x"]}),
        # $prepend puts the values (in their order) in front.
        ({"l": ["x"]}, {"$prepend": {"l": ["a", "b"]}}, {"l": ["a", "b", "x"]}),
        ({"l": 7}, {"$prepend": {"l": 1}}, {"l": [1, 7]}),
        ({}, {"$prepend": {"l": "a"}}, {"l": ["a"]}),
        # $preInsert / $postInsert add only values not yet present (nor repeated).
        ({"l": ["x", "y"]}, {"$preInsert": {"l": ["a", "x", "a"]}}, {"l": ["a", "x", "y"]}),
        ({"l": ["x", "y"]}, {"$postInsert": {"l": ["y", "b"]}}, {"l": ["x", "y", "b"]}),
        ({}, {"$postInsert": {"l": "a"}}, {"l": ["a"]}),
        ({"l": "x"}, {"$preInsert": {"l": "x"}}, {"l": ["x"]}),
        # $remove drops every instance of each value; a missing property stays missing.
        ({"l": ["a", "b", "a", "c"]}, {"$remove": {"l": "a"}}, {"l": ["b", "c"]}),
        ({"l": ["a", "b", "c"]}, {"$remove": {"l": ["a", "c"], "m": "z"}}, {"l": ["b"]}),
        ({"s": "a", "t": "b"}, {"$remove": {"s": "a", "t": "z"}}, {"s": [], "t": "b"}),
        # $unset removes; the value ("-") is ignored.
        ({"a": 1, "b": 2}, {"$unset": {"a": "-", "zz": "-"}}, {"b": 2}),
        # $clearAll removes everything.
        ({"a": 1, "b": 2}, {"$clearAll": "-"}, {}),
        # Plain properties (no operations) are a $set.
        ({"a": 1}, {"a": 2, "plan": "pro"}, {"a": 2, "plan": "pro"}),
        # Python tuples (not JSON, but what Python callers may pass) count as lists.
        ({"l": ["x"]}, {"$append": {"l": ()}}, {"l": ["x"]}),
        ({}, {"$prepend": {"l": ("a", "b")}}, {"l": ["a", "b"]}),
        # Objects are values like any other.
        ({}, {"$set": {"address": {"city": "Oslo"}}}, {"address": {"city": "Oslo"}}),
    ],
)
def test_each_operation(
    before: dict[str, Any], user_properties: dict[str, Any], after: dict[str, Any]
) -> None:
    assert apply(before, user_properties) == after


def test_operations_run_in_the_documented_order_not_json_order() -> None:
    # Written backwards on purpose: the server order is $clearAll, $unset, $set,
    # $setOnce, $add, $append, $prepend, $preInsert, $postInsert, $remove.
    user_properties = {
        "$remove": {"tags": "old"},
        "$postInsert": {"tags": "post"},
        "$preInsert": {"tags": "pre"},
        "$prepend": {"tags": "first"},
        "$append": {"tags": "old"},
        "$add": {"count": 2},
        "$setOnce": {"count": 100, "since": "2024"},
        "$set": {"count": 1, "tags": ["mid"]},
        "$unset": {"gone": "-"},
        "$clearAll": "-",
    }
    before = {"gone": 1, "kept": "no", "since": "2020"}
    assert apply(before, user_properties) == {
        "count": 3,
        "since": "2024",
        "tags": ["pre", "first", "mid", "post"],
    }


def test_set_then_add_then_remove_on_one_property_follow_the_order() -> None:
    assert apply({"n": 10}, {"$add": {"n": 1}, "$set": {"n": 5}}) == {"n": 6}
    assert apply({}, {"$remove": {"l": "a"}, "$append": {"l": ["a", "b"]}}) == {"l": ["b"]}
    assert apply({"x": 1}, {"$setOnce": {"x": 9}, "$unset": {"x": "-"}}) == {"x": 9}


def test_the_function_is_pure() -> None:
    before = {"l": ["a"], "n": 1}
    identification = {"user_id": "user-1", "user_properties": {"$append": {"l": "b"}}}
    after = apply_identification(before, identification)
    assert before == {"l": ["a"], "n": 1}
    assert after == {"l": ["a", "b"], "n": 1}
    assert identification == {"user_id": "user-1", "user_properties": {"$append": {"l": "b"}}}


def test_identification_without_user_properties_changes_nothing() -> None:
    assert apply_identification({"a": 1}, {"user_id": "user-1"}) == {"a": 1}


def test_device_and_location_fields_are_replaced_as_groups() -> None:
    fields: dict[str, Any] = {}
    apply_fields(
        fields,
        {
            "platform": "iOS",
            "os_name": "ios",
            "device_model": "iPhone",
            "city": "Oslo",
            "country": "NO",
        },
    )
    apply_fields(fields, {"os_name": "android", "region": "Viken", "language": "nb"})
    assert fields == {"os_name": "android", "region": "Viken", "language": "nb"}
    apply_fields(fields, {"app_version": "2.0"})
    assert fields == {
        "os_name": "android",
        "region": "Viken",
        "language": "nb",
        "app_version": "2.0",
    }
