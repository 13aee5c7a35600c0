"""Batch assembly: collect ready units from the lanes into one request body's items, in
slices that hand the event loop back. No I/O.

Units are already merged (lanes coalesce as operations arrive), so assembling a batch
is: take the next lane's sendable units, encode each once (msgspec JSON), and size the
body. Sizing is by an upper bound (JSON length times the worst escaping) while the body
is far from a limit, and exact (escaping counted) only near one: sizing every item
costs as much as encoding it.

A :class:`Builder` assembles one batch; :meth:`Builder.fill` works until its time slice
is used up and says whether the batch is finished, so the sender can yield between
slices and no single step holds the loop for more than about a millisecond or two.
"""

from __future__ import annotations

import time
from typing import Final

import msgspec

from ._coalesce import Merged, Unit
from ._encode import BatchEncoder
from ._lanes import BUSY, Lane, Lanes
from ._ledger import Ledger, log_failed
from ._limits import RequestLimits
from ._outcome import FailureReason

__all__ = ["Batch", "Batcher", "Builder", "encode_singles"]

#: What the JSON encoder raises for values it cannot encode.
ENCODE_ERRORS: Final = (msgspec.EncodeError, ValueError, TypeError, OverflowError)
#: How long one slice of assembly may run before the loop gets a turn (seconds).
SLICE_SECONDS: Final = 0.001


class Batch:
    """What one request carries: units, their encoded items (same order), and the lanes
    they came from (all BUSY until the request settles)."""

    __slots__ = ("items", "lanes", "units")

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.items: list[bytes] = []
        self.lanes: list[Lane] = []

    def __len__(self) -> int:
        return len(self.units)


def _unencodable(exc: BaseException) -> str:
    return f"the identification cannot be encoded as JSON ({type(exc).__name__}: {exc})"[:300]


def encode_singles(encoder: BatchEncoder, unit: Merged) -> tuple[list[Unit], list[bytes]]:
    """A merged unit's operations as single units with their encoded items (in order).
    An operation that no longer encodes gets an empty item (the caller fails it)."""
    units: list[Unit] = list(unit.ops)
    items: list[bytes] = []
    for op in unit.ops:
        try:
            items.append(encoder.encode_item(op.to_dict()))
        except ENCODE_ERRORS:
            items.append(b"")
    return units, items


class Batcher:
    """Makes :class:`Builder` objects over one client's lanes."""

    __slots__ = ("_encoder", "_lanes", "_ledger", "_limits")

    def __init__(
        self, lanes: Lanes, limits: RequestLimits, encoder: BatchEncoder, ledger: Ledger
    ) -> None:
        self._lanes = lanes
        self._limits = limits
        self._encoder = encoder
        self._ledger = ledger

    def start(self) -> Builder:
        return Builder(self)


class Builder:
    """One batch being assembled. Units it took are out of their lanes (which are BUSY)
    until :meth:`finish` hands them over or :meth:`abandon` puts them back."""

    __slots__ = (
        "_alone",
        "_encoder",
        "_lanes",
        "_ledger",
        "_limits",
        "_sep",
        "_size",
        "_unsized",
        "_unsized_from",
        "batch",
        "full",
    )

    def __init__(self, batcher: Batcher) -> None:
        self._lanes = batcher._lanes
        self._limits = batcher._limits
        self._encoder = encoder = batcher._encoder
        self._ledger = batcher._ledger
        self.batch = Batch()
        self.full = False
        self._alone = encoder.overhead(1)
        self._sep = encoder.overhead(2) - self._alone
        # The body's size: ``_size`` counts exactly what is sized (overhead, separators,
        # items sized before); ``_unsized`` bounds the items from ``_unsized_from`` on
        # from above (JSON length times the worst escaping).
        self._size = self._alone
        self._unsized = 0
        self._unsized_from = 0

    def fill(self, now: float, until: float | None = None) -> bool:
        """Take units until the batch is full, nothing more may go, or the clock passes
        ``until`` (a ``time.perf_counter`` value). True when the batch is finished."""
        lanes = self._lanes
        limits = self._limits
        max_items = limits.item_limit
        lane_limit = limits.lane_limit
        batch = self.batch
        if lanes.plain and not self._single_lanes(until):
            return False
        while not self.full and len(batch.units) < max_items:
            lane = lanes.next_lane()
            if lane is None:
                break
            units = lanes.sendable(lane, now, min(lane_limit, max_items - len(batch.units)))
            if not units:
                continue  # held: parked by sendable()
            before = len(batch.units)
            done = self._take(units)
            if done < len(units):
                # The next unit does not fit: the batch is full; the rest stays first.
                lanes.put_front(lane, units[done:])
                self.full = True
            if len(batch.units) > before:
                lane.state = BUSY
                batch.lanes.append(lane)
            elif self.full:
                lanes.requeue(lane)  # nothing of it fit: first in line for the next batch
            else:
                lanes.done_with(lane, now)  # everything it offered was refused
            # Every call takes at least one lane; then the slice may be over.
            if until is not None and time.perf_counter() > until and lanes.has_sendable():
                return False
        self.full = True
        return True

    def _single_lanes(self, until: float | None) -> bool:
        """The common case, kept tight: READY lanes of one unit each, nobody held, no
        limit near. Anything else (a longer lane, a value that does not encode, a size
        near a limit) is left where it is for the general loop. False when the slice is
        over first."""
        lanes = self._lanes
        ready = lanes.ready
        encode = self._encoder.encode_item
        expansion = self._encoder.expansion
        limits = self._limits
        limit = limits.size_limit
        max_items = limits.item_limit
        over_alone = limits.max_bytes - self._alone
        sep = self._sep
        batch = self.batch
        out_units, items, out_lanes = batch.units, batch.items, batch.lanes
        size, unsized = self._size, self._unsized
        taken = 0
        try:
            while ready and len(out_units) < max_items:
                lane = ready[0]
                unit = lane.first
                if unit is None or lane.rest:
                    break
                try:
                    encoded = encode(unit.to_dict())
                except ENCODE_ERRORS:
                    break
                worst = len(encoded) * expansion
                cost = sep if out_units else 0
                if worst > over_alone or size + unsized + worst + cost > limit:
                    break
                ready.popleft()
                lane.first = None
                lane.state = BUSY
                out_lanes.append(lane)
                out_units.append(unit)
                items.append(encoded)
                unsized += worst
                size += cost
                taken += 1
                if not taken & 63 and until is not None and time.perf_counter() > until:
                    return False
        finally:
            lanes.ready_units -= taken
            self._size, self._unsized = size, unsized
        return True

    def _take(self, units: list[Unit]) -> int:
        """Add units to the batch in order; returns how many were dealt with (added or
        refused). Stops at the first unit that does not fit."""
        encoder = self._encoder
        encode = encoder.encode_item
        expansion = encoder.expansion
        limits = self._limits
        limit = limits.size_limit
        max_bytes = limits.max_bytes
        max_items = limits.item_limit
        alone = self._alone
        sep = self._sep
        batch = self.batch
        out_units = batch.units
        items = batch.items
        done = 0
        i = 0
        while i < len(units):
            unit = units[i]
            try:
                encoded = encode(unit.to_dict())
            except ENCODE_ERRORS as exc:
                # A value the JSON encoder refuses (changed after it was queued): that
                # operation fails, not the pipeline. A merge is taken apart to find it.
                if isinstance(unit, Merged):
                    units[i : i + 1] = unit.ops
                    continue
                message = _unencodable(exc)
                self._ledger.fail(unit, FailureReason.INVALID, message)
                log_failed(1, FailureReason.INVALID, message)
                i += 1
                done = i
                continue
            cost = sep if out_units else 0
            worst = len(encoded) * expansion
            if (
                alone + worst <= max_bytes
                and self._size + self._unsized + worst + cost <= limit
                and len(out_units) < max_items
            ):
                # Fits even if every byte were escaped: size it later, if ever.
                out_units.append(unit)
                items.append(encoded)
                self._unsized += worst
                self._size += cost
                i += 1
                done = i
                continue
            # Near a limit: count exactly, this item and those bounded so far.
            item_size = encoder.item_size
            for bounded in items[self._unsized_from :]:
                self._size += item_size(bounded)
            self._unsized_from = len(items)
            self._unsized = 0
            size = item_size(encoded)
            if alone + size > max_bytes:
                if isinstance(unit, Merged):
                    # A merge grew too large (the merge bound is an estimate): its
                    # operations go on unmerged.
                    units[i : i + 1] = unit.ops
                    continue
                # Could never be sent, however small the batch: fails alone.
                message = (
                    f"the identification alone is larger than batch_max_bytes ({max_bytes} bytes)"
                )
                self._ledger.fail(unit, FailureReason.TOO_LARGE, message)
                log_failed(1, FailureReason.TOO_LARGE, message)
                i += 1
                done = i
                continue
            if len(out_units) >= max_items or (out_units and self._size + size + cost > limit):
                break
            out_units.append(unit)
            items.append(encoded)
            self._size += size + cost
            self._unsized_from = len(items)
            i += 1
            done = i
        # ``units`` may have grown (a merge taken apart): the caller puts back the rest.
        return done

    def finish(self) -> Batch | None:
        """The assembled batch (None if nothing went into it); marks merged units sent."""
        batch = self.batch
        if not batch.units:
            return None
        for unit in batch.units:
            if isinstance(unit, Merged):
                unit.sent = True
        return batch

    def abandon(self, now: float) -> None:
        """Cancelled mid-assembly: every unit taken goes back to the front of its lane."""
        batch = self.batch
        back: dict[str, list[Unit]] = {}
        for unit in batch.units:
            back.setdefault(unit.identity, []).append(unit)
        batch.units = []
        batch.items = []
        self._lanes.settle(batch.lanes, back, now)
        batch.lanes = []
