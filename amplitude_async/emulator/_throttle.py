"""Per-identity rate limits: a sliding window per second and an optional daily quota.

Amplitude throttles by ``user_id`` and by ``device_id`` separately. A request is checked
whole: if any identity would exceed ``eps_threshold`` identifications within the last
``window`` seconds (counting the request's own items), the request is refused and none of
it is counted, because none of it is applied. Forced holds (``hold``) make tests
deterministic: a held identity is refused whatever the counts.

The clock is injected (anything with ``now() -> float`` in seconds), so tests move time
instead of sleeping.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Rejection", "Throttle", "TimeSource"]

_DAY = 86_400.0
# Forget idle identities every this many checks, so the maps stay bounded.
_PRUNE_EVERY = 256


class TimeSource(Protocol):
    """Anything that tells monotonic time in seconds."""

    def now(self) -> float: ...


@dataclass
class Rejection:
    """Why a request was refused: identity -> its count (window or day), per kind."""

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


class _Window:
    """Timestamps of accepted identifications of one identity, as (time, count) runs."""

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
        self.runs.append((now, count))
        self.total += count


class Throttle:
    """Sliding-window and daily-quota bookkeeping for users and devices."""

    def __init__(
        self,
        clock: TimeSource,
        eps_threshold: int | None = 30,
        daily_quota: int | None = None,
        window: float = 1.0,
    ) -> None:
        self.clock = clock
        self.eps_threshold = eps_threshold
        self.daily_quota = daily_quota
        self.window = window
        self.held_users: set[str] = set()
        self.held_devices: set[str] = set()
        self._users: dict[str, _Window] = {}
        self._devices: dict[str, _Window] = {}
        self._day_users: dict[str, int] = {}
        self._day_devices: dict[str, int] = {}
        self._day = -1
        self._checks = 0

    def hold(self, users: Iterable[str] = (), devices: Iterable[str] = ()) -> None:
        """Refuse every request naming these identities until :meth:`release`."""
        self.held_users.update(users)
        self.held_devices.update(devices)

    def release(
        self, users: Iterable[str] | None = None, devices: Iterable[str] | None = None
    ) -> None:
        """Lift holds; with no arguments, lift all of them."""
        if users is None and devices is None:
            self.held_users.clear()
            self.held_devices.clear()
            return
        self.held_users.difference_update(users or ())
        self.held_devices.difference_update(devices or ())

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
        if self.held_users or self.held_devices:
            self._check_holds(users, devices, rejection)
        threshold = self.eps_threshold
        since = now - self.window
        if threshold is not None:
            _over(self._users, users, since, threshold, rejection.users)
            _over(self._devices, devices, since, threshold, rejection.devices)
        quota = self.daily_quota
        if quota is not None:
            self._roll_day(now)
            _over_quota(self._day_users, users, quota, rejection.quota_users)
            _over_quota(self._day_devices, devices, quota, rejection.quota_devices)
        if rejection:
            return rejection
        if threshold is not None:
            _record(self._users, users, now)
            _record(self._devices, devices, now)
        if quota is not None:
            for name, count in users.items():
                self._day_users[name] = self._day_users.get(name, 0) + count
            for name, count in devices.items():
                self._day_devices[name] = self._day_devices.get(name, 0) + count
        self._checks += 1
        if self._checks % _PRUNE_EVERY == 0:
            _prune(self._users, since)
            _prune(self._devices, since)
        return None

    def _check_holds(
        self, users: dict[str, int], devices: dict[str, int], rejection: Rejection
    ) -> None:
        since = self.clock.now() - self.window
        for name in self.held_users.intersection(users):
            window = self._users.get(name)
            rejection.users[name] = users[name] + (window.count(since) if window else 0)
        for name in self.held_devices.intersection(devices):
            window = self._devices.get(name)
            rejection.devices[name] = devices[name] + (window.count(since) if window else 0)

    def _roll_day(self, now: float) -> None:
        day = int(now // _DAY)
        if day != self._day:
            self._day = day
            self._day_users.clear()
            self._day_devices.clear()


def _over(
    windows: dict[str, _Window],
    counts: dict[str, int],
    since: float,
    threshold: int,
    out: dict[str, int],
) -> None:
    for name, count in counts.items():
        window = windows.get(name)
        total = count + window.count(since) if window is not None else count
        if total > threshold:
            out[name] = total


def _over_quota(
    days: dict[str, int], counts: dict[str, int], quota: int, out: dict[str, int]
) -> None:
    for name, count in counts.items():
        total = days.get(name, 0) + count
        if total > quota:
            out[name] = total


def _record(windows: dict[str, _Window], counts: dict[str, int], now: float) -> None:
    for name, count in counts.items():
        window = windows.get(name)
        if window is None:
            windows[name] = window = _Window()
        window.add(now, count)


def _prune(windows: dict[str, _Window], since: float) -> None:
    idle = [name for name, window in windows.items() if window.count(since) == 0]
    for name in idle:
        del windows[name]
