"""A snapshot of a worker's counters."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ClientStats

__all__ = ["WorkerStats"]


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """What a :class:`KafkaIdentifyWorker` did so far (a snapshot)."""

    #: Messages handed to the client (each once per time this worker read it).
    consumed: int = 0
    #: Operations delivered.
    delivered: int = 0
    #: Operations failed for good, by reason (each then dead-lettered or, without a
    #: dead-letter topic, only logged; either way settled and committed past).
    failed: dict[str, int] = field(default_factory=dict)
    #: Messages written to the dead-letter topic (failed operations and unreadable ones).
    dead_lettered: int = 0
    #: Messages that carry no valid identification (bad JSON, invalid ids, ...).
    unreadable: int = 0
    #: Operations that got no answer because the client closed (or the key was refused):
    #: not committed, so the partition's next owner sends them again.
    not_sent: int = 0
    #: Operations handed on without an outcome yet, over all assigned partitions.
    unsettled: int = 0
    #: Partitions assigned now, and of those paused (too many unsettled operations).
    assigned: int = 0
    paused: int = 0
    #: Times partitions were paused, and offset commits that succeeded.
    pauses: int = 0
    commits: int = 0
    #: Assignments received (the first one counts).
    rebalances: int = 0
    #: Revokes that had to give up with operations left (the worker then stops).
    drain_timeouts: int = 0
    #: The client's own counters (requests, 429s, throttled identities, ...).
    client: ClientStats | None = None
