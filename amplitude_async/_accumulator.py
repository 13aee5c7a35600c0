"""The accumulator: per-identity lanes, the throttle map, and batch assembly. No I/O.

Every queued operation sits in the lane of its identity (``user_id``, else
``device_id``). A lane is in exactly one state:

    IDLE    nothing pending (the lane is forgotten)
    READY   new operations waiting for a batch; lanes queue in arrival order
    URGENT  operations that already waited (released holds, re-sends): next in line
    BUSY    a request carrying some of its operations is in flight; new ones wait
    HELD    parked until ``not_before`` (a 429 hold or a retry backoff)

Order per identity follows from two rules: a lane sends nothing while BUSY, and
operations that come back (429, retry) go to the *front* of their lane. An operation is
held while its ``user_id`` or its ``device_id`` is in the throttle map.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections import deque
from collections.abc import Iterable
from typing import Final, NamedTuple

import msgspec

from ._coalesce import MERGE_BYTES_MAX, Group, coalesce, single
from ._encode import BatchEncoder
from ._logfields import fields
from ._outcome import FailureReason, Receipt

__all__ = ["Accumulator", "Batch", "Lane", "Refused"]

logger = logging.getLogger("amplitude_async")

IDLE: Final = 0
READY: Final = 1
URGENT: Final = 2
BUSY: Final = 3
HELD: Final = 4

#: Idle lanes kept for reuse: most lanes live for one operation, and reusing them
#: saves an allocation per operation on the hot path.
LANE_POOL_MAX: Final = 4096
#: Operations taken from one lane into one batch, at most: a hot lane with a long
#: backlog must not be coalesced and re-split in full on every take.
LANE_TAKE_MAX: Final = 2000
#: After a 413, the request limits stay under what was refused until this many requests
#: in a row succeed; then they may probe the refused size again.
RECOVER_AFTER: Final = 64


#: What the JSON encoder raises for values it cannot encode.
_ENCODE_ERRORS: Final = (msgspec.EncodeError, ValueError, TypeError, OverflowError)


class Refused(NamedTuple):
    """A group that can never be sent, and why (the operations fail with ``reason``)."""

    group: Group
    reason: FailureReason
    message: str


def _unencodable(exc: BaseException) -> str:
    return f"the identification cannot be encoded as JSON ({type(exc).__name__}: {exc})"[:300]


class Lane:
    __slots__ = ("key", "not_before", "pending", "since", "state")

    def __init__(self, key: str) -> None:
        self.key = key
        self.pending: list[Receipt] = []
        self.state = IDLE
        self.since = 0.0
        self.not_before = 0.0


class Batch:
    """Groups taken for one request, and the lanes they came from (all BUSY)."""

    __slots__ = ("groups", "lanes")

    def __init__(self, groups: list[Group], lanes: list[Lane]) -> None:
        self.groups = groups
        self.lanes = lanes


class Accumulator:
    """Lanes, holds and batch assembly for one client."""

    def __init__(
        self,
        encoder: BatchEncoder,
        *,
        max_items: int,
        max_bytes: int,
        flush_interval: float,
        coalesce: bool,
        throttle_map_max: int,
    ) -> None:
        self._encoder = encoder
        self._max_items = max_items
        self._max_bytes = max_bytes
        #: Current body-size and item-count limits: lowered after a 413 (a server may
        #: refuse a body for its size or for its number of items), recover on success.
        self.size_limit = max_bytes
        self.item_limit = max_items
        #: Identifications of one identity in one request, at most: lowered when a 429
        #: names an identity that had several in the request (a request carrying more
        #: than the per-identity rate allows is refused every time), recovers on success.
        self.lane_limit = max_items
        self._refused_lane: int | None = None
        # What the last 413 refused: the limits grow back to just under it, and past
        # it only after RECOVER_AFTER requests in a row succeed (no 413 every few).
        self._refused_size: int | None = None
        self._refused_items: int | None = None
        self._successes = 0
        #: Merged identifications stay under this estimate of JSON bytes, so that a
        #: merge always fits in a body (form escaping can triple it).
        self._merge_max = _merge_bound(max_bytes)
        self._flush_interval = flush_interval
        self._coalesce = coalesce
        self._lanes: dict[str, Lane] = {}
        self._ready: deque[Lane] = deque()
        self._urgent: deque[Lane] = deque()
        self._ready_ops = 0
        self._held: list[tuple[float, int, Lane]] = []
        self._seq = itertools.count()
        # The throttle map: identity -> held until. Users and devices apart, since a
        # user id and a device id may be the same string.
        self._held_users: dict[str, float] = {}
        self._held_devices: dict[str, float] = {}
        self._hold_expiry: list[tuple[float, bool, str]] = []
        self._throttle_map_max = throttle_map_max
        self._pool: list[Lane] = []

    # -- intake -------------------------------------------------------------------

    def add(self, receipt: Receipt, now: float) -> None:
        op = receipt.op
        key = op.user_id if op.user_id is not None else op.device_id
        assert key is not None
        lane = self._lanes.get(key)
        if lane is None:
            if self._pool:
                lane = self._pool.pop()
                lane.key = key
            else:
                lane = Lane(key)
            self._lanes[key] = lane
        lane.pending.append(receipt)
        state = lane.state
        if state == IDLE:
            lane.state = READY
            lane.since = now
            self._ready.append(lane)
            self._ready_ops += 1
        elif state == READY:
            self._ready_ops += 1

    # -- what the sender asks -------------------------------------------------------

    def due(self, now: float, *, force: bool) -> bool:
        """Whether a batch should leave now."""
        self._release(now)
        if self._urgent:
            return True
        if not self._ready:
            return False
        return (
            force
            or self._ready_ops >= self._max_items
            or now >= self._ready[0].since + self._flush_interval
        )

    def next_deadline(self) -> float | None:
        """When something becomes due by itself (linger ends, a hold ends), if ever."""
        deadline: float | None = None
        if self._ready:
            deadline = self._ready[0].since + self._flush_interval
        if self._held:
            top = self._held[0][0]
            deadline = top if deadline is None else min(deadline, top)
        return deadline

    def has_sendable(self) -> bool:
        return bool(self._ready or self._urgent)

    def has_pending(self) -> bool:
        """Any operation still in a lane (ready, urgent, busy or held)?"""
        return any(lane.pending for lane in self._lanes.values())

    @property
    def throttled_identities(self) -> int:
        return len(self._held_users) + len(self._held_devices)

    @property
    def ready_ops(self) -> int:
        """Operations in READY lanes (new arrivals waiting for a batch)."""
        return self._ready_ops

    @property
    def lanes(self) -> int:
        return len(self._lanes)

    # -- batches --------------------------------------------------------------------

    def take(self, now: float) -> tuple[Batch | None, list[Refused]]:
        """Assemble the next batch; also return the groups that can never be sent (too
        large alone, or not encodable), each with its failure reason and message."""
        self._release(now)
        encoder = self._encoder
        encode = encoder.encode_item
        expansion = encoder.expansion
        limit = self.size_limit
        max_bytes = self._max_bytes
        max_items = self.item_limit
        lane_limit = self.lane_limit
        alone = encoder.overhead(1)
        sep = encoder.overhead(2) - alone
        # The body's size: ``size`` counts exactly what is sized (overhead, separators,
        # items sized before); ``unsized`` bounds the rest from above (JSON length times
        # the worst escaping). Escaping is counted exactly only once the bound comes near
        # a limit, which in most batches is never: sizing every item costs as much as
        # encoding it.
        size = alone
        unsized = 0
        unsized_groups: list[Group] = []
        groups: list[Group] = []
        lanes: list[Lane] = []
        refused: list[Refused] = []
        ready = self._ready
        if not self._urgent and not (self._held_users or self._held_devices):
            # The common case, kept tight: lanes of one new operation, nobody held.
            # Anything else (a longer lane, a value that does not encode, a limit near)
            # is left where it is for the general loop below.
            while ready and len(groups) < max_items:
                simple = ready[0]
                pending = simple.pending
                if len(pending) != 1:
                    break
                wire = pending[0].op.to_dict()
                try:
                    json_item = encode(wire)
                except _ENCODE_ERRORS:
                    break
                worst = len(json_item) * expansion
                cost = sep if groups else 0
                if alone + worst > max_bytes or size + unsized + worst + cost > limit:
                    break
                ready.popleft()
                self._ready_ops -= 1
                simple.pending = []
                simple.state = BUSY
                lanes.append(simple)
                first = Group(simple.key, pending, None)
                first.encoded = json_item
                groups.append(first)
                unsized_groups.append(first)
                unsized += worst
                size += cost
        while len(groups) < max_items:
            lane = self._next_candidate()
            if lane is None:
                break
            receipts = self._sendable_prefix(lane, now)
            if not receipts:
                continue
            lane_groups = self._groups(lane.key, receipts)
            sent = done = 0
            lane_full = False
            while done < len(lane_groups):
                if sent >= lane_limit:
                    lane_full = True  # this identity has enough in this request
                    break
                group = lane_groups[done]
                encoded = group.encoded
                if encoded is None:
                    try:
                        group.encoded = encoded = encode(group.wire)  # type: ignore[arg-type]
                        group.wire = None
                    except _ENCODE_ERRORS as exc:
                        # A value the JSON encoder refuses (a lone surrogate, a value
                        # changed after it was queued): that operation fails, not the
                        # pipeline. A merge is taken apart to find it.
                        if len(group.receipts) > 1:
                            lane_groups[done : done + 1] = [single(r) for r in group.receipts]
                        else:
                            refused.append(Refused(group, FailureReason.INVALID, _unencodable(exc)))
                            done += 1
                        continue
                cost = sep if groups else 0
                if not group.size:
                    worst = len(encoded) * expansion
                    if (
                        alone + worst <= max_bytes
                        and size + unsized + worst + cost <= limit
                        and len(groups) < max_items
                    ):
                        # Fits even if every byte were escaped: size it later, if ever.
                        groups.append(group)
                        unsized_groups.append(group)
                        unsized += worst
                        size += cost
                        sent += 1
                        done += 1
                        continue
                    # Near a limit: count exactly, this item and those bounded so far.
                    for bounded in unsized_groups:
                        bounded.size = encoder.item_size(bounded.encoded)  # type: ignore[arg-type]
                        size += bounded.size
                    unsized_groups.clear()
                    unsized = 0
                    group.size = encoder.item_size(encoded)
                item = group.size
                if alone + item > max_bytes:
                    if len(group.receipts) > 1:
                        # A merge grew too large (the merge bound is an estimate):
                        # its operations go on unmerged.
                        lane_groups[done : done + 1] = [single(r) for r in group.receipts]
                        continue
                    # Could never be sent, however small the batch: fails alone.
                    refused.append(
                        Refused(
                            group,
                            FailureReason.TOO_LARGE,
                            f"the identification alone is larger than batch_max_bytes "
                            f"({max_bytes} bytes)",
                        )
                    )
                    done += 1
                    continue
                if len(groups) >= max_items or (groups and size + unsized + item + cost > limit):
                    break
                groups.append(group)
                size += item + cost
                sent += 1
                done += 1
            leftover = lane_groups[done:]
            if leftover:
                lane.pending[0:0] = [r for g in leftover for r in g.receipts]
            if sent:
                lane.state = BUSY
                lanes.append(lane)
                if leftover and not lane_full:
                    break  # the batch is full
            elif leftover:
                # Nothing of this lane fit: the batch is full, and the lane stays first.
                lane.state = URGENT
                self._urgent.appendleft(lane)
                break
            else:
                self._park(lane, now, None)
        if not groups:
            return None, refused
        return Batch(groups, lanes), refused

    def _groups(self, key: str, receipts: list[Receipt]) -> list[Group]:
        """The identifications for a lane's sendable operations."""
        if len(receipts) == 1:
            # Most lanes hold one operation: its group needs no merging (and may own
            # the list the lane gave up).
            return [Group(key, receipts, receipts[0].op.to_dict())]
        if not self._coalesce:
            return [single(r) for r in receipts]
        try:
            return coalesce(receipts, max_bytes=self._merge_max)
        except Exception:  # a merge bug must not lose operations: send them unmerged
            logger.exception(
                "coalescing failed; sending %d operation(s) unmerged",
                len(receipts),
                extra=fields("identify.coalesce_failed", count=len(receipts)),
            )
            return [single(r) for r in receipts]

    def settle(
        self,
        batch: Batch,
        back: list[Receipt],
        now: float,
        not_before: float | None = None,
    ) -> None:
        """A batch's request is over: put ``back`` (operations without an outcome, in
        batch order) at the front of their lanes, then free the lanes (parking them
        until ``not_before`` if given)."""
        if not back:
            # All done (the usual case): most lanes have nothing new and go idle.
            for lane in batch.lanes:
                if lane.pending:
                    self._park(lane, now, None)
                else:
                    self._forget(lane)
            return
        returned: dict[str, list[Receipt]] = {}
        for receipt in back:
            op = receipt.op
            key = op.user_id if op.user_id is not None else op.device_id
            assert key is not None
            returned.setdefault(key, []).append(receipt)
        for lane in batch.lanes:
            receipts = returned.get(lane.key)
            if receipts:
                lane.pending[0:0] = receipts
            self._park(lane, now, not_before if receipts else None)

    def hold(self, users: Iterable[str], devices: Iterable[str], until: float) -> int:
        """Put identities in the throttle map until ``until``; returns how many."""
        count = 0
        for table, is_user, names in (
            (self._held_users, True, users),
            (self._held_devices, False, devices),
        ):
            for name in names:
                if table.get(name, 0.0) < until:
                    table[name] = until
                    heapq.heappush(self._hold_expiry, (until, is_user, name))
                count += 1
        self._bound_throttle_map()
        return count

    def shrink(self, failed_size: int, failed_items: int) -> None:
        """A request of ``failed_size`` bytes and ``failed_items`` identifications got 413:
        send smaller requests from now on, halving both (the byte limit has a floor,
        the item limit does not: a small body may be refused for its item count). One
        identification refused counts for its size only."""
        self.size_limit = max(1024, min(self.size_limit, failed_size // 2))
        self._refused_size = min(failed_size, self._refused_size or failed_size)
        if failed_items > 1:
            self.item_limit = max(1, min(self.item_limit, failed_items // 2))
            self._refused_items = min(failed_items, self._refused_items or failed_items)
        self._merge_max = _merge_bound(self.size_limit)
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
        """A request succeeded: let the limits grow back towards the configured ones,
        by an eighth at a time, up to just under what was last refused; the memory of
        that refusal ends after RECOVER_AFTER successes in a row."""
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
        lane_cap = self._max_items
        if self._refused_lane is not None:
            lane_cap = max(self.lane_limit, min(lane_cap, self._refused_lane - 1))
        self.lane_limit = min(lane_cap, self.lane_limit + self.lane_limit // 8 + 1)
        size_cap = self._max_bytes
        if self._refused_size is not None:
            size_cap = max(self.size_limit, min(size_cap, self._refused_size - 1))
        item_cap = self._max_items
        if self._refused_items is not None:
            item_cap = max(self.item_limit, min(item_cap, self._refused_items - 1))
        self.size_limit = min(size_cap, self.size_limit + self.size_limit // 8 + 1)
        self.item_limit = min(item_cap, self.item_limit + self.item_limit // 8 + 1)
        self._merge_max = _merge_bound(self.size_limit)

    def unmerge(self, group: Group) -> list[Group]:
        """The operations of a merged group as single, encoded groups (in order)."""
        encoder = self._encoder
        singles = [single(r) for r in group.receipts]
        for one in singles:
            one.encoded = encoder.encode_item(one.wire)  # type: ignore[arg-type]
            one.wire = None
            one.size = encoder.item_size(one.encoded)
        return singles

    def drain_all(self) -> list[Receipt]:
        """Take every operation still in a lane (at shutdown), in lane order."""
        out: list[Receipt] = []
        for lane in self._lanes.values():
            out.extend(lane.pending)
            lane.pending = []
            lane.state = IDLE
        self._lanes.clear()
        self._ready.clear()
        self._urgent.clear()
        self._held.clear()
        self._ready_ops = 0
        return out

    # -- internals ----------------------------------------------------------------------

    def _next_candidate(self) -> Lane | None:
        if self._urgent:
            return self._urgent.popleft()
        if self._ready:
            lane = self._ready.popleft()
            self._ready_ops -= len(lane.pending)
            return lane
        return None

    def _sendable_prefix(self, lane: Lane, now: float) -> list[Receipt]:
        """The lane's operations that may go now; parks the lane if none may."""
        pending = lane.pending
        if not (self._held_users or self._held_devices):
            if len(pending) <= LANE_TAKE_MAX:
                lane.pending = []
                return pending
            lane.pending = pending[LANE_TAKE_MAX:]
            return pending[:LANE_TAKE_MAX]
        count = 0
        until: float | None = None
        for receipt in pending:
            until = self._held_until(receipt, now)
            if until is not None or count >= LANE_TAKE_MAX:
                break
            count += 1
        if count == 0:
            self._park(lane, now, until)
            return []
        lane.pending = pending[count:]
        return pending[:count]

    def _held_until(self, receipt: Receipt, now: float) -> float | None:
        op = receipt.op
        until = 0.0
        if op.user_id is not None:
            until = self._held_users.get(op.user_id, 0.0)
        if op.device_id is not None:
            until = max(until, self._held_devices.get(op.device_id, 0.0))
        return until if until > now else None

    def _park(self, lane: Lane, now: float, not_before: float | None) -> None:
        """Put a lane that is not BUSY any more where it belongs."""
        if not lane.pending:
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

    def _release(self, now: float) -> None:
        held = self._held
        while held and held[0][0] <= now:
            until, _, lane = heapq.heappop(held)
            if lane.state == HELD and lane.not_before == until:
                self._park(lane, now, None)
        expiry = self._hold_expiry
        while expiry and expiry[0][0] <= now:
            until, is_user, name = heapq.heappop(expiry)
            table = self._held_users if is_user else self._held_devices
            if table.get(name) == until:
                del table[name]

    def _bound_throttle_map(self) -> None:
        # Past the bound, let go of the holds that end soonest: they matter least.
        expiry = self._hold_expiry
        while self.throttled_identities > self._throttle_map_max and expiry:
            until, is_user, name = heapq.heappop(expiry)
            table = self._held_users if is_user else self._held_devices
            if table.get(name) == until:
                del table[name]


def _merge_bound(size_limit: int) -> int:
    """How large (estimated JSON bytes) a merge may grow under a body-size limit: a
    third of it, since form escaping can triple JSON; never above MERGE_BYTES_MAX."""
    return min(MERGE_BYTES_MAX, size_limit // 3)
