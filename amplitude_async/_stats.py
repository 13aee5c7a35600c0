"""Counters of the identify pipeline and their snapshot, :class:`ClientStats`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ._outcome import FailureReason

__all__ = ["ClientStats", "Counters"]


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of the client's counters (``client.stats()``)."""

    #: Operations accepted by identify().
    enqueued: int
    #: Operations delivered.
    delivered: int
    #: Operations failed, by reason (includes "dropped" and "shutdown").
    failed: dict[str, int]
    #: Operations dropped because intake was full (on_full="drop").
    dropped: int
    #: Times an operation was put back to be sent again (retries, 429s, splits).
    retried: int
    #: HTTP requests sent.
    requests: int
    #: Identifications sent (after coalescing; a re-send counts again).
    identifications: int
    #: Requests in flight now.
    in_flight: int
    #: Operations accepted and not yet resolved.
    queued: int
    #: Identities in the throttle map now.
    throttled_identities: int
    #: 429 answers received.
    throttle_responses: int
    #: Delivered operations that may have been applied twice (see Delivered.possible_duplicate).
    possible_duplicates: int
    #: Batches split after a 413 or narrowed after a 400.
    splits: int
    #: Identities (lanes) with operations queued now.
    identities: int = 0
    #: identify() calls waiting for room in intake now (on_full="wait").
    waiting: int = 0

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    @property
    def operations_per_identification(self) -> float:
        """How many operations one identification carried on average (coalescing)."""
        return (self.delivered / self.identifications) if self.identifications else 0.0


@dataclass(slots=True)
class Counters:
    """The live, mutable counters behind :class:`ClientStats`."""

    enqueued: int = 0
    delivered: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    retried: int = 0
    requests: int = 0
    identifications: int = 0
    throttle_responses: int = 0
    possible_duplicates: int = 0
    splits: int = 0

    def snapshot(
        self,
        *,
        in_flight: int,
        queued: int,
        throttled_identities: int,
        identities: int = 0,
        waiting: int = 0,
    ) -> ClientStats:
        return ClientStats(
            enqueued=self.enqueued,
            delivered=self.delivered,
            failed=dict(self.failed),
            dropped=self.failed.get(FailureReason.DROPPED.value, 0),
            retried=self.retried,
            requests=self.requests,
            identifications=self.identifications,
            in_flight=in_flight,
            queued=queued,
            throttled_identities=throttled_identities,
            throttle_responses=self.throttle_responses,
            possible_duplicates=self.possible_duplicates,
            splits=self.splits,
            identities=identities,
            waiting=waiting,
        )
