"""Run a coroutine per item of a lazy source, at most N at once, yielding as each ends.

:func:`bounded_as_completed` is the engine of ``ProfileClient.get_many``: the source (an
iterable or an async iterable, a long generator or a database cursor) is consumed only
as fast as slots free up, and results come out in the order they finish.

The generator owns its tasks: none outlives it (its ``finally`` cancels and awaits
them, so closing it early, e.g. through ``contextlib.aclosing``, stops the work at
once), and no task group spans a ``yield``. An exception of one task is raised from the
generator when that task's turn comes.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
)
from typing import Any, TypeVar

__all__ = ["bounded_as_completed"]

T = TypeVar("T")
R = TypeVar("R")


async def bounded_as_completed(
    items: Iterable[T] | AsyncIterable[T],
    run: Callable[[T], Coroutine[Any, Any, R]],
    concurrency: int,
) -> AsyncGenerator[R, None]:
    """``run(item)`` for every item, ``concurrency`` at most at a time; each result as
    its task ends."""
    # Finished tasks arrive through a queue (at most `concurrency` long), so each
    # completion costs O(1), unlike asyncio.wait(), which re-registers on every pending
    # task each time.
    source = _aiter(items)
    pending: set[asyncio.Task[R]] = set()
    finished: asyncio.Queue[asyncio.Task[R]] = asyncio.Queue()
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < concurrency:
                try:
                    one = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                    break
                task = asyncio.create_task(run(one))
                task.add_done_callback(finished.put_nowait)
                pending.add(task)
            if not pending:
                return
            task = await finished.get()
            pending.discard(task)
            yield task.result()
    finally:
        # Not yet yielded: cancel the running ones, and retrieve all their outcomes so
        # that no exception goes unretrieved.
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def _aiter(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for one in items:
            yield one
    else:
        for one in items:
            yield one
