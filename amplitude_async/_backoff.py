"""Retry delays: exponential backoff with full jitter, as one small pure function."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["backoff_delay"]


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Full jitter: a uniform draw from ``[0, min(cap, base * 2**(attempt-1))]``. The
    exponent is clamped so that a large ``attempt`` cannot overflow. When the server
    said how long to wait (``Retry-After``), that is the floor: we never come back
    sooner than asked, and never later than ``max(cap, retry_after)``.
    """
    if attempt < 1:
        attempt = 1
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    delay = ceiling * rand()
    if retry_after is not None and retry_after > delay:
        return retry_after
    return delay
