"""Request limits that adapt to the server: 413 shrinks the body and item limits, a 429
naming an identity with several identifications in the request lowers the per-identity
cap; successes let them grow back. No I/O.

Growing back is slow on purpose: by an eighth per success, up to just under what was
last refused, and past that only after :data:`RECOVER_AFTER` successes in a row, so that
a server with a fixed cap is not probed with a 413 every few requests.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MERGE_BYTES_MAX", "RECOVER_AFTER", "RequestLimits"]

#: After a 413, the request limits stay under what was refused until this many requests
#: in a row succeed; then they may probe the refused size again.
RECOVER_AFTER: Final = 64
#: By default a merged identification stops growing at about this many bytes of JSON
#: (form escaping can triple it on the wire; still far below the 1 MB request cap).
MERGE_BYTES_MAX: Final = 16_384


class RequestLimits:
    """The current limits of one request: bytes, identifications, and identifications
    of one identity."""

    __slots__ = (
        "_max_bytes",
        "_max_items",
        "_refused_items",
        "_refused_lane",
        "_refused_size",
        "_successes",
        "item_limit",
        "lane_limit",
        "merge_max",
        "size_limit",
    )

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self._max_items = max_items
        self._max_bytes = max_bytes
        #: Encoded body bytes of one request, at most.
        self.size_limit = max_bytes
        #: Identifications in one request, at most (a server may refuse a body for its
        #: number of items as well as for its size).
        self.item_limit = max_items
        #: Identifications of one identity in one request, at most (a request carrying
        #: more than the per-identity rate allows is refused every time).
        self.lane_limit = max_items
        #: Merged identifications stay under this estimate of JSON bytes, so that a
        #: merge always fits in a body (form escaping can triple it).
        self.merge_max = merge_bound(max_bytes)
        self._refused_size: int | None = None
        self._refused_items: int | None = None
        self._refused_lane: int | None = None
        self._successes = 0

    @property
    def max_bytes(self) -> int:
        """The configured body limit: an identification larger than this never fits."""
        return self._max_bytes

    def shrink(self, failed_size: int, failed_items: int) -> None:
        """A request of ``failed_size`` bytes and ``failed_items`` identifications got 413:
        halve both (the byte limit has a floor, the item limit does not: a small body
        may be refused for its item count). One identification refused counts for its
        size only."""
        self.size_limit = max(1024, min(self.size_limit, failed_size // 2))
        self._refused_size = min(failed_size, self._refused_size or failed_size)
        if failed_items > 1:
            self.item_limit = max(1, min(self.item_limit, failed_items // 2))
            self._refused_items = min(failed_items, self._refused_items or failed_items)
        self.merge_max = merge_bound(self.size_limit)
        self._successes = 0

    def throttled(self, identifications: int, eps_threshold: int | None) -> None:
        """A 429 named an identity that had ``identifications`` in the request: send
        fewer of one identity per request (half, and at most the server's per-second
        threshold when it said)."""
        if identifications <= 1:
            return
        limit = identifications // 2
        if eps_threshold is not None and eps_threshold >= 1:
            limit = min(limit, eps_threshold)
        self.lane_limit = max(1, min(self.lane_limit, limit))
        self._refused_lane = min(identifications, self._refused_lane or identifications)
        self._successes = 0

    def recover(self) -> None:
        """A request succeeded: let the limits grow back towards the configured ones."""
        if (
            self.size_limit == self._max_bytes
            and self.item_limit == self._max_items
            and self.lane_limit == self._max_items
        ):
            return
        self._successes += 1
        if self._successes >= RECOVER_AFTER:
            self._refused_size = self._refused_items = self._refused_lane = None
            self._successes = 0
        self.lane_limit = _grow(self.lane_limit, self._max_items, self._refused_lane)
        self.size_limit = _grow(self.size_limit, self._max_bytes, self._refused_size)
        self.item_limit = _grow(self.item_limit, self._max_items, self._refused_items)
        self.merge_max = merge_bound(self.size_limit)


def _grow(limit: int, configured: int, refused: int | None) -> int:
    """An eighth more, up to the configured limit and just under what was refused."""
    cap = configured
    if refused is not None:
        cap = max(limit, min(cap, refused - 1))
    return min(cap, limit + limit // 8 + 1)


def merge_bound(size_limit: int) -> int:
    """How large (estimated JSON bytes) a merge may grow under a body-size limit: a
    third of it, since form escaping can triple JSON; never above MERGE_BYTES_MAX."""
    return min(MERGE_BYTES_MAX, size_limit // 3)
