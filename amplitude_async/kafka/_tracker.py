"""Per partition: which offsets were handed to the client, and which have an outcome.

Pure bookkeeping (no Kafka, no event loop). The commit point is the first offset without
an outcome; everything before it is settled, so committing it loses nothing. A throttled
user holds back its partition's commit point, never another partition's, and never stops
the partition's other users from being sent.
"""

from __future__ import annotations

from collections import deque

__all__ = ["PartitionTracker"]


class PartitionTracker:
    """Offsets of one partition, in the order they were handed on."""

    __slots__ = ("_end", "_pending", "_settled_ahead", "committed")

    def __init__(self) -> None:
        #: Offsets handed on whose turn to be committed has not come, oldest first.
        self._pending: deque[int] = deque()
        #: Settled offsets still behind an unsettled one.
        self._settled_ahead: set[int] = set()
        #: The offset after the last one handed on (None: nothing yet).
        self._end: int | None = None
        #: The offset last committed (the next one a new owner reads), None: not yet.
        self.committed: int | None = None

    def fresh(self, offset: int) -> bool:
        """Whether ``offset`` is past the last one handed on.

        A consumer hands a partition's records on in offset order; an offset at or below
        the last one is a record seen before (fetched again after a reset), not new work.
        """
        return self._end is None or offset >= self._end

    @property
    def next_offset(self) -> int | None:
        """The offset after the last one handed on (None: nothing yet)."""
        return self._end

    def add(self, offset: int) -> None:
        """Track ``offset`` (handed on, no outcome yet); it must be :meth:`fresh`."""
        if not self.fresh(offset):
            raise ValueError(f"offset {offset} is not past the last one ({self._end})")
        self._pending.append(offset)
        self._end = offset + 1

    def settle(self, offset: int) -> None:
        """``offset`` has its outcome. Each tracked offset is settled once."""
        pending = self._pending
        if pending and pending[0] == offset:
            pending.popleft()
            ahead = self._settled_ahead
            while pending and pending[0] in ahead:
                ahead.discard(pending.popleft())
            return
        if not pending or offset < pending[0] or offset >= (self._end or 0):
            raise ValueError(f"offset {offset} is not waiting for an outcome")
        if offset in self._settled_ahead:
            raise ValueError(f"offset {offset} was settled twice")
        self._settled_ahead.add(offset)

    @property
    def unsettled(self) -> int:
        """Offsets handed on that have no outcome yet."""
        return len(self._pending) - len(self._settled_ahead)

    def commit_point(self) -> int | None:
        """The offset to commit: the first without an outcome, else the one after the
        last handed on; None before anything was handed on."""
        return self._pending[0] if self._pending else self._end

    def to_commit(self) -> int | None:
        """The commit point if it moved past what was committed, else None."""
        point = self.commit_point()
        if point is None or (self.committed is not None and point <= self.committed):
            return None
        return point

    def __repr__(self) -> str:
        return (
            f"PartitionTracker(unsettled={self.unsettled}, commit_point={self.commit_point()}, "
            f"committed={self.committed})"
        )
