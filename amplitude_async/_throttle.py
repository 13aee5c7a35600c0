"""The throttle map: users and devices a 429 named, held until a time. No I/O.

Users and devices are kept apart (a user id and a device id may be the same string).
An operation is held while its ``user_id`` or its ``device_id`` is held. Holds expire on
their own (:meth:`ThrottleMap.expire`); past ``max_size`` identities the holds that end
soonest are let go first, since they matter least.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

__all__ = ["ThrottleMap"]


class ThrottleMap:
    """Identities held until a time, bounded."""

    __slots__ = ("_devices", "_expiry", "_max_size", "_users")

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._users: dict[str, float] = {}
        self._devices: dict[str, float] = {}
        # (until, is_user, name): the next hold to end on top. Entries of holds that were
        # extended since stay in the heap and are skipped when they come up.
        self._expiry: list[tuple[float, bool, str]] = []

    def __len__(self) -> int:
        return len(self._users) + len(self._devices)

    def __bool__(self) -> bool:
        return bool(self._users or self._devices)

    def hold(self, users: Iterable[str], devices: Iterable[str], until: float) -> None:
        """Hold ``users`` and ``devices`` until ``until`` (a longer hold is kept)."""
        for table, is_user, names in ((self._users, True, users), (self._devices, False, devices)):
            for name in names:
                if table.get(name, 0.0) < until:
                    table[name] = until
                    heapq.heappush(self._expiry, (until, is_user, name))
        # Past the bound, let go of the holds that end soonest.
        while len(self) > self._max_size and self._expiry:
            self._pop_expiry()

    def held_until(self, user_id: str | None, device_id: str | None, now: float) -> float | None:
        """Until when an operation of these ids is held, or None if it may go now."""
        until = 0.0
        if user_id is not None:
            until = self._users.get(user_id, 0.0)
        if device_id is not None:
            until = max(until, self._devices.get(device_id, 0.0))
        return until if until > now else None

    def expire(self, now: float) -> None:
        """Forget the holds that ended by ``now``."""
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            self._pop_expiry()

    def _pop_expiry(self) -> None:
        until, is_user, name = heapq.heappop(self._expiry)
        table = self._users if is_user else self._devices
        if table.get(name) == until:
            del table[name]
