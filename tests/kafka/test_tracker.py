"""The commit tracker and the drain, without a broker: pure bookkeeping."""

from __future__ import annotations

import random

import pytest

from amplitude_async.kafka._drain import REJOIN_MARGIN, Drain, check_timeouts
from amplitude_async.kafka._tracker import PartitionTracker


def tracked(*offsets: int) -> PartitionTracker:
    tracker = PartitionTracker()
    for offset in offsets:
        tracker.add(offset)
    return tracker


def test_nothing_handed_on_means_nothing_to_commit() -> None:
    tracker = PartitionTracker()
    assert tracker.commit_point() is None and tracker.to_commit() is None
    assert tracker.unsettled == 0


def test_commit_point_is_the_first_offset_without_an_outcome() -> None:
    tracker = tracked(10, 11, 12, 13)
    assert tracker.commit_point() == 10
    tracker.settle(11)
    tracker.settle(13)
    # 10 is held (a throttled user, say): nothing after it may be committed.
    assert tracker.commit_point() == 10 and tracker.unsettled == 2
    tracker.settle(10)
    assert tracker.commit_point() == 12
    tracker.settle(12)
    assert tracker.commit_point() == 14 and tracker.unsettled == 0


def test_gaps_in_offsets_are_fine() -> None:
    tracker = tracked(3, 7, 20)
    tracker.settle(7)
    tracker.settle(3)
    assert tracker.commit_point() == 20
    tracker.settle(20)
    assert tracker.commit_point() == 21


def test_to_commit_only_when_the_point_moved() -> None:
    tracker = tracked(0, 1)
    tracker.settle(0)
    assert tracker.to_commit() == 1
    tracker.committed = 1
    assert tracker.to_commit() is None
    tracker.settle(1)
    assert tracker.to_commit() == 2


def test_offsets_seen_before_are_not_fresh_and_cannot_be_added() -> None:
    tracker = tracked(5, 6)
    assert not tracker.fresh(5) and not tracker.fresh(6) and tracker.fresh(7)
    assert tracker.next_offset == 7
    with pytest.raises(ValueError, match="not past"):
        tracker.add(6)


@pytest.mark.parametrize("offset", [4, 9, 100])
def test_settling_an_offset_never_handed_on_raises(offset: int) -> None:
    tracker = tracked(5, 6, 7, 8)
    tracker.settle(5)
    with pytest.raises(ValueError, match="not waiting"):
        tracker.settle(offset)


def test_settling_twice_raises() -> None:
    tracker = tracked(1, 2, 3)
    tracker.settle(2)
    with pytest.raises(ValueError, match="twice"):
        tracker.settle(2)


def test_random_settle_orders_match_a_naive_model() -> None:
    rng = random.Random(7)
    for _ in range(200):
        offsets = sorted(rng.sample(range(100), rng.randint(1, 30)))
        tracker = tracked(*offsets)
        order = offsets[:]
        rng.shuffle(order)
        settled: set[int] = set()
        for offset in order:
            tracker.settle(offset)
            settled.add(offset)
            first_open = next((o for o in offsets if o not in settled), offsets[-1] + 1)
            assert tracker.commit_point() == first_open
            assert tracker.unsettled == len(offsets) - len(settled)


# -- the drain -------------------------------------------------------------------------


def test_drain_is_done_when_everything_settled_or_at_the_deadline() -> None:
    a, b = tracked(0, 1), tracked(0)
    drain = Drain({"p0": a, "p1": b}, deadline=110.0)
    assert drain.left() == 3 and not drain.done(100.0)
    assert drain.remaining(100.0) == 10.0
    a.settle(0)
    b.settle(0)
    assert drain.left() == 1 and not drain.done(109.9)
    assert drain.done(110.0)  # out of time: done, with one left
    assert drain.remaining(111.0) == 0.0
    a.settle(1)
    assert drain.done(100.0)


def test_drain_commits_only_partitions_whose_point_moved() -> None:
    moved, held, same = tracked(0, 1), tracked(4, 5), tracked(9)
    moved.settle(0)
    held.settle(5)  # 4 still open: its point stays at 4, which was committed before
    held.committed = 4
    same.settle(9)
    same.committed = 10
    assert Drain({"a": moved, "b": held, "c": same}, 0.0).offsets() == {"a": 1}


def test_drain_timeout_must_leave_room_before_the_rebalance_timeout() -> None:
    check_timeouts(30.0, 60.0)
    check_timeouts(0.0, REJOIN_MARGIN)
    with pytest.raises(ValueError, match="shorter than rebalance_timeout"):
        check_timeouts(59.0, 60.0)
    with pytest.raises(ValueError, match=">= 0"):
        check_timeouts(-1.0, 60.0)
    with pytest.raises(ValueError, match=">= 0"):
        check_timeouts(float("nan"), 60.0)
