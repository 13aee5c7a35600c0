"""Batch assembly sizes bodies exactly where it matters: under the byte limit, yet full.

The batcher bounds the body from above (JSON length times the worst escaping) and
counts escaping exactly only near a limit; these tests check that the bound never lets
a body pass the limit and never stops a batch that had room for the next item.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from amplitude_async import Identify
from amplitude_async._batcher import Batch, Batcher
from amplitude_async._encode import BatchEncoder
from amplitude_async._lanes import Lanes
from amplitude_async._ledger import Ledger
from amplitude_async._limits import RequestLimits
from amplitude_async._throttle import ThrottleMap

# Values from "no escaping at all" to "every byte escaped", and multi-byte UTF-8.
_VALUES = st.one_of(
    st.text(alphabet="abcxyz", max_size=60),
    st.text(alphabet='{}"%&+=/ :,', max_size=60),
    st.text(alphabet="é漢😀a", max_size=20),
)


def _op(index: int, value: str, users: int) -> Identify:
    return Identify(user_id=f"user-{index % users:05d}").set("p", value)


def _stages(encoder: BatchEncoder, max_items: int, max_bytes: int) -> tuple[Lanes, Batcher]:
    limits = RequestLimits(max_items, max_bytes)
    lanes = Lanes(flush_interval=0.0, coalesce=False, limits=limits, throttle=ThrottleMap(100))
    return lanes, Batcher(lanes, limits, encoder, Ledger(None))


def _take(batcher: Batcher, now: float) -> Batch | None:
    builder = batcher.start()
    assert builder.fill(now)
    return builder.finish()


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
    lanes, batcher = _stages(encoder, max_items, max_bytes)
    ops = [_op(i, v, users) for i, v in enumerate(values)]
    for op in ops:
        lanes.add(op, 0.0)
    sent: list[Identify] = []
    while lanes.has_sendable():
        batch = _take(batcher, 1.0)
        if batch is None:
            continue
        body = encoder.body(batch.items)
        assert len(body) <= max_bytes
        assert len(batch.units) <= max_items
        # Full: the next operation waiting, if any, would not have fitted.
        if lanes.has_sendable() and len(batch.units) < max_items:
            upcoming = _peek_next_item(lanes, encoder)
            if upcoming is not None:
                assert len(body) + encoder.item_size(upcoming) + (
                    encoder.overhead(2) - encoder.overhead(1)
                ) > max_bytes or _same_lane_blocked(batch)
        sent.extend(u for u in batch.units if isinstance(u, Identify))
        lanes.settle(batch.lanes, None, 1.0)
    # Everything sent (or refused as too large alone), each user's operations in order.
    refused = [op for op in ops if op.outcome is not None]
    assert len(sent) + len(refused) == len(ops)
    for user in {op.user_id for op in ops}:
        mine = [op for op in ops if op.user_id == user]
        got = [op for op in sent if op.user_id == user]
        assert [id(op) for op in got] == [id(op) for op in mine if op in got]


def _peek_next_item(lanes: Lanes, encoder: BatchEncoder) -> bytes | None:
    """The encoded first operation of the lane that would go next (without taking it)."""
    for lane in [*lanes._urgent, *lanes.ready]:
        if lane.units:
            return encoder.encode_item(lane.units[0].to_dict())
    return None


def _same_lane_blocked(batch: Batch) -> bool:
    # A lane already in this batch (BUSY) cannot send more in it: not a size decision.
    return any(lane.units for lane in batch.lanes)


def test_a_body_near_the_limit_is_counted_exactly() -> None:
    """Items that escape to three times their JSON: the upper bound alone would stop
    the batch at a third of the limit; exact counting fills it."""
    encoder = BatchEncoder("key", "form")
    lanes, batcher = _stages(encoder, 1000, 3000)
    plain = "a" * 40  # escapes to itself: the bound overstates it about threefold
    for i in range(100):
        lanes.add(Identify(user_id=f"user-{i:05d}").set("p", plain), 0.0)
    batch = _take(batcher, 1.0)
    assert batch is not None
    body = encoder.body(batch.items)
    one = encoder.item_size(batch.items[0])
    sep = encoder.overhead(2) - encoder.overhead(1)
    assert len(body) <= 3000 < len(body) + one + sep
