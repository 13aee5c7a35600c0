"""A request pacer: at most ``rate`` requests per ``per`` seconds, evenly spaced.

It is GCRA (the "virtual scheduling" form of a token bucket) with reservations: each
caller takes the next free send slot synchronously, then waits on the :class:`Clock`
until its slot comes. There is no lock and no polling loop; waiters are served in
arrival order; and because slots are handed out before anyone waits, concurrent callers
can never overshoot. In any window of ``w`` seconds at most ``burst + w * rate / per``
requests start.

A caller cancelled while it waits gives up its slot without returning it: the pacer then
runs slightly under the rate, never over it.
"""

from __future__ import annotations

import asyncio
import math

from ._clock import Clock
from ._errors import ConfigurationError

__all__ = ["RateLimiter"]


class RateLimiter:
    """Paces starts to ``rate`` per ``per`` seconds, allowing ``burst`` back to back."""

    def __init__(self, rate: float, per: float = 60.0, *, burst: int = 1, clock: Clock) -> None:
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ConfigurationError(f"rate must be a positive number, got {rate!r}")
        if not (isinstance(per, int | float) and math.isfinite(per) and per > 0):
            raise ConfigurationError(f"per must be a positive number of seconds, got {per!r}")
        if not isinstance(burst, int) or burst < 1:
            raise ConfigurationError(f"burst must be a positive int, got {burst!r}")
        self._interval = per / rate
        # How far ahead of the steady schedule a caller may start (the burst allowance).
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        # Theoretical arrival time of the next request on the steady schedule.
        self._tat: float | None = None
        # Never set: the pacer only needs the clock's deadline, not an early wake-up.
        self._never = asyncio.Event()

    @property
    def interval(self) -> float:
        """Seconds between starts at the steady rate."""
        return self._interval

    def reserve(self) -> float:
        """Take the next slot; return the clock time at which it may start."""
        now = self._clock.now()
        tat = now if self._tat is None else max(self._tat, now)
        start = max(now, tat - self._tolerance)
        self._tat = max(tat, start) + self._interval
        return start

    async def acquire(self, interrupt: asyncio.Event | None = None) -> bool:
        """Wait for a slot. False if ``interrupt`` was set first (the slot is given up)."""
        start = self.reserve()
        event = interrupt if interrupt is not None else self._never
        if start > self._clock.now():
            await self._clock.wait(event, start)
        return not event.is_set()

    def hold(self, seconds: float) -> None:
        """Start nothing new for ``seconds`` (the server said to slow down)."""
        if seconds > 0:
            until = self._clock.now() + seconds
            # Every burst slot is used up by the hold, so resume at the steady rate.
            floor = until + self._tolerance
            self._tat = floor if self._tat is None else max(self._tat, floor)

    def __repr__(self) -> str:
        return f"RateLimiter(interval={self._interval:.6g}s)"
