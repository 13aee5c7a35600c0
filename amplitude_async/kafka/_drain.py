"""Letting partitions go: drain within a deadline, then commit what is settled.

Pure (no Kafka, no event loop): the worker asks a :class:`Drain` whether it is done and
what to commit, and does the waiting and the committing itself.

A drain must end before the group's rebalance timeout: a member that has not rejoined by
then is dropped, its partitions go to another worker, and two workers would send one
user's operations at once. :func:`check_timeouts` keeps room for the commit and rejoin.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from ._tracker import PartitionTracker

__all__ = ["REJOIN_MARGIN", "Drain", "check_timeouts"]

K = TypeVar("K", bound=Hashable)

#: Seconds kept between the end of a drain and the rebalance timeout: the commit and
#: the rejoin request happen in them.
REJOIN_MARGIN: Final = 2.0


def check_timeouts(drain_timeout: float, rebalance_timeout: float) -> None:
    """ValueError unless the drain ends, with a margin, before the rebalance timeout."""
    if not drain_timeout >= 0:
        raise ValueError(f"drain_timeout must be >= 0 seconds, got {drain_timeout!r}")
    if drain_timeout + REJOIN_MARGIN > rebalance_timeout:
        raise ValueError(
            f"drain_timeout ({drain_timeout:g} s) must be at least {REJOIN_MARGIN:g} s "
            f"shorter than rebalance_timeout ({rebalance_timeout:g} s): a worker still "
            f"draining at the rebalance timeout is dropped from the group while it sends"
        )


@dataclass
class Drain(Generic[K]):
    """The partitions being let go, and until when their operations may finish."""

    trackers: Mapping[K, PartitionTracker]
    deadline: float

    def left(self) -> int:
        """Operations of these partitions without an outcome."""
        return sum(tracker.unsettled for tracker in self.trackers.values())

    def done(self, now: float) -> bool:
        """Nothing left to wait for, or no time left to wait."""
        return self.left() == 0 or now >= self.deadline

    def remaining(self, now: float) -> float:
        return max(0.0, self.deadline - now)

    def offsets(self) -> dict[K, int]:
        """What to commit: each partition's commit point that moved past its last commit."""
        out: dict[K, int] = {}
        for key, tracker in self.trackers.items():
            point = tracker.to_commit()
            if point is not None:
                out[key] = point
        return out
