"""Per-identity lanes: where queued operations wait, in order, merged as they arrive. No I/O.

Every queued operation sits in the lane of its identity (``user_id``, else
``device_id``). A lane holds *units* (an operation alone, or a merged identification of
several, see ``_coalesce``) and is in exactly one state:

    IDLE    nothing pending (the lane is forgotten, and pooled for reuse)
    READY   new units waiting for a batch; lanes queue in arrival order
    URGENT  units that already waited (released holds, re-sends): next in line
    BUSY    a request carrying some of its units is in flight; new ones wait
    HELD    parked until ``not_before`` (a 429 hold or a retry backoff)

Order per identity follows from two rules: a lane sends nothing while BUSY, and units
that come back (429, retry) go to the *front* of their lane. A unit is held while its
``user_id`` or ``device_id`` is in the throttle map.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from typing import Final

from mypy_extensions import mypyc_attr

from ._coalesce import Merged, Unit, merge_into
from ._identify import Identify
from ._limits import RequestLimits
from ._logfields import fields
from ._throttle import ThrottleMap

__all__ = ["BUSY", "HELD", "IDLE", "READY", "URGENT", "Lane", "Lanes"]

logger = logging.getLogger("amplitude_async")

IDLE: Final = 0
READY: Final = 1
URGENT: Final = 2
BUSY: Final = 3
HELD: Final = 4

#: Idle lanes kept for reuse: most lanes live for one operation, and reusing them
#: saves an allocation per operation on the hot path.
LANE_POOL_MAX: Final = 4096
#: Units taken from one lane into one batch, at most.
LANE_TAKE_MAX: Final = 2000


@mypyc_attr(acyclic=True)
class Lane:
    """One identity's pending units, in order: ``first``, then ``rest``.

    Most lanes hold one unit at a time, so it sits in a slot of its own and the list is
    made only for a second one: a new identity costs no list, which is a GC-tracked
    object that queued operations would otherwise add by the thousand (docs/build.md,
    "Queued operations and the garbage collector").
    """

    __slots__ = ("first", "key", "not_before", "rest", "since", "state")

    def __init__(self, key: str) -> None:
        self.key = key
        #: The oldest pending unit, or None when the lane is empty.
        self.first: Unit | None = None
        #: The units after ``first`` (None or empty when there are none).
        self.rest: list[Unit] | None = None
        self.state = IDLE
        #: When its oldest unit arrived (READY: the linger counts from it).
        self.since = 0.0
        self.not_before = 0.0

    @property
    def units(self) -> list[Unit]:
        """The pending units in order (a new list)."""
        return self.head(self.count())

    def head(self, most: int) -> list[Unit]:
        """The first ``most`` pending units in order (a new list)."""
        first = self.first
        if first is None or most <= 0:
            return []
        rest = self.rest
        return [first, *rest[: most - 1]] if rest else [first]

    def count(self) -> int:
        """How many units are pending."""
        if self.first is None:
            return 0
        rest = self.rest
        return 1 + len(rest) if rest else 1

    def push(self, unit: Unit) -> None:
        """Add ``unit`` at the end."""
        if self.first is None:
            self.first = unit
            return
        rest = self.rest
        if rest is None:
            self.rest = [unit]
        else:
            rest.append(unit)

    def push_front(self, units: list[Unit]) -> None:
        """Put ``units`` (in order) before what is pending."""
        if not units:
            return
        pending = self.units
        self.first = units[0]
        self.rest = units[1:] + pending if len(units) > 1 or pending else None

    def take(self, count: int) -> list[Unit]:
        """The first ``count`` units (at least one, at most ``count()``), out of the lane."""
        first = self.first
        assert first is not None
        rest = self.rest
        if not rest:
            self.first = None
            return [first]
        taken = [first, *rest[: count - 1]]
        if count <= len(rest):
            self.first = rest[count - 1]
            del rest[:count]
        else:
            self.first = None
            rest.clear()
        return taken

    def clear(self) -> None:
        self.first = None
        self.rest = None


class Lanes:
    """Every lane of one client, the queues of lanes by state, and their deadlines."""

    __slots__ = (
        "_coalesce",
        "_flush_interval",
        "_held",
        "_lanes",
        "_limits",
        "_pool",
        "_seq",
        "_throttle",
        "_urgent",
        "ready",
        "ready_units",
    )

    def __init__(
        self,
        *,
        flush_interval: float,
        coalesce: bool,
        limits: RequestLimits,
        throttle: ThrottleMap,
    ) -> None:
        self._flush_interval = flush_interval
        self._coalesce = coalesce
        self._limits = limits
        self._throttle = throttle
        self._lanes: dict[str, Lane] = {}
        #: READY lanes in arrival order (the batcher walks it).
        self.ready: deque[Lane] = deque()
        #: Units in READY lanes: how full the next batch would be.
        self.ready_units = 0
        self._urgent: deque[Lane] = deque()
        self._held: list[tuple[float, int, Lane]] = []
        self._seq = itertools.count()
        self._pool: list[Lane] = []

    # -- intake ---------------------------------------------------------------------

    def add(self, op: Identify, now: float) -> None:
        """Queue ``op`` at the end of its lane, merged into the last unit when allowed."""
        key = op.user_id if op.user_id is not None else op.device_id
        assert key is not None
        lane = self._lanes.get(key)
        if lane is None:
            pool = self._pool
            if pool:
                lane = pool.pop()
                lane.key = key
            else:
                lane = Lane(key)
            lane.first = op
            lane.state = READY
            lane.since = now
            self._lanes[key] = lane
            self.ready.append(lane)
            self.ready_units += 1
            return
        last = lane.first
        rest = lane.rest
        if rest:
            last = rest[-1]
        if last is not None and self._coalesce:
            try:
                merged = merge_into(last, op, self._limits.merge_max)
            except Exception:  # a merge bug must not lose the operation: queue it unmerged
                logger.exception(
                    "coalescing failed; queueing the operation unmerged",
                    extra=fields("identify.coalesce_failed", count=1),
                )
                merged = None
            if merged is not None:
                if rest:
                    rest[-1] = merged
                else:
                    lane.first = merged
                return
        lane.push(op)
        if lane.state == READY:
            self.ready_units += 1

    # -- what the sender asks -------------------------------------------------------

    def due(self, now: float, *, force: bool, max_items: int) -> bool:
        """Whether a batch should leave now."""
        self.release(now)
        if self._urgent:
            return True
        ready = self.ready
        if not ready:
            return False
        return (
            force or self.ready_units >= max_items or now >= ready[0].since + self._flush_interval
        )

    def next_deadline(self) -> float | None:
        """When something becomes due by itself (linger ends, a hold ends), if ever."""
        deadline: float | None = None
        if self.ready:
            deadline = self.ready[0].since + self._flush_interval
        if self._held:
            top = self._held[0][0]
            deadline = top if deadline is None else min(deadline, top)
        return deadline

    @property
    def plain(self) -> bool:
        """No lane is URGENT and nobody is held: the batcher's fast path applies."""
        return not self._urgent and not self._throttle

    def has_sendable(self) -> bool:
        return bool(self.ready or self._urgent)

    def __len__(self) -> int:
        return len(self._lanes)

    # -- the batcher's side -----------------------------------------------------------

    def next_lane(self) -> Lane | None:
        """The lane that sends next (URGENT before READY), out of its queue."""
        if self._urgent:
            return self._urgent.popleft()
        if self.ready:
            lane = self.ready.popleft()
            self.ready_units -= lane.count()
            return lane
        return None

    def sendable(self, lane: Lane, now: float, most: int) -> list[Unit]:
        """Take up to ``most`` of the lane's first units that may go now (none while a
        hold covers the first); parks the lane when none may."""
        throttle = self._throttle
        most = min(most, LANE_TAKE_MAX)
        pending = lane.count()
        count = pending if pending <= most else most
        until: float | None = None
        if throttle and count:
            count = 0
            for unit in lane.head(most):
                until = throttle.held_until(unit.user_id, unit.device_id, now)
                if until is not None:
                    break
                count += 1
        if count == 0:
            self._park(lane, now, until)
            return []
        return lane.take(count)

    def put_front(self, lane: Lane, units: list[Unit]) -> None:
        """Units of ``lane`` that did not go after all: back to its front, in order."""
        lane.push_front(units)

    def requeue(self, lane: Lane) -> None:
        """A lane the batcher took but could not fit anything of: first in line again."""
        lane.state = URGENT
        self._urgent.appendleft(lane)

    def done_with(self, lane: Lane, now: float) -> None:
        """A lane the batcher took and sent nothing of (all refused): park or forget."""
        self._park(lane, now, None)

    # -- after a request ------------------------------------------------------------

    def settle(
        self,
        lanes: list[Lane],
        back: dict[str, list[Unit]] | None,
        now: float,
        not_before: float | None = None,
    ) -> None:
        """A batch's request is over: put ``back`` (units without an outcome, per lane
        key, in batch order) at the front of their lanes, then free the lanes (parking
        those with units back until ``not_before`` if given)."""
        for lane in lanes:
            returned = back.get(lane.key) if back else None
            if returned:
                lane.push_front(returned)
                self._park(lane, now, not_before)
            elif lane.first is not None:
                self._park(lane, now, None)
            else:
                self._forget(lane)

    def drain_all(self) -> list[Identify]:
        """Take every operation still in a lane (at shutdown), in lane order."""
        out: list[Identify] = []
        for lane in self._lanes.values():
            for unit in lane.units:
                if isinstance(unit, Merged):
                    out.extend(unit.ops)
                else:
                    out.append(unit)
            lane.clear()
            lane.state = IDLE
        self._lanes.clear()
        self.ready.clear()
        self._urgent.clear()
        self._held.clear()
        self.ready_units = 0
        return out

    def release(self, now: float) -> None:
        """Lanes whose hold ended go back in line; holds that ended are forgotten."""
        held = self._held
        while held and held[0][0] <= now:
            until, _, lane = heapq.heappop(held)
            if lane.state == HELD and lane.not_before == until:
                self._park(lane, now, None)
        self._throttle.expire(now)

    # -- internals ----------------------------------------------------------------------

    def _park(self, lane: Lane, now: float, not_before: float | None) -> None:
        """Put a lane that is not BUSY any more where it belongs."""
        if lane.first is None:
            self._forget(lane)
            return
        # A lane dropped by drain_all() while its request was in flight comes back,
        # so that what it still holds is drained too.
        self._lanes.setdefault(lane.key, lane)
        if not_before is not None and not_before > now:
            lane.state = HELD
            lane.not_before = not_before
            heapq.heappush(self._held, (not_before, next(self._seq), lane))
            return
        lane.state = URGENT
        self._urgent.append(lane)

    def _forget(self, lane: Lane) -> None:
        """An empty lane goes IDLE: out of the map, into the pool for reuse."""
        lane.state = IDLE
        if self._lanes.get(lane.key) is lane:
            del self._lanes[lane.key]
            if len(self._pool) < LANE_POOL_MAX:
                self._pool.append(lane)
