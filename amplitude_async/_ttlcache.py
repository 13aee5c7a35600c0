"""A small in-process cache: entries expire after ``ttl`` seconds, at most ``max_size`` kept.

Least recently used entries go first when it is full. Time comes from a :class:`Clock`
so that expiry is tested by moving a manual clock, not by sleeping. Expired entries are
dropped when they are looked up or pushed out as least recently used; there is no
background sweeper (no task to own), and every operation is O(1).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from ._clock import Clock
from ._errors import ConfigurationError

__all__ = ["TTLCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    def __init__(self, *, ttl: float, max_size: int, clock: Clock) -> None:
        if not (isinstance(ttl, int | float) and ttl > 0):
            raise ConfigurationError(f"cache_ttl must be positive seconds, got {ttl!r}")
        if not isinstance(max_size, int) or max_size < 1:
            raise ConfigurationError(f"cache_max must be a positive int, got {max_size!r}")
        self._ttl = float(ttl)
        self._max = max_size
        self._clock = clock
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        entry = self._items.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires, value = entry
        if expires <= self._clock.now():
            del self._items[key]
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: K, value: V) -> None:
        now = self._clock.now()
        self._items[key] = (now + self._ttl, value)
        self._items.move_to_end(key)
        if len(self._items) > self._max:
            # The least recently used entry goes; expired ones are dropped when looked up.
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"TTLCache(size={len(self._items)}, max_size={self._max}, ttl={self._ttl})"
