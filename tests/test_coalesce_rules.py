"""Each merge rule and each refusal of ``coalesce()``, with literal expectations.

``merge(*ops)`` coalesces one lane's operations and returns the wire identifications
with the number of operations each carries.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from amplitude_async import Identify
from amplitude_async._coalesce import MERGE_BYTES_MAX, coalesce, ops_of

U = "user-00001"
D = "device-0001"


def merge(*ops: Identify, max_bytes: int = MERGE_BYTES_MAX) -> list[tuple[dict[str, Any], int]]:
    units = coalesce(list(ops), max_bytes=max_bytes)
    # Every operation is carried once, in order, whatever merged.
    assert [op for unit in units for op in ops_of(unit)] == list(ops)
    return [(unit.to_dict(), len(ops_of(unit))) for unit in units]


def ident(**kwargs: Any) -> Identify:
    kwargs.setdefault("user_id", U)
    return Identify(**kwargs)


def props(**operations: dict[str, Any]) -> dict[str, Any]:
    """A wire identification of user U with these operations (``set=`` for "$set")."""
    names = {"set_once": "$setOnce", "clear_all": "$clearAll"}
    return {
        "user_id": U,
        "user_properties": {names.get(k, "$" + k): v for k, v in operations.items()},
    }


# -- merge rules -----------------------------------------------------------------------------


def test_set_then_set_keeps_the_later_value() -> None:
    assert merge(ident().set("plan", "free"), ident().set("plan", "pro")) == [
        (props(set={"plan": "pro"}), 2)
    ]


def test_add_then_add_sums_integers() -> None:
    assert merge(ident().add("logins", 3), ident().add("logins", 4), ident().add("logins", -2)) == [
        (props(add={"logins": 5}), 3)
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [(0.5, 1), (1, 0.5), (0.1, 0.2)],
)
def test_add_with_a_float_is_not_merged(first: float, second: float) -> None:
    # (x + 0.1) + 0.2 and x + (0.1 + 0.2) can differ in the last bit.
    assert merge(ident().add("score", first), ident().add("score", second)) == [
        (props(add={"score": first}), 1),
        (props(add={"score": second}), 1),
    ]


def test_add_past_two_to_the_53_is_not_merged() -> None:
    # A server adding in doubles could not hold the merged sum exactly.
    big = 2**53
    assert merge(ident().add("n", big), ident().add("n", 1)) == [
        (props(add={"n": big}), 1),
        (props(add={"n": 1}), 1),
    ]


def test_set_once_then_set_once_keeps_the_first_value() -> None:
    assert merge(ident().set_once("first_seen", "mon"), ident().set_once("first_seen", "tue")) == [
        (props(set_once={"first_seen": "mon"}), 2)
    ]


def test_append_then_append_concatenates_in_order() -> None:
    assert merge(ident().append("log", 1), ident().append("log", [2, 3])) == [
        (props(append={"log": [1, 2, 3]}), 2)
    ]


def test_append_takes_a_tuple_as_the_json_array_it_is_sent_as() -> None:
    # Regression: a tuple was taken as one value, and the merge sent [[1, 2], 3].
    assert merge(ident().append("log", (1, 2)), ident().append("log", 3)) == [
        (props(append={"log": [1, 2, 3]}), 2)
    ]


def test_append_keeps_a_list_value_of_objects_flat() -> None:
    assert merge(ident().append("log", {"a": 1}), ident().append("log", [{"b": 2}])) == [
        (props(append={"log": [{"a": 1}, {"b": 2}]}), 2)
    ]


def test_prepend_then_prepend_puts_the_later_values_first() -> None:
    assert merge(ident().prepend("recent", "a"), ident().prepend("recent", ["b", "c"])) == [
        (props(prepend={"recent": ["b", "c", "a"]}), 2)
    ]


def test_unset_then_unset_is_one_unset() -> None:
    assert merge(ident().unset("tmp"), ident().unset("tmp")) == [(props(unset={"tmp": "-"}), 2)]


def test_remove_then_remove_is_the_union() -> None:
    assert merge(ident().remove("tags", ["a", "b"]), ident().remove("tags", ["b", "c"])) == [
        (props(remove={"tags": ["a", "b", "c"]}), 2)
    ]


def test_remove_union_keeps_values_json_tells_apart() -> None:
    # Regression: 1 == True == 1.0 in Python, so the union dropped true and 1.0; in JSON
    # they are three different values, and the merge must still remove all three.
    assert merge(ident().remove("v", 1), ident().remove("v", [True, 1.0, 1])) == [
        (props(remove={"v": [1, True, 1.0]}), 2)
    ]


def test_disjoint_properties_share_one_identification() -> None:
    assert merge(
        ident().set("plan", "pro"),
        ident().add("logins", 1).unset("trial"),
        ident().append("log", "x"),
    ) == [
        (
            props(
                set={"plan": "pro"},
                add={"logins": 1},
                unset={"trial": "-"},
                append={"log": "x"},
            ),
            3,
        )
    ]


def test_merges_resume_after_a_refusal() -> None:
    assert merge(
        ident().add("x", 1), ident().append("x", 2), ident().append("x", 3), ident().set("y", 2)
    ) == [
        (props(add={"x": 1}), 1),
        (props(append={"x": [2, 3]}, set={"y": 2}), 3),
    ]


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (lambda o: o.set("p", 1), lambda o: o.unset("p"), {"$unset": {"p": "-"}}),
        (lambda o: o.unset("p"), lambda o: o.set("p", 1), {"$set": {"p": 1}}),
        (lambda o: o.set_once("p", 1), lambda o: o.set("p", 2), {"$set": {"p": 2}}),
        (lambda o: o.add("p", 1), lambda o: o.set("p", 2), {"$set": {"p": 2}}),
        (lambda o: o.append("p", 1), lambda o: o.unset("p"), {"$unset": {"p": "-"}}),
        (lambda o: o.remove("p", 1), lambda o: o.set("p", [1]), {"$set": {"p": [1]}}),
    ],
)
def test_a_later_set_or_unset_replaces_any_earlier_operation(
    first: Any, second: Any, expected: dict[str, Any]
) -> None:
    # The later operation alone decides the property's final value, so the merge is exact.
    a, b = first(ident()), second(ident())
    assert merge(a, b) == [({"user_id": "user-00001", "user_properties": expected}, 2)]


# -- refusals: different operations on one property ---------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (lambda o: o.set("p", 1), lambda o: o.set_once("p", 2)),
        (lambda o: o.set("p", 1), lambda o: o.add("p", 2)),
        (lambda o: o.unset("p"), lambda o: o.append("p", 2)),
        (lambda o: o.append("p", 1), lambda o: o.prepend("p", 2)),
        (lambda o: o.append("p", 1), lambda o: o.remove("p", 1)),
        (lambda o: o.remove("p", 1), lambda o: o.append("p", 1)),
        # Not merged even with themselves: "only values not yet present" does not
        # concatenate (pre_insert [1] then [1, 2] gives [2, 1], not [1, 2]).
        (lambda o: o.pre_insert("p", 1), lambda o: o.pre_insert("p", [1, 2])),
        (lambda o: o.post_insert("p", 1), lambda o: o.post_insert("p", 2)),
    ],
)
def test_different_operations_on_one_property_start_a_new_identification(
    first: Any, second: Any
) -> None:
    a, b = first(ident()), second(ident())
    assert merge(a, b) == [(a.to_dict(), 1), (b.to_dict(), 1)]


def test_a_refused_property_keeps_the_whole_later_operation_out() -> None:
    # "q" could merge, "p" cannot: nothing of the second operation is merged.
    a = ident().set("p", 1).set("q", 1)
    b = ident().set("q", 2).add("p", 1)
    assert merge(a, b) == [(props(set={"p": 1, "q": 1}), 1), (b.to_dict(), 1)]


# -- refusals: what never merges ------------------------------------------------------------


@pytest.mark.parametrize(
    "ops",
    [
        [ident().clear_all(), ident().set("p", 1)],
        [ident().set("p", 1), ident().clear_all()],
        [ident().clear_all(), ident().clear_all()],
        [ident().clear_all(), ident(platform="iOS")],
    ],
)
def test_clear_all_never_merges(ops: list[Identify]) -> None:
    assert merge(*ops) == [(op.to_dict(), 1) for op in ops]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (ident(device_id=D), ident(device_id="device-0002")),
        (ident(), ident(device_id=D)),
        (ident(device_id=D), ident()),
        # One lane can hold a user id and a device id that are the same string.
        (Identify(user_id=U), Identify(device_id=U)),
    ],
)
def test_different_ids_never_merge(a: Identify, b: Identify) -> None:
    a.set("p", 1)
    b.set("q", 2)
    assert merge(a, b) == [(a.to_dict(), 1), (b.to_dict(), 1)]


def test_same_user_and_device_merge() -> None:
    assert merge(ident(device_id=D).set("p", 1), ident(device_id=D).set("q", 2)) == [
        ({"user_id": U, "device_id": D, "user_properties": {"$set": {"p": 1, "q": 2}}}, 2)
    ]


def test_device_only_operations_merge() -> None:
    assert merge(Identify(device_id=D).add("n", 1), Identify(device_id=D).add("n", 1)) == [
        ({"device_id": D, "user_properties": {"$add": {"n": 2}}}, 2)
    ]


def test_groups_on_both_never_merge() -> None:
    a = ident(groups={"org": "acme"}).set("p", 1)
    b = ident(groups={"team": "red"}).set("q", 2)
    assert merge(a, b) == [(a.to_dict(), 1), (b.to_dict(), 1)]


def test_groups_on_one_side_merge_and_are_kept() -> None:
    assert merge(ident().set("p", 1), ident(groups={"org": "acme"}).set("q", 2)) == [
        ({**props(set={"p": 1, "q": 2}), "groups": {"org": "acme"}}, 2)
    ]
    assert merge(ident(groups={"org": "acme"}).set("p", 1), ident().set("q", 2)) == [
        ({**props(set={"p": 1, "q": 2}), "groups": {"org": "acme"}}, 2)
    ]


@pytest.mark.parametrize("groups_first", [True, False])
def test_groups_next_to_an_operation_on_the_group_type_property_never_merge(
    groups_first: bool,
) -> None:
    # Setting groups also sets "org" = "acme" as a user property: order matters.
    grouped = ident(groups={"org": "acme"})
    setter = ident().set("org", "initech")
    ops = [grouped, setter] if groups_first else [setter, grouped]
    assert merge(*ops) == [(op.to_dict(), 1) for op in ops]


def test_operations_of_another_user_in_between_are_not_merged_across() -> None:
    a, other, b = ident().set("p", 1), Identify(user_id="user-00002").set("p", 2), ident()
    b.set("q", 3)
    assert merge(a, other, b) == [(a.to_dict(), 1), (other.to_dict(), 1), (b.to_dict(), 1)]


# -- device, location and other fields ------------------------------------------------------


def test_device_fields_are_replaced_as_a_group() -> None:
    a = ident(platform="iOS", os_name="ios", os_version="17", carrier="Verizon")
    b = ident(device_model="Pixel 8")
    assert merge(a, b) == [({"user_id": U, "device_model": "Pixel 8"}, 2)]


def test_location_fields_are_replaced_as_a_group() -> None:
    a = ident(country="US", region="MA", city="Boston", dma="Boston")
    b = ident(city="Paris", country="FR")
    assert merge(a, b) == [({"user_id": U, "city": "Paris", "country": "FR"}, 2)]


def test_groups_of_fields_not_named_by_the_later_operation_are_kept() -> None:
    a = ident(platform="iOS", country="US", city="Boston").set("p", 1)
    b = ident(region="CA").set("q", 2)
    assert merge(a, b) == [({**props(set={"p": 1, "q": 2}), "platform": "iOS", "region": "CA"}, 2)]


def test_other_fields_take_the_later_value_one_by_one() -> None:
    a = ident(app_version="1.0", language="en", paying=False)
    b = ident(app_version="2.0", start_version="0.9")
    assert merge(a, b) == [
        (
            {
                "user_id": U,
                "app_version": "2.0",
                "language": "en",
                "paying": "false",
                "start_version": "0.9",
            },
            2,
        )
    ]


# -- size: merging never makes an identification too large ---------------------------------


def test_merges_stop_at_max_bytes() -> None:
    big = "x" * 100
    groups = merge(*(ident().append("log", big) for _ in range(5)), max_bytes=500)
    assert [count for _, count in groups] == [2, 2, 1]
    assert [wire["user_properties"]["$append"]["log"] for wire, _ in groups] == [
        [big, big],
        [big, big],
        big,  # alone: sent as given
    ]


def test_an_operation_larger_than_max_bytes_is_still_sent_alone() -> None:
    huge = ident().set("blob", "y" * 1000)
    assert merge(ident().set("p", 1), huge, ident().set("q", 2), max_bytes=500) == [
        (props(set={"p": 1}), 1),
        (props(set={"blob": "y" * 1000}), 1),
        (props(set={"q": 2}), 1),
    ]


def test_default_bound_keeps_every_merged_identification_under_it() -> None:
    # 2,000 appends of 600 bytes (one lane's take): merged whole, that is 1.2 MB, more
    # than a request may carry; bounded, every identification stays under the bound.
    value = "z" * 600
    groups = merge(*(ident().append("log", value) for _ in range(2000)))
    sizes = [len(msgspec.json.encode(wire)) for wire, _ in groups]
    assert sum(count for _, count in groups) == 2000
    assert max(sizes) <= MERGE_BYTES_MAX
    assert len(groups) < 2000 // 20  # still dozens of operations per identification


def test_set_over_and_over_does_not_grow_the_estimate() -> None:
    # B's $set replaces A's: 5,000 updates of one property stay one identification.
    groups = merge(*(ident().set("last_seen", i) for i in range(5000)))
    assert groups == [(props(set={"last_seen": 4999}), 5000)]
