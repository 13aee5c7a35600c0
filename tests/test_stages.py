"""The stages of the pipeline, each on its own (docs/architecture.md): throttle map,
request limits, lanes merging on arrival, batch assembly in slices, the receipt an
Identify is, and the client's state machine and producer turns."""

from __future__ import annotations

import asyncio
import logging

import pytest

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Delivered, Failed, FailureReason, Identify
from amplitude_async._batcher import Batcher
from amplitude_async._coalesce import Merged
from amplitude_async._encode import BatchEncoder
from amplitude_async._lanes import Lanes
from amplitude_async._ledger import Ledger
from amplitude_async._limits import RECOVER_AFTER, RequestLimits
from amplitude_async._throttle import ThrottleMap
from amplitude_async.testing import HttpRequest, HttpResponse, MockTransport, response

from .conftest import ScriptedServer, fast_config

KEY = "stage-key-0123456789"
URL = "http://127.0.0.1:9/identify"


def _lanes(*, coalesce: bool = True, throttle: ThrottleMap | None = None) -> Lanes:
    return Lanes(
        flush_interval=0.0,
        coalesce=coalesce,
        limits=RequestLimits(1000, 900_000),
        throttle=throttle if throttle is not None else ThrottleMap(100),
    )


# -- throttle map -------------------------------------------------------------------------


def test_the_throttle_map_holds_users_and_devices_apart_and_expires() -> None:
    throttle = ThrottleMap(10)
    throttle.hold(["same-id"], [], until=15.0)
    assert throttle.held_until("same-id", None, now=1.0) == 15.0
    assert throttle.held_until(None, "same-id", now=1.0) is None
    assert throttle.held_until("other", "same-id", now=1.0) is None
    throttle.hold([], ["dev-1"], until=5.0)
    assert throttle.held_until("user-x", "dev-1", now=1.0) == 5.0
    throttle.expire(6.0)
    assert len(throttle) == 1 and throttle.held_until("user-x", "dev-1", now=6.0) is None
    throttle.expire(15.0)
    assert not throttle


def test_the_throttle_map_lets_the_soonest_holds_go_past_its_bound() -> None:
    throttle = ThrottleMap(3)
    for i in range(5):
        throttle.hold([f"user-{i}"], [], until=10.0 + i)
    assert len(throttle) == 3
    assert [throttle.held_until(f"user-{i}", None, 0.0) for i in range(5)] == [
        None,
        None,
        12.0,
        13.0,
        14.0,
    ]


# -- request limits -----------------------------------------------------------------------


def test_limits_shrink_on_413_and_recover_just_under_the_refused_size() -> None:
    limits = RequestLimits(1000, 900_000)
    limits.shrink(failed_size=100_000, failed_items=400)
    assert (limits.size_limit, limits.item_limit) == (50_000, 200)
    assert limits.merge_max == min(16_384, 50_000 // 3)
    for _ in range(RECOVER_AFTER - 1):
        limits.recover()
    # Grown back, but not to what was refused (no 413 every few requests).
    assert limits.size_limit == 99_999 and limits.item_limit == 399
    for _ in range(40):
        limits.recover()
    assert (limits.size_limit, limits.item_limit) == (900_000, 1000)


def test_a_429_lowers_the_per_identity_cap_to_the_servers_threshold() -> None:
    limits = RequestLimits(1000, 900_000)
    limits.throttled(identifications=1, eps_threshold=30)
    assert limits.lane_limit == 1000  # one identification: nothing to lower
    limits.throttled(identifications=200, eps_threshold=30)
    assert limits.lane_limit == 30


# -- lanes: coalescing on arrival ---------------------------------------------------------


def test_a_lane_merges_operations_as_they_arrive() -> None:
    lanes = _lanes()
    ops = [Identify(user_id="user-00001").set("plan", "pro").add("n", 1) for _ in range(5)]
    for op in ops:
        lanes.add(op, 0.0)
    assert len(lanes) == 1 and lanes.ready_units == 1
    lane = lanes.next_lane()
    assert lane is not None
    (unit,) = lane.units
    assert isinstance(unit, Merged) and unit.ops == ops
    assert unit.to_dict() == {
        "user_id": "user-00001",
        "user_properties": {"$set": {"plan": "pro"}, "$add": {"n": 5}},
    }


def test_without_coalescing_every_operation_is_a_unit_in_order() -> None:
    lanes = _lanes(coalesce=False)
    ops = [Identify(user_id="user-00001").add("n", 1) for _ in range(5)]
    for op in ops:
        lanes.add(op, 0.0)
    assert lanes.ready_units == 5
    lane = lanes.next_lane()
    assert lane is not None and lane.units == ops


def test_a_unit_sent_once_absorbs_nothing_more() -> None:
    lanes = _lanes()
    first = Identify(user_id="user-00001").add("n", 1)
    first.first_sent_at = 1.0  # it went out once and came back (a retry)
    lanes.add(first, 0.0)
    later = Identify(user_id="user-00001").add("n", 1)
    lanes.add(later, 0.0)
    lane = lanes.next_lane()
    assert lane is not None and lane.units == [first, later]


def test_a_held_identity_is_not_taken_into_a_batch() -> None:
    throttle = ThrottleMap(10)
    lanes = _lanes(throttle=throttle)
    throttle.hold(["user-hot01"], [], until=50.0)
    held = Identify(user_id="user-hot01").set("a", 1)
    free = Identify(user_id="user-cold1").set("a", 1)
    lanes.add(held, 0.0)
    lanes.add(free, 0.0)
    limits = RequestLimits(1000, 900_000)
    builder = Batcher(lanes, limits, BatchEncoder("k", "form"), Ledger(None)).start()
    assert builder.fill(1.0)
    batch = builder.finish()
    assert batch is not None and batch.units == [free]
    assert lanes.next_deadline() == 50.0


# -- batch assembly in slices -------------------------------------------------------------


def test_batch_assembly_hands_the_loop_back_between_slices() -> None:
    lanes = _lanes()
    for i in range(300):
        lanes.add(Identify(user_id=f"user-{i:05d}").set("a", i), 0.0)
    builder = Batcher(
        lanes, RequestLimits(1000, 900_000), BatchEncoder("k", "form"), Ledger(None)
    ).start()
    slices = 1
    # A slice that is already over: each call takes a little, then the loop's turn.
    while not builder.fill(1.0, until=0.0):
        slices += 1
    batch = builder.finish()
    assert slices >= 4 and batch is not None
    assert [u.user_id for u in batch.units] == [f"user-{i:05d}" for i in range(300)]


def test_an_abandoned_assembly_puts_every_unit_back_in_order() -> None:
    lanes = _lanes(coalesce=False)
    ops = [Identify(user_id="user-00001").set("a", i) for i in range(3)]
    for op in ops:
        lanes.add(op, 0.0)
    builder = Batcher(
        lanes, RequestLimits(1000, 900_000), BatchEncoder("k", "form"), Ledger(None)
    ).start()
    assert not builder.fill(1.0, until=0.0) or builder.batch.units
    builder.abandon(1.0)
    assert lanes.drain_all() == ops


# -- the receipt an Identify is -----------------------------------------------------------


async def test_identify_returns_the_operation_as_its_own_receipt() -> None:
    transport = MockTransport(lambda request: response(200))
    async with AmplitudeClient(
        KEY, server_url=URL, config=fast_config(), transport=transport
    ) as amp:
        op = Identify(user_id="user-00001").set("a", 1)
        receipt = await amp.identify(op)
        assert receipt is op and receipt.op is op
        assert {receipt: 1}[op] == 1  # hashable, by identity
        assert await receipt == Delivered(200, 1)


async def test_add_done_callback_runs_once_with_the_outcome_and_survives_a_bug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[aa.Outcome] = []

    def broken(outcome: aa.Outcome) -> None:
        raise RuntimeError("a callback bug")

    transport = MockTransport(lambda request: response(200))
    async with AmplitudeClient(
        KEY, server_url=URL, config=fast_config(), transport=transport
    ) as amp:
        receipt = await amp.identify(Identify(user_id="user-00001").set("a", 1))
        receipt.add_done_callback(seen.append)
        receipt.add_done_callback(broken)
        with caplog.at_level(logging.ERROR, logger="amplitude_async"):
            outcome = await receipt
        later: list[aa.Outcome] = []
        receipt.add_done_callback(later.append)  # already resolved: called at once
        other = await amp.identify(Identify(user_id="user-00002").set("a", 1))
        assert (await other).ok  # the pipeline went on
    assert seen == [outcome] and later == [outcome]
    assert "callback raised" in caplog.text


# -- the client's state machine and a producer that never yields --------------------------


async def test_a_refused_key_is_a_state_later_operations_fail_at_once() -> None:
    transport = MockTransport(lambda request: response(401, text="Invalid Api-Key"))
    async with AmplitudeClient(
        KEY, server_url=URL, config=fast_config(), transport=transport
    ) as amp:
        first = await amp.identify(Identify(user_id="user-00001").set("a", 1))
        outcome = await first
        assert isinstance(outcome, Failed) and outcome.reason is FailureReason.AUTH
        assert "auth_failed" in repr(amp)
        later = await amp.identify(Identify(user_id="user-00002").set("a", 1))
        assert later.outcome == Failed(FailureReason.AUTH, "the API key was not accepted")
    assert amp.closed and len(transport.requests) == 1


async def test_a_producer_that_never_yields_still_lets_batches_leave(
    server: ScriptedServer,
) -> None:
    """A tight loop of ``await identify()`` (which does not wait for room) used to keep
    the sender from running until the loop ended: the whole backlog left at once."""
    cfg = fast_config(batch_max_items=100, flush_interval=30.0, max_in_flight=2)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        for i in range(3000):
            await amp.identify(Identify(user_id=f"user-{i:05d}").set("a", 1))
        started_while_producing = amp.stats().requests
        await amp.flush()
    assert started_while_producing > 0
    assert sum(len(r.identifications) for r in server.requests) == 3000


async def test_a_transport_bug_is_the_failed_state() -> None:
    def handler(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("a transport bug")

    amp = AmplitudeClient(
        KEY, server_url=URL, config=fast_config(), transport=MockTransport(handler)
    )
    async with amp:
        receipt = await amp.identify(Identify(user_id="user-00001").set("a", 1))
        await asyncio.sleep(0.1)
        assert "failed" in repr(amp)
        with pytest.raises(aa.ClientClosed, match="background task failed"):
            amp.identify_nowait(Identify(user_id="user-00002").set("a", 1))
        with pytest.raises(BaseExceptionGroup):
            await amp.aclose()
    outcome = receipt.outcome
    assert isinstance(outcome, Failed) and outcome.reason is FailureReason.SHUTDOWN
