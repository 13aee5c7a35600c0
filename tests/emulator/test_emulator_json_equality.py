"""$remove, $preInsert and $postInsert compare JSON values, not Python values.

Python says ``True == 1 == 1.0`` and ``False == 0``; in JSON a boolean is never a number.
Numbers still compare by value (``1`` and ``1.0`` are the same JSON number), and arrays
and objects compare structurally under the same rule.
"""

from __future__ import annotations

from typing import Any

import pytest

from amplitude_async._rules import json_key
from amplitude_async.emulator import apply_identification


def apply(props: dict[str, Any], user_properties: dict[str, Any]) -> dict[str, Any]:
    return apply_identification(props, {"user_id": "user-1", "user_properties": user_properties})


@pytest.mark.parametrize(
    ("before", "user_properties", "after"),
    [
        # $remove: a boolean never removes a number, nor a number a boolean.
        ({"l": [1, True, "x"]}, {"$remove": {"l": True}}, {"l": [1, "x"]}),
        ({"l": [1, True, "x"]}, {"$remove": {"l": 1}}, {"l": [True, "x"]}),
        ({"l": [0, False, None]}, {"$remove": {"l": False}}, {"l": [0, None]}),
        ({"l": [0, False, None]}, {"$remove": {"l": [0]}}, {"l": [False, None]}),
        ({"l": [1.0, True]}, {"$remove": {"l": True}}, {"l": [1.0]}),
        # Numbers compare by value: 1 and 1.0 are one JSON number.
        ({"l": [1, True, 2.5]}, {"$remove": {"l": [1.0, 2.5]}}, {"l": [True]}),
        # A scalar property is removed only by an equal JSON value.
        ({"s": 1}, {"$remove": {"s": True}}, {"s": 1}),
        ({"s": True}, {"$remove": {"s": 1}}, {"s": True}),
        ({"s": False}, {"$remove": {"s": False}}, {"s": []}),
        # $preInsert / $postInsert: true is not "already present" in [1], nor 0 in [false].
        ({"l": [1]}, {"$preInsert": {"l": True}}, {"l": [True, 1]}),
        ({"l": [1]}, {"$postInsert": {"l": True}}, {"l": [1, True]}),
        ({"l": [False]}, {"$postInsert": {"l": 0}}, {"l": [False, 0]}),
        ({"l": 1}, {"$postInsert": {"l": [True, 1.0]}}, {"l": [1, True]}),
        # ...nor does a boolean in the operand count as a repeat of a number before it.
        ({}, {"$preInsert": {"l": [1, True, 1.0, True]}}, {"l": [1, True]}),
        # Objects and arrays nested in them compare with the same rule, recursively.
        (
            {"l": [{"a": 1}, {"a": True}]},
            {"$remove": {"l": {"a": True}}},
            {"l": [{"a": 1}]},
        ),
        (
            {"l": [{"a": 1}, {"a": True}]},
            {"$remove": {"l": {"a": 1.0}}},
            {"l": [{"a": True}]},
        ),
        (
            {"l": [{"k": [1, "x"]}, {"k": [True, "x"]}]},
            {"$remove": {"l": [{"k": [True, "x"]}]}},
            {"l": [{"k": [1, "x"]}]},
        ),
        (
            {"l": [{"o": {"n": 0}}]},
            {"$postInsert": {"l": {"o": {"n": False}}}},
            {"l": [{"o": {"n": 0}}, {"o": {"n": False}}]},
        ),
        (
            {"l": [{"k": [1]}]},
            {"$preInsert": {"l": [{"k": [True]}, {"k": [1.0]}]}},
            {"l": [{"k": [True]}, {"k": [1]}]},
        ),
        # Structural equality still holds: key order does not matter, array order does.
        (
            {"l": [{"a": 1, "b": [1, 2]}]},
            {"$postInsert": {"l": [{"b": [1, 2], "a": 1}, {"a": 1, "b": [2, 1]}]}},
            {"l": [{"a": 1, "b": [1, 2]}, {"a": 1, "b": [2, 1]}]},
        ),
        (
            {"l": [{"a": None}, {"a": "1"}, {"a": 1}]},
            {"$remove": {"l": [{"a": None}, {"a": 1}]}},
            {"l": [{"a": "1"}]},
        ),
    ],
)
def test_operations_compare_json_values(
    before: dict[str, Any], user_properties: dict[str, Any], after: dict[str, Any]
) -> None:
    result = apply(before, user_properties)
    assert result == after
    # == alone would accept True for 1: check the types too.
    assert _typed(result) == _typed(after)


@pytest.mark.parametrize(
    ("a", "b", "same", "same_exact"),
    [
        (True, 1, False, False),
        (False, 0, False, False),
        (True, 1.0, False, False),
        (1, 1.0, True, False),
        (None, False, False, False),
        ("1", 1, False, False),
        ([1, True], (1, True), True, True),
        ([1, True], [True, 1], False, False),
        ({"a": [1, {"b": True}]}, {"a": [1, {"b": 1}]}, False, False),
        ({"a": [1, {"b": 2.0}]}, {"a": (1.0, {"b": 2})}, True, False),
        ({"a": 1, "b": None}, {"b": None, "a": 1}, True, True),
        ({"a": 1}, {"a": 1, "b": None}, False, False),
        ([], {}, False, False),
    ],
)
def test_json_key(a: Any, b: Any, same: bool, same_exact: bool) -> None:
    """The shared identity the emulator (by value) and the coalescer (exact) compare with."""
    assert (json_key(a) == json_key(b)) is same
    assert (json_key(a, exact_numbers=True) == json_key(b, exact_numbers=True)) is same_exact
    assert json_key(a) == json_key(a)
    assert hash(json_key(a)) == hash(json_key(a))


def _typed(value: Any) -> Any:
    """``value`` with every scalar tagged by its type, so True and 1 compare unequal."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)
