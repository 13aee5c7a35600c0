"""The pacer (RateLimiter) and the TTL cache, on a manual clock."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from amplitude_async import ConfigurationError, ManualClock
from amplitude_async._ratelimit import RateLimiter
from amplitude_async._ttlcache import TTLCache


async def test_pacer_spaces_concurrent_callers_at_the_rate() -> None:
    clock = ManualClock()
    pacer = RateLimiter(600, 60.0, clock=clock)  # one every 0.1 s
    starts: list[float] = []

    async def caller() -> None:
        assert await pacer.acquire()
        starts.append(clock.now())

    tasks = [asyncio.create_task(caller()) for _ in range(20)]
    await asyncio.sleep(0)
    while not all(t.done() for t in tasks):
        await clock.advance(0.01)
    assert len(starts) == 20
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.1 - 1e-9
    # Nobody waits longer than the schedule needs (one step of the manual clock).
    assert starts[-1] - starts[0] <= 19 * 0.1 + 0.011


def test_burst_allows_back_to_back_then_the_rate() -> None:
    clock = ManualClock()
    pacer = RateLimiter(1, 1.0, burst=3, clock=clock)
    now = clock.now()
    assert [pacer.reserve() - now for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 2.0]


def test_hold_delays_the_next_start() -> None:
    clock = ManualClock()
    pacer = RateLimiter(600, 60.0, clock=clock)
    first = pacer.reserve()
    pacer.hold(5.0)
    assert pacer.reserve() == pytest.approx(first + 5.0)
    assert pacer.reserve() == pytest.approx(first + 5.1)


async def test_acquire_returns_false_when_interrupted() -> None:
    clock = ManualClock()
    pacer = RateLimiter(1, 60.0, clock=clock)
    stop = asyncio.Event()
    assert await pacer.acquire(stop)
    waiting = asyncio.create_task(pacer.acquire(stop))
    await asyncio.sleep(0)
    stop.set()
    assert await waiting is False


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
def test_pacer_rejects_bad_rates(rate: float) -> None:
    with pytest.raises(ConfigurationError):
        RateLimiter(rate, clock=ManualClock())


async def test_cache_entry_expires_after_ttl() -> None:
    clock = ManualClock()
    cache: TTLCache[str, int] = TTLCache(ttl=30.0, max_size=10, clock=clock)
    cache.put("a", 1)
    await clock.advance(29.9)
    assert cache.get("a") == 1
    await clock.advance(0.1)
    assert cache.get("a") is None
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 1)


def test_cache_evicts_least_recently_used_when_full() -> None:
    cache: TTLCache[str, int] = TTLCache(ttl=30.0, max_size=2, clock=ManualClock())
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)
