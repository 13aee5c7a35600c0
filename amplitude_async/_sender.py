"""The sender: the only loop of the pipeline.

It sleeps until a batch is due (full, lingered ``flush_interval``, a hold ended, a
flush or the drain asks), assembles it in slices (``_batcher``), and starts one send
task per batch, at most ``max_in_flight`` at once. A send task runs the request
(``_request``) and, whatever happened, puts the units without an outcome back at the
front of their lanes. The sender owns the in-flight count, the wake-up event and the
deadline it sleeps until; intake tells it when an arrival changes what it waits for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import anyio.abc

from ._batcher import SLICE_SECONDS, Batch, Batcher
from ._clock import Clock
from ._coalesce import Merged, Unit
from ._lanes import Lanes
from ._request import Attempt, RequestHandler

__all__ = ["Sender"]


def _nothing() -> None:
    return None


class Sender:
    """The loop that turns ready lanes into requests, and its in-flight slots."""

    __slots__ = (
        "_batcher",
        "_clock",
        "_flush_interval",
        "_handler",
        "_lanes",
        "_max_in_flight",
        "_max_items",
        "_on_turn",
        "_retried",
        "_sleep_until",
        "before_batch",
        "draining",
        "flushing",
        "in_flight",
        "settled",
        "wake",
        "wants_turn",
    )

    def __init__(
        self,
        *,
        clock: Clock,
        lanes: Lanes,
        batcher: Batcher,
        handler: RequestHandler,
        max_in_flight: int,
        max_items: int,
        flush_interval: float,
        on_retried: Callable[[int], None],
        on_turn: Callable[[], None] = _nothing,
    ) -> None:
        self._clock = clock
        self._lanes = lanes
        self._batcher = batcher
        self._handler = handler
        self._max_in_flight = max_in_flight
        self._max_items = max_items
        self._flush_interval = flush_interval
        self._retried = on_retried
        #: Called at the end of every turn and after every request (telemetry's bulk
        #: update of the outcomes counter).
        self._on_turn = on_turn
        self._sleep_until: float | None = None
        self.in_flight = 0
        #: Drain at shutdown, or flush() calls waiting: send without lingering.
        self.draining = False
        self.flushing = 0
        #: The sender has work that needs only a turn of the loop (a batch is due, or
        #: one is half assembled): intake yields for it.
        self.wants_turn = False
        #: Called before each round of batches (the client fails everything queued
        #: there once the API key was refused).
        self.before_batch: Callable[[], None] = _nothing
        self.wake = asyncio.Event()
        #: Set each time the sender has done what it could; the drain waits on it.
        self.settled = asyncio.Event()

    def poke(self) -> None:
        self.wake.set()

    def arrived(self, now: float, batch_full: bool) -> None:
        """An operation was queued: wake the sender only when it changes what it waits
        for (the hot path: called once per operation)."""
        if self.in_flight >= self._max_in_flight:
            return
        sleep_until = self._sleep_until
        if batch_full or (sleep_until is not None and now >= sleep_until):
            self.wants_turn = True
            self.wake.set()
        elif not self.wake.is_set() and (
            sleep_until is None or now + self._flush_interval < sleep_until
        ):
            self.wake.set()

    def stalled(self, give_up_at: float) -> bool:
        """Nothing in flight, and nothing can be sent before ``give_up_at`` (only holds
        that end later are left): waiting longer cannot deliver anything."""
        lanes = self._lanes
        if self.in_flight or lanes.has_sendable():
            return False
        next_release = lanes.next_deadline()
        return next_release is None or next_release > give_up_at

    async def run(self, tg: anyio.abc.TaskGroup) -> None:
        clock, lanes, wake = self._clock, self._lanes, self.wake
        max_in_flight, max_items = self._max_in_flight, self._max_items
        while True:
            now = clock.now()
            self.before_batch()
            force = self.draining or self.flushing > 0
            while self.in_flight < max_in_flight and lanes.due(
                now, force=force, max_items=max_items
            ):
                batch = await self._assemble(now)
                if batch is None:
                    break
                self.in_flight += 1
                tg.start_soon(self._send, batch)
                # Let the application (and the request just started) run before
                # assembling the next one, so the loop never stalls for several batches.
                self.wants_turn = True
                await asyncio.sleep(0)
                now = clock.now()
            self.wants_turn = False
            self.settled.set()
            # Outcomes resolved outside a request since the last turn (refusals, drops,
            # auth): one bulk update.
            self._on_turn()
            self._sleep_until = lanes.next_deadline() if self.in_flight < max_in_flight else None
            await clock.wait(wake, self._sleep_until)
            wake.clear()

    async def _assemble(self, now: float) -> Batch | None:
        """One batch, assembled in slices of about SLICE_SECONDS with the loop's turns
        in between."""
        builder = self._batcher.start()
        try:
            while not builder.fill(now, time.perf_counter() + SLICE_SECONDS):
                self.wants_turn = True
                await asyncio.sleep(0)
                now = self._clock.now()
        except BaseException:
            # Cancelled (closing) or a bug: what was taken goes back to its lanes, so
            # that it is failed, spooled or sent like everything else.
            builder.abandon(self._clock.now())
            raise
        return builder.finish()

    async def _send(self, batch: Batch) -> None:
        attempt = Attempt()
        try:
            await self._handler.send(batch, attempt)
        finally:
            # Whatever has no outcome goes back to the front of its lane, in batch order
            # (also when cancelled at shutdown, so aclose() can fail and spool it).
            back, count = _unresolved(batch.units)
            if count:
                self._retried(count)
            self._on_turn()  # this request's outcomes, in one bulk update
            self._lanes.settle(batch.lanes, back, self._clock.now(), attempt.not_before)
            self.in_flight -= 1
            self.wake.set()


def _unresolved(units: list[Unit]) -> tuple[dict[str, list[Unit]] | None, int]:
    """The units of a finished request that have no outcome, per lane, and how many
    operations they carry. A merged unit whose operations went on alone (413, 400) and
    got some outcomes comes back as its remaining operations, unmerged."""
    back: dict[str, list[Unit]] | None = None
    count = 0
    for unit in units:
        if isinstance(unit, Merged):
            pending: list[Unit] = [op for op in unit.ops if op.outcome is None]
            if not pending:
                continue
            if len(pending) == len(unit.ops):
                pending = [unit]
            count += sum(len(u.ops) if isinstance(u, Merged) else 1 for u in pending)
        elif unit.outcome is None:
            pending = [unit]
            count += 1
        else:
            continue
        if back is None:
            back = {}
        back.setdefault(unit.identity, []).extend(pending)
    return back, count
