"""A lane's units: the first in a slot, the rest in a list made only for a second one.

Order is what the lane promises (per-identity order), so every way units come and go
is checked against a plain list doing the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from amplitude_async import Identify
from amplitude_async._coalesce import Unit
from amplitude_async._lanes import Lane


def op(n: int) -> Identify:
    return Identify(user_id="user-1").set("n", n)


def test_one_unit_needs_no_list() -> None:
    lane = Lane("user-1")
    first = op(0)
    lane.push(first)
    assert lane.first is first and lane.rest is None
    assert lane.units == [first] and lane.count() == 1
    assert lane.take(5) == [first]
    assert lane.first is None and lane.count() == 0 and lane.units == []


def test_take_leaves_the_rest_in_order_and_push_front_restores_it() -> None:
    lane = Lane("user-1")
    ops = [op(i) for i in range(5)]
    for unit in ops:
        lane.push(unit)
    taken = lane.take(2)
    assert taken == ops[:2] and lane.units == ops[2:]
    lane.push_front(taken)
    assert lane.units == ops and lane.count() == 5
    assert lane.take(5) == ops and lane.count() == 0


def test_push_front_onto_an_empty_lane() -> None:
    lane = Lane("user-1")
    back: list[Unit] = [op(0), op(1)]
    lane.push_front(back)
    assert lane.units == back
    lane.clear()
    lane.push_front([back[0]])
    assert lane.first is back[0] and not lane.rest
    lane.push_front([])
    assert lane.units == [back[0]]


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("push"), st.just(0)),
            st.tuples(st.just("take"), st.integers(1, 6)),
            st.tuples(st.just("front"), st.integers(0, 4)),
        ),
        max_size=40,
    )
)
def test_any_sequence_matches_a_plain_list(steps: Sequence[tuple[str, int]]) -> None:
    lane = Lane("user-1")
    model: list[Unit] = []
    made = 0
    for kind, number in steps:
        if kind == "push":
            unit = op(made)
            made += 1
            lane.push(unit)
            model.append(unit)
        elif kind == "take" and model:
            assert lane.take(number) == model[:number]
            del model[:number]
        elif kind == "front":
            back: list[Unit] = [op(1000 + made + i) for i in range(number)]
            made += len(back)
            lane.push_front(back)
            model[0:0] = back
        assert lane.units == model and lane.count() == len(model)
        assert (lane.first is None) == (not model)
