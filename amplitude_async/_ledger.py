"""The outcome ledger: resolves each operation exactly once, and keeps the books.

It owns the counters behind ``stats()``, the number of operations without an outcome
(the intake bound), the flush generations (``flush()`` waits until every operation
enqueued before it has an outcome) and the ``on_outcome`` callback. Every outcome goes
through here; nothing else sets one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

from ._coalesce import Merged, Unit
from ._identify import Identify
from ._logfields import fields
from ._outcome import AMBIGUOUS, Delivered, Failed, FailureReason, Outcome
from ._stats import Counters

__all__ = ["Ledger"]

logger = logging.getLogger("amplitude_async")

_DELIVERED_CACHE: dict[tuple[int, int, bool], Delivered] = {}


def delivered(status: int, attempts: int, duplicate: bool) -> Delivered:
    """Delivered outcomes are immutable: share one per (status, attempts, duplicate)."""
    key = (status, attempts, duplicate)
    outcome = _DELIVERED_CACHE.get(key)
    if outcome is None:
        outcome = Delivered(status, attempts, duplicate)
        if len(_DELIVERED_CACHE) < 4096:
            _DELIVERED_CACHE[key] = outcome
    return outcome


class Ledger:
    """Outcomes, counters and flush generations of one client."""

    __slots__ = (
        "_flush_waiters",
        "_gen_open",
        "_on_outcome",
        "counters",
        "gen",
        "on_room",
        "open_now",
        "unresolved",
    )

    def __init__(self, on_outcome: Callable[[Identify, Outcome], None] | None) -> None:
        self.counters = Counters()
        #: Operations accepted and without an outcome (what queue_max bounds).
        self.unresolved = 0
        # flush() bookkeeping: operations without an outcome, per generation. The
        # current generation counts in a plain int (the hot path); a flush closes it
        # into _gen_open and starts the next.
        self.gen = 0
        self.open_now = 0
        self._gen_open: dict[int, int] = {}
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._on_outcome = on_outcome
        #: Told how many operations got an outcome (intake wakes that many waiters).
        self.on_room: Callable[[int], None] = _nothing

    def admit(self, op: Identify) -> None:
        """Count an accepted operation (it now owes an outcome)."""
        op.gen = self.gen
        self.counters.enqueued += 1
        self.unresolved += 1
        self.open_now += 1

    # -- outcomes -----------------------------------------------------------------------

    def resolve(self, op: Identify, outcome: Outcome) -> None:
        op._resolve(outcome)
        counters = self.counters
        if isinstance(outcome, Failed):
            counters.failed[outcome.reason.value] += 1
        else:
            counters.delivered += 1
        self.unresolved -= 1
        if op.gen == self.gen:
            self.open_now -= 1
        else:
            self._settle_generation(op.gen, 1)
        self.on_room(1)
        callback = self._on_outcome
        if callback is not None:
            try:
                callback(op, outcome)
            except Exception:  # a user callback's bug must not lose other outcomes
                logger.exception(
                    "on_outcome callback raised; the outcome stands",
                    extra=fields("identify.callback_failed", count=1),
                )

    def fail(
        self,
        op: Identify,
        reason: FailureReason,
        message: str,
        status: int | None = None,
    ) -> None:
        self.resolve(
            op,
            Failed(reason, message, status, op.attempts, bool(op._flags & AMBIGUOUS)),
        )

    def fail_all(self, ops: list[Identify], reason: FailureReason, message: str) -> None:
        """Fail every operation of ``ops`` with ``reason``: what fail() does, in bulk (a
        hundred thousand leftovers must fit in the shutdown deadline). One outcome per
        (attempts, maybe_applied), shared; generations counted in one pass."""
        if self._on_outcome is not None:
            # A user callback may read stats() as it goes: one at a time.
            for op in ops:
                self.fail(op, reason, message)
            return
        shared: dict[tuple[int, bool], Failed] = {}
        current_gen = self.gen
        in_current = 0
        older: Counter[int] | None = None
        for op in ops:
            key = (op.attempts, bool(op._flags & AMBIGUOUS))
            outcome = shared.get(key)
            if outcome is None:
                outcome = shared[key] = Failed(reason, message, None, *key)
            op._resolve(outcome)
            if op.gen == current_gen:
                in_current += 1
            else:
                if older is None:
                    older = Counter()
                older[op.gen] += 1
        self.counters.failed[reason.value] += len(ops)
        self.unresolved -= len(ops)
        self.open_now -= in_current
        if older is not None:
            for gen, count in older.items():
                self._settle_generation(gen, count)
        self.on_room(len(ops))

    def fail_unit(
        self, unit: Unit, reason: FailureReason, message: str, status: int | None = None
    ) -> int:
        """Fail every operation of a unit; returns how many."""
        if isinstance(unit, Merged):
            for op in unit.ops:
                self.fail(op, reason, message, status)
            return len(unit.ops)
        self.fail(unit, reason, message, status)
        return 1

    def deliver(self, units: list[Unit], status: int) -> None:
        """Resolve every operation of delivered units: what resolve() does, once per
        call instead of once per operation (the hot path)."""
        if self._on_outcome is not None:
            # A user callback may read stats() as it goes: one at a time.
            for unit in units:
                for op in unit.ops if isinstance(unit, Merged) else (unit,):
                    self._deliver_one(op, status)
            return
        counters = self.counters
        current_gen = self.gen
        first_try = delivered(status, 1, False)
        resolved = in_current = duplicates = 0
        older: Counter[int] | None = None
        for unit in units:
            for op in unit.ops if isinstance(unit, Merged) else (unit,):
                if op.attempts == 1 and not op._flags & AMBIGUOUS:
                    op._resolve(first_try)
                else:
                    duplicate = bool(op._flags & AMBIGUOUS)
                    duplicates += duplicate
                    op._resolve(delivered(status, op.attempts, duplicate))
                resolved += 1
                if op.gen == current_gen:
                    in_current += 1
                else:
                    if older is None:
                        older = Counter()
                    older[op.gen] += 1
        counters.delivered += resolved
        counters.possible_duplicates += duplicates
        self.unresolved -= resolved
        self.open_now -= in_current
        if older is not None:
            for gen, count in older.items():
                self._settle_generation(gen, count)
        self.on_room(resolved)

    def _deliver_one(self, op: Identify, status: int) -> None:
        duplicate = bool(op._flags & AMBIGUOUS)
        if duplicate:
            self.counters.possible_duplicates += 1
        self.resolve(op, delivered(status, op.attempts, duplicate))

    # -- flush generations ----------------------------------------------------------------

    def flush_waiter(self) -> asyncio.Future[None] | None:
        """A future that resolves once every operation enqueued so far has an outcome
        (None: there is nothing to wait for). Starts a new generation."""
        if not self.open_now and not self._gen_open:
            return None
        gen = self.gen
        if self.open_now:
            self._gen_open[gen] = self.open_now
            self.open_now = 0
        self.gen += 1
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((gen, waiter))
        return waiter

    def fail_flush_waiters(self, error: BaseException) -> None:
        """Nothing will resolve the operations any more: wake every flush() with it."""
        for _, waiter in self._flush_waiters:
            if not waiter.done():
                waiter.set_exception(error)
        self._flush_waiters = []

    def release_flush_waiters(self, *, force: bool = False) -> None:
        oldest_open = min(self._gen_open) if self._gen_open else None
        still: list[tuple[int, asyncio.Future[None]]] = []
        for gen, waiter in self._flush_waiters:
            if force or oldest_open is None or oldest_open > gen:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((gen, waiter))
        self._flush_waiters = still

    def _settle_generation(self, gen: int, count: int) -> None:
        """``count`` operations of a flushed generation have their outcome; once the
        generation has none left, the flush() calls waiting on it may return."""
        left = self._gen_open[gen] - count
        if left:
            self._gen_open[gen] = left
            return
        del self._gen_open[gen]
        if self._flush_waiters:
            self.release_flush_waiters()


def log_failed(count: int, reason: FailureReason, message: str, status: int | None = None) -> None:
    logger.warning(
        "%d operation(s) failed with reason %s: %s",
        count,
        reason.value,
        message,
        extra=fields("identify.failed", count=count, reason=reason.value, status=status),
    )


def _nothing(count: int) -> None:
    return None
