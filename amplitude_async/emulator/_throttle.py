"""Per-identity rate limits: a sliding window and an optional rolling daily quota.

Amplitude throttles by ``user_id`` and by ``device_id`` separately. A request is checked
whole: if any identity would exceed ``eps_threshold`` events per second averaged over the
last ``window`` seconds (counting the request's own items), the request is refused and
none of it is counted, because none of it is applied. Each endpoint has its own
:class:`Throttle`, because Amplitude documents different limits per API:

- HTTP V2 (and, by reference, Identify): 30 events per second per user or device,
  "measured as an average over a recent time window" (HTTP V2 API docs, 429 response).
  The window is not documented; the emulator uses 1 s.
- Batch: 1,000 events per second per user or device, averaged over 30 seconds (EPDS and
  EPUS), and 500,000 events per user or device per rolling 24 hours, counted in one-hour
  intervals (Batch Event Upload API docs, "Code 429 explained").

Forced holds (:class:`Holds`, shared by every endpoint) make tests deterministic: a held
identity is refused whatever the counts. The clock is injected (anything with
``now() -> float`` in seconds), so tests move time instead of sleeping.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Holds", "Rejection", "Throttle", "TimeSource", "UpdateLimit"]

_HOUR = 3600.0
#: The rolling daily quota counts this many one-hour intervals.
_DAY_HOURS = 24
# Forget idle identities every this many checks, so the maps stay bounded.
_PRUNE_EVERY = 256


class TimeSource(Protocol):
    """Anything that tells monotonic time in seconds."""

    def now(self) -> float: ...


@dataclass
class Rejection:
    """Why a request was refused: identity -> its rate (or daily count), per kind."""

    users: dict[str, int] = field(default_factory=dict)
    devices: dict[str, int] = field(default_factory=dict)
    quota_users: dict[str, int] = field(default_factory=dict)
    quota_devices: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.users or self.devices or self.quota_users or self.quota_devices)

    def names(self, user_id: str | None, device_id: str | None) -> bool:
        """Whether an item with these ids involves a refused identity."""
        return (user_id is not None and (user_id in self.users or user_id in self.quota_users)) or (
            device_id is not None and (device_id in self.devices or device_id in self.quota_devices)
        )


@dataclass
class Holds:
    """Identities refused on every endpoint until released (``Emulator.throttle``)."""

    users: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)

    def hold(self, users: Iterable[str] = (), devices: Iterable[str] = ()) -> None:
        self.users.update(users)
        self.devices.update(devices)

    def release(
        self, users: Iterable[str] | None = None, devices: Iterable[str] | None = None
    ) -> None:
        """Lift holds; with no arguments, lift all of them."""
        if users is None and devices is None:
            self.users.clear()
            self.devices.clear()
            return
        self.users.difference_update(users or ())
        self.devices.difference_update(devices or ())


class _Window:
    """Counts of accepted events of one identity, as (time, count) runs."""

    __slots__ = ("runs", "total")

    def __init__(self) -> None:
        self.runs: deque[tuple[float, int]] = deque()
        self.total = 0

    def count(self, since: float) -> int:
        runs = self.runs
        while runs and runs[0][0] <= since:
            self.total -= runs.popleft()[1]
        return self.total

    def add(self, now: float, count: int) -> None:
        runs = self.runs
        if runs and runs[-1][0] == now:
            # Same instant (or same hour, for the daily quota): one run, not many.
            runs[-1] = (now, runs[-1][1] + count)
        else:
            runs.append((now, count))
        self.total += count


class Throttle:
    """Sliding-window and rolling-daily-quota bookkeeping for one endpoint."""

    def __init__(
        self,
        clock: TimeSource,
        eps_threshold: int | None = 30,
        daily_quota: int | None = None,
        window: float = 1.0,
        holds: Holds | None = None,
    ) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self.clock = clock
        self.eps_threshold = eps_threshold
        self.daily_quota = daily_quota
        self.window = window
        self.holds = holds if holds is not None else Holds()
        self._users: dict[str, _Window] = {}
        self._devices: dict[str, _Window] = {}
        self._day_users: dict[str, _Window] = {}
        self._day_devices: dict[str, _Window] = {}
        self._checks = 0

    @property
    def held_users(self) -> set[str]:
        return self.holds.users

    @property
    def held_devices(self) -> set[str]:
        return self.holds.devices

    def hold(self, users: Iterable[str] = (), devices: Iterable[str] = ()) -> None:
        """Refuse every request naming these identities until :meth:`release`."""
        self.holds.hold(users, devices)

    def release(
        self, users: Iterable[str] | None = None, devices: Iterable[str] | None = None
    ) -> None:
        """Lift holds; with no arguments, lift all of them."""
        self.holds.release(users, devices)

    def reset(self) -> None:
        """Forget all counts and holds."""
        self.release()
        self._users.clear()
        self._devices.clear()
        self._day_users.clear()
        self._day_devices.clear()

    def check(self, users: dict[str, int], devices: dict[str, int]) -> Rejection | None:
        """Admit a request with these per-identity item counts, or say why not.

        When admitted, the counts are recorded; when refused, nothing is.
        """
        now = self.clock.now()
        rejection = Rejection()
        if self.holds.users or self.holds.devices:
            self._check_holds(users, devices, rejection)
        threshold = self.eps_threshold
        since = now - self.window
        if threshold is not None:
            limit = threshold * self.window
            _over(self._users, users, since, limit, self.window, rejection.users)
            _over(self._devices, devices, since, limit, self.window, rejection.devices)
        quota = self.daily_quota
        hour = float(math.floor(now / _HOUR))
        day_since = hour - _DAY_HOURS
        if quota is not None:
            _over(self._day_users, users, day_since, quota, 1.0, rejection.quota_users)
            _over(self._day_devices, devices, day_since, quota, 1.0, rejection.quota_devices)
        if rejection:
            return rejection
        if threshold is not None:
            _record(self._users, users, now)
            _record(self._devices, devices, now)
        if quota is not None:
            _record(self._day_users, users, hour)
            _record(self._day_devices, devices, hour)
        self._checks += 1
        if self._checks % _PRUNE_EVERY == 0:
            _prune(self._users, since)
            _prune(self._devices, since)
            _prune(self._day_users, day_since)
            _prune(self._day_devices, day_since)
        return None

    def _check_holds(
        self, users: dict[str, int], devices: dict[str, int], rejection: Rejection
    ) -> None:
        since = self.clock.now() - self.window
        for name in self.holds.users.intersection(users):
            window = self._users.get(name)
            total = users[name] + (window.count(since) if window else 0)
            rejection.users[name] = _rate(total, self.window)
        for name in self.holds.devices.intersection(devices):
            window = self._devices.get(name)
            total = devices[name] + (window.count(since) if window else 0)
            rejection.devices[name] = _rate(total, self.window)


class UpdateLimit:
    """At most ``per_hour`` user-property updates per user in any rolling hour.

    HTTP V2 and Batch API docs: Amplitude "rate limits individual users (by Amplitude ID)
    that update their user properties more than 1,800 times per hour ... may drop user
    property updates for that user". The request still succeeds; updates past the limit
    are dropped silently (the emulator counts them).
    """

    def __init__(self, clock: TimeSource, per_hour: int) -> None:
        if per_hour < 1:
            raise ValueError("per_hour must be at least 1")
        self.clock = clock
        self.per_hour = per_hour
        self._users: dict[int, _Window] = {}
        self._checks = 0

    def admit(self, amplitude_id: int) -> bool:
        now = self.clock.now()
        since = now - _HOUR
        window = self._users.get(amplitude_id)
        if window is None:
            window = self._users[amplitude_id] = _Window()
        if window.count(since) >= self.per_hour:
            return False
        window.add(now, 1)
        self._checks += 1
        if self._checks % _PRUNE_EVERY == 0:
            _prune(self._users, since)
        return True

    def reset(self) -> None:
        self._users.clear()


def _rate(total: int, window: float) -> int:
    """Events per second over the window, as Amplitude reports it (rounded up)."""
    return math.ceil(total / window)


def _over(
    windows: dict[str, _Window],
    counts: dict[str, int],
    since: float,
    limit: float,
    window: float,
    out: dict[str, int],
) -> None:
    for name, count in counts.items():
        recorded = windows.get(name)
        total = count + recorded.count(since) if recorded is not None else count
        if total > limit:
            out[name] = _rate(total, window)


def _record(windows: dict[str, _Window], counts: dict[str, int], now: float) -> None:
    for name, count in counts.items():
        window = windows.get(name)
        if window is None:
            windows[name] = window = _Window()
        window.add(now, count)


def _prune(windows: dict[Any, _Window], since: float) -> None:
    idle = [name for name, window in windows.items() if window.count(since) == 0]
    for name in idle:
        del windows[name]
