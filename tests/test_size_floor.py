"""The oversize check at ``identify()``: its length-only ceiling never undercounts, so the
shortcut it allows gives the same answer as encoding every operation."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from amplitude_async import Identify
from amplitude_async._rules import MAX_JSON_INT
from amplitude_async._size_floor import _ceiling, oversize_problem

_encode = msgspec.json.Encoder().encode

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
scalars = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40),
    st.integers(-MAX_JSON_INT, MAX_JSON_INT),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)


def build(pairs: list[tuple[str, Any]]) -> Identify | None:
    op = Identify(user_id="user-1")
    try:
        for name, value in pairs:
            op.set(name, value)
    except ValueError:
        return None  # a repeated or refused name: not what is checked here
    return op


@given(st.lists(st.tuples(names, scalars), min_size=1, max_size=12))
def test_the_ceiling_is_never_below_the_encoded_length(pairs: list[tuple[str, Any]]) -> None:
    op = build(pairs)
    if op is None:
        return
    ops = op._ops
    ceiling = _ceiling(ops)
    # -1: not counted (an int past 10**18), and then the operation is encoded.
    assert ceiling == -1 or ceiling >= len(_encode(ops))


@given(st.lists(st.tuples(names, scalars), min_size=1, max_size=12), st.integers(10, 2000))
def test_the_answer_is_the_encoded_floors_answer(
    pairs: list[tuple[str, Any]], max_bytes: int
) -> None:
    op = build(pairs)
    if op is None:
        return
    ops = op._ops
    floor = len(_encode(ops)) - 15 * (len(ops) // 3) - 2
    assert (oversize_problem(op, max_bytes) is None) == (floor <= max_bytes)


def test_a_container_value_is_always_encoded() -> None:
    op = Identify(user_id="user-1").set("tags", ["a" * 3000])
    assert _ceiling(op._ops) == -1
    assert oversize_problem(op, 2048) is not None
    assert oversize_problem(op, 4096) is None


def test_text_that_escapes_to_six_bytes_a_character_is_counted_so() -> None:
    op = Identify(user_id="user-1").set("\x01" * 10, "\x01" * 100)
    ops = op._ops
    assert len(_encode(ops)) > 600
    assert _ceiling(ops) >= len(_encode(ops))
    assert oversize_problem(op, 600) is not None  # its floor is past 600: encoded, refused
