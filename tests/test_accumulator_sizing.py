"""Batch assembly sizes bodies exactly where it matters: under the byte limit, yet full.

The accumulator bounds the body from above (JSON length times the worst escaping) and
counts escaping exactly only near a limit; these tests check that the bound never lets
a body pass the limit and never stops a batch that had room for the next item.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from amplitude_async import Identify
from amplitude_async._accumulator import Accumulator
from amplitude_async._encode import BatchEncoder
from amplitude_async._outcome import Receipt

# Values from "no escaping at all" to "every byte escaped", and multi-byte UTF-8.
_VALUES = st.one_of(
    st.text(alphabet="abcxyz", max_size=60),
    st.text(alphabet='{}"%&+=/ :,', max_size=60),
    st.text(alphabet="é漢😀a", max_size=20),
)


def _op(index: int, value: str, users: int) -> Identify:
    return Identify(user_id=f"user-{index % users:05d}").set("p", value)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(_VALUES, min_size=1, max_size=120),
    users=st.integers(1, 40),
    max_bytes=st.integers(600, 6000),
    max_items=st.integers(1, 50),
    encoding=st.sampled_from(["form", "multipart"]),
)
def test_batches_stay_under_the_byte_limit_and_are_full(
    values: list[str], users: int, max_bytes: int, max_items: int, encoding: str
) -> None:
    encoder = BatchEncoder("key", encoding)
    acc = Accumulator(
        encoder,
        max_items=max_items,
        max_bytes=max_bytes,
        flush_interval=0.0,
        coalesce=False,
        throttle_map_max=100,
    )
    receipts = [Receipt(_op(i, v, users)) for i, v in enumerate(values)]
    for receipt in receipts:
        acc.add(receipt, 0.0)
    sent: list[Receipt] = []
    refused = 0
    while acc.has_sendable():
        batch, gone = acc.take(1.0)
        refused += sum(len(r.group.receipts) for r in gone)
        if batch is None:
            continue
        items = [g.encoded for g in batch.groups]
        assert all(item is not None for item in items)
        body = encoder.body(items)  # type: ignore[arg-type]
        assert len(body) <= max_bytes
        assert len(batch.groups) <= max_items
        # Full: the next operation waiting, if any, would not have fitted.
        if acc.has_sendable() and len(batch.groups) < max_items:
            upcoming, _ = _peek_next_item(acc, encoder)
            if upcoming is not None:
                assert len(body) + encoder.item_size(upcoming) + (
                    encoder.overhead(2) - encoder.overhead(1)
                ) > max_bytes or _same_lane_blocked(batch, upcoming, acc)
        sent.extend(r for g in batch.groups for r in g.receipts)
        acc.settle(batch, [], 1.0)
    # Everything sent (or refused as too large alone), each user's operations in order.
    assert len(sent) + refused == len(receipts)
    for user in {r.op.user_id for r in receipts}:
        mine = [r for r in receipts if r.op.user_id == user]
        got = [r for r in sent if r.op.user_id == user]
        assert got == [r for r in mine if r in got]


def _peek_next_item(acc: Accumulator, encoder: BatchEncoder) -> tuple[bytes | None, str | None]:
    """The encoded first operation of the lane that would go next (without taking it)."""
    lanes = list(acc._urgent) + list(acc._ready)
    for lane in lanes:
        if lane.pending:
            return encoder.encode_item(lane.pending[0].op.to_dict()), lane.key
    return None, None


def _same_lane_blocked(batch: object, upcoming: bytes, acc: Accumulator) -> bool:
    # A lane already in this batch (BUSY) cannot send more in it: not a size decision.
    return any(lane.pending for lane in batch.lanes)  # type: ignore[attr-defined]


def test_a_body_near_the_limit_is_counted_exactly() -> None:
    """Items that escape to three times their JSON: the upper bound alone would stop
    the batch at a third of the limit; exact counting fills it."""
    encoder = BatchEncoder("key", "form")
    acc = Accumulator(
        encoder,
        max_items=1000,
        max_bytes=3000,
        flush_interval=0.0,
        coalesce=False,
        throttle_map_max=100,
    )
    plain = "a" * 40  # escapes to itself: the bound overstates it about threefold
    for i in range(100):
        acc.add(Receipt(Identify(user_id=f"user-{i:05d}").set("p", plain)), 0.0)
    batch, refused = acc.take(1.0)
    assert batch is not None and not refused
    body = encoder.body([g.encoded for g in batch.groups])  # type: ignore[misc]
    one = encoder.item_size(batch.groups[0].encoded)  # type: ignore[arg-type]
    sep = encoder.overhead(2) - encoder.overhead(1)
    assert len(body) <= 3000 < len(body) + one + sep
