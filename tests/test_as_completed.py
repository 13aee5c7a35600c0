"""get_many's engine alone: a bound on running tasks, results as they finish, a lazy
source, and no task left behind when the consumer stops early."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing

import pytest

from amplitude_async._as_completed import bounded_as_completed


async def test_at_most_n_run_at_once_and_results_come_as_they_finish() -> None:
    running, peak, pulled = 0, 0, []
    gates = {i: asyncio.Event() for i in range(6)}

    def source() -> Iterator[int]:
        for i in range(6):
            pulled.append(i)
            yield i

    async def run(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gates[i].wait()
        running -= 1
        return i * 10

    results = []
    async with aclosing(bounded_as_completed(source(), run, 2)) as stream:
        gates[1].set()
        async for value in stream:
            results.append(value)
            # The source is read only as slots free up.
            assert len(pulled) <= len(results) + 2
            for gate in gates.values():
                if not gate.is_set():
                    gate.set()
                    break
    assert peak == 2
    assert results[0] == 10 and sorted(results) == [0, 10, 20, 30, 40, 50]


async def test_an_async_source_and_an_error_raised_in_its_turn() -> None:
    async def source() -> AsyncIterator[int]:
        for i in (1, 2):
            yield i

    async def run(i: int) -> int:
        if i == 2:
            raise ValueError("two")
        return i

    stream = bounded_as_completed(source(), run, 1)
    assert await anext(stream) == 1
    with pytest.raises(ValueError, match="two"):
        await anext(stream)


async def test_closing_early_cancels_the_tasks_still_running() -> None:
    started: list[asyncio.Task[object]] = []

    async def run(i: int) -> int:
        task = asyncio.current_task()
        assert task is not None
        started.append(task)
        if i:
            await asyncio.sleep(3600)
        return i

    async with aclosing(bounded_as_completed(range(4), run, 3)) as stream:
        assert await anext(stream) == 0
    assert len(started) == 3
    assert all(task.cancelled() for task in started[1:])
