"""Bounded memory: with the server stalled, a producer pushing far more than queue_max
keeps the client's memory flat under every on_full policy; the throttle map and the
per-identity lanes stay bounded under 429 storms naming ever new identities."""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Identify
from amplitude_async.emulator import Emulator

from ..conftest import Request, ScriptedServer, fast_config
from .harness import KEY, SECRET, wait_until

Summary = Callable[[str, str], None]
QUEUE_MAX = 2000
OVERFLOW = 10  # the producer tries to push this many times queue_max


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_keys=[KEY], secret_key=SECRET, eps_threshold=None) as emulator:
        yield emulator


def make(i: int) -> Identify:
    return Identify(user_id=f"user-{i:07d}").set("plan", "pro").append("log", i)


def _label(outcome: aa.Outcome) -> str:
    return outcome.reason.value if isinstance(outcome, aa.Failed) else "delivered"


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.parametrize("policy", ["wait", "drop", "raise"])
async def test_memory_stays_flat_when_a_producer_outruns_a_stalled_server(
    emu: Emulator, policy: str, summary: Summary
) -> None:
    emu.pause()
    reasons: Counter[str] = Counter()
    cfg = fast_config(
        queue_max=QUEUE_MAX,
        on_full=policy,
        batch_max_items=100,
        max_in_flight=2,
        request_timeout=30.0,
        on_outcome=lambda _op, o: reasons.update([_label(o)]),
    )
    tracemalloc.start()
    try:
        async with AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg) as amp:
            empty = traced()
            held = [await amp.identify(make(i)) for i in range(QUEUE_MAX)]
            await wait_until(lambda: amp.stats().in_flight == cfg.max_in_flight)
            full = traced()
            tracemalloc.reset_peak()
            pushed = refused = 0
            most_queued = 0
            total = OVERFLOW * QUEUE_MAX
            if policy == "wait":
                blocked = asyncio.Event()

                async def producer() -> None:
                    nonlocal pushed
                    for i in range(QUEUE_MAX, QUEUE_MAX + total):
                        if amp.stats().queued >= QUEUE_MAX:
                            blocked.set()
                        await amp.identify(make(i))
                        pushed += 1

                task = asyncio.ensure_future(producer())
                await asyncio.wait_for(blocked.wait(), 10)
                await wait_until(lambda: amp.stats().waiting == 1)
                most_queued = amp.stats().queued
            else:
                for i in range(QUEUE_MAX, QUEUE_MAX + total):
                    try:
                        await amp.identify(make(i))
                        pushed += 1
                    except aa.QueueFull:
                        refused += 1
                    most_queued = max(most_queued, amp.stats().queued)
            _, peak = tracemalloc.get_traced_memory()
            after = traced()
            tracemalloc.stop()
            queue_cost = full - empty
            # Everything past queue_max costs (almost) nothing that stays.
            assert most_queued <= QUEUE_MAX
            assert after - full < max(64 * 1024, queue_cost // 10), (empty, full, after)
            assert peak - full < max(256 * 1024, queue_cost // 4), (empty, full, peak)
            emu.resume()
            if policy == "wait":
                await asyncio.wait_for(task, 60)
            await asyncio.wait_for(amp.flush(), 60)
            stats = amp.stats()
    finally:
        tracemalloc.stop()
    assert all(r.outcome is not None and r.outcome.ok for r in held)
    if policy == "wait":
        assert pushed == total and stats.delivered == QUEUE_MAX + total
    elif policy == "drop":
        assert pushed == total and reasons["dropped"] == total and stats.dropped == total
    else:
        assert refused == total and stats.enqueued == QUEUE_MAX
    assert stats.queued == 0
    summary(
        f"memory[{policy}]",
        f"queue_max={QUEUE_MAX} attempted={QUEUE_MAX + total} most_queued={most_queued} "
        f"queue_cost={queue_cost // 1024}KiB growth_past_full={(after - full) // 1024}KiB "
        f"peak_past_full={(peak - full) // 1024}KiB outcomes={dict(reasons)}",
    )


async def test_throttle_map_and_lanes_stay_bounded_under_429s_naming_new_identities(
    server: ScriptedServer, summary: Summary
) -> None:
    """Every request answered 429 naming its users plus 50 identities never seen: the
    throttle map never grows past throttle_map_max, and lanes past what is queued."""
    seen = {"named": 0}

    def answer(request: Request) -> web.Response:
        if request.number % 4 == 3:
            return web.Response(text="success")
        users = [u for u in request.users() if u] + [
            f"ghost-{request.number}-{i}" for i in range(50)
        ]
        seen["named"] += len(users)
        body = {
            "code": 429,
            "error": "Too many requests",
            "throttled_users": dict.fromkeys(users, 31),
        }
        return web.Response(status=429, text=json.dumps(body))

    server.responder = answer
    cfg = fast_config(throttle_map_max=100, throttle_hold=0.01, batch_max_items=20)
    most_throttled = most_lanes = 0
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = []
        for i in range(1000):
            receipts.append(await amp.identify(make(i)))
            most_throttled = max(most_throttled, amp.stats().throttled_identities)
            most_lanes = max(most_lanes, amp.stats().identities)
            if i % 50 == 0:
                await asyncio.sleep(0.005)

        def settled() -> bool:
            nonlocal most_throttled
            most_throttled = max(most_throttled, amp.stats().throttled_identities)
            return all(r.done() for r in receipts)

        await wait_until(settled)
        stats = amp.stats()
    assert all(r.outcome is not None and r.outcome.ok for r in receipts)
    assert most_throttled <= cfg.throttle_map_max
    assert most_lanes <= 1000
    assert stats.throttle_responses > 20 and seen["named"] > 2000
    summary(
        "memory[throttle_map]",
        f"429s={stats.throttle_responses} identities_named={seen['named']} "
        f"throttle_map_max={cfg.throttle_map_max} most_held={most_throttled}",
    )
