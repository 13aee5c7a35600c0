"""Time, injectable: the pipeline reads the time and waits only through a :class:`Clock`.

:class:`SystemClock` is the event loop's monotonic time. :class:`ManualClock` only moves
when a test calls :meth:`ManualClock.advance`, so holds, lingers and backoffs can be
tested without sleeping and hoping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

__all__ = ["Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """What the pipeline needs of time."""

    def now(self) -> float:
        """Monotonic time in seconds."""
        ...

    async def wait(self, event: asyncio.Event, deadline: float | None) -> None:
        """Return when ``event`` is set or the clock reaches ``deadline`` (None: no deadline)."""
        ...


class SystemClock:
    """The monotonic clock (``time.monotonic``, read once per operation on the hot path)."""

    #: Read directly: cheaper than asking the running loop for its time.
    now = staticmethod(time.monotonic)

    async def wait(self, event: asyncio.Event, deadline: float | None) -> None:
        if event.is_set():
            return
        if deadline is None:
            await event.wait()
            return
        # A relative timeout: the loop's own clock need not be time.monotonic.
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await event.wait()
        except TimeoutError:
            return

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to; for tests.

    >>> clock = ManualClock()
    >>> await clock.advance(15.0)   # wakes every waiter whose deadline has come
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def wait(self, event: asyncio.Event, deadline: float | None) -> None:
        if event.is_set():
            return
        if deadline is None:
            await event.wait()
            return
        if deadline <= self._now:
            return
        timer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (deadline, next(self._seq), timer))
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait((waiter, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            timer.cancel()

    async def advance(self, seconds: float) -> None:
        """Move time forward, wake the waiters that are due, and let them run."""
        self._now += seconds
        while self._timers and self._timers[0][0] <= self._now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.done():
                timer.set_result(None)
        # Give woken tasks a few turns of the loop to act on the new time.
        for _ in range(5):
            await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now})"
