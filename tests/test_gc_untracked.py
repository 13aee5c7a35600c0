"""Queued operations stay out of CPython's cycle collector in the compiled build.

A full collection walks every object the collector tracks, and it is triggered by how
many tracked objects survived young collections; queued and in-flight operations do
survive them. In the compiled build the per-operation objects (the Identify, which is
its own receipt, its optional extras, a merged identification, a lane) are declared
acyclic (``mypyc_attr(acyclic=True)``), so they carry no GC header and a burst of
them triggers no full collection (docs/build.md, "Queued operations and the garbage
collector"). The pure build keeps CPython's defaults: there these classes are tracked.
"""

from __future__ import annotations

import gc
import importlib.machinery

import pytest

from amplitude_async import Identify
from amplitude_async import _identify as identify_module
from amplitude_async._coalesce import Merged
from amplitude_async._lanes import Lane

COMPILED = (identify_module.__file__ or "").endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))

pytestmark = pytest.mark.skipif(not COMPILED, reason="the pure build keeps CPython's defaults")


def per_operation_objects() -> dict[str, object]:
    op = Identify(user_id="user-1").set("plan", "pro").add("logins", 1)
    grouped = Identify(user_id="user-2", groups={"org": "acme"}, platform="iOS").set("a", 1)
    merged = Merged(op)
    assert merged.absorb(Identify(user_id="user-1").set("seats", 3))
    lane = Lane("user-1")
    lane.push(op)
    assert grouped._extra is not None
    return {
        "identify": op,
        "extras of an identify": grouped._extra,
        "merged": merged,
        "lane": lane,
    }


def test_per_operation_objects_are_not_tracked_by_the_cycle_collector() -> None:
    objects = per_operation_objects()
    assert {name: gc.is_tracked(obj) for name, obj in objects.items()} == dict.fromkeys(
        objects, False
    )


def test_what_they_hold_is_still_kept_alive_and_freed_with_them() -> None:
    # An untracked holder makes what it holds a root for the collector: a collection
    # never frees a value an Identify still holds.
    value = ["a", "b"]
    op = Identify(user_id="user-1").set("tags", value)
    gc.collect()
    assert op.user_properties() == {"$set": {"tags": ["a", "b"]}}
    assert gc.is_tracked(value)


def test_a_receipts_waiter_is_dropped_once_resolved() -> None:
    # The one reference an Identify may hold to a task's world (an awaiting future or
    # callbacks) is let go at resolution, so no cycle through it outlives its outcome.
    from amplitude_async import Delivered

    op = Identify(user_id="user-1").set("plan", "pro")
    seen: list[object] = []
    op.add_done_callback(lambda outcome: seen.append((op, outcome)))
    op._resolve(Delivered(200, 1))
    assert op._listeners is None and seen == [(op, Delivered(200, 1))]


async def test_queuing_operations_allocates_nothing_the_collector_counts() -> None:
    # CPython starts a young collection after 700 allocations of collector-tracked
    # objects that are still alive; queued operations used to add two each (their
    # operation tuple and their lane's list), and those collections are what led to
    # the full ones. Nothing is sent here (the batch never fills, the linger is a
    # minute), so only what queuing allocates is counted.
    from amplitude_async import AmplitudeClient, ClientConfig
    from amplitude_async.testing import MockTransport, response

    config = ClientConfig(batch_max_items=2000, flush_interval=60.0, shutdown_timeout=0.0)
    transport = MockTransport(lambda request: response(200, text="success"))
    ops = 1500
    async with AmplitudeClient("test-api-key", transport=transport, config=config) as amp:
        await amp.identify(Identify(user_id="warm-up").set("plan", "pro"))
        gc.collect()
        gc.disable()
        try:
            before = gc.get_count()[0]
            for i in range(ops):
                await amp.identify(Identify(user_id=f"user-{i}").set("plan", "pro").add("n", 1))
            grown = gc.get_count()[0] - before
        finally:
            gc.enable()
        assert amp.stats().queued == ops + 1
        await amp.flush()
    assert transport.requests, "the flush sent them"
    assert grown < ops * 0.05, f"{grown} tracked allocations for {ops} queued operations"
