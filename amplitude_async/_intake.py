"""Intake: the door every operation comes through.

It checks each operation (bad input is refused before anything is queued), applies the
bound (``queue_max`` operations without an outcome) and the ``on_full`` policy, keeps the
callers waiting for room, and offers the thread-safe entry. An accepted operation is
counted by the ledger and put in its lane; the sender is told when that changes what
it waits for, and a producer that never yields on its own gets a turn given to the loop
when a batch is due, so a tight loop of ``await identify()`` cannot starve the sender.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import threading
from _thread import get_ident
from asyncio.events import _get_running_loop
from collections import deque
from collections.abc import Callable
from typing import Final

from ._config import ClientConfig
from ._errors import ClientNotStarted, ClientStateError, QueueFull, ValidationError
from ._identify import Identify
from ._lanes import Lanes
from ._ledger import Ledger
from ._logfields import fields
from ._outcome import FROZEN, Failed, FailureReason, Outcome, Receipt
from ._rules import id_problem
from ._sender import Sender
from ._size_floor import oversize_problem

__all__ = ["Intake"]

logger = logging.getLogger("amplitude_async")

#: A producer that never waits still hands the loop a turn this often (operations), so
#: that answers of requests in flight are read even when no batch is due.
YIELD_EVERY: Final = 128


class _Gate:
    """A thread that stopped waiting and the loop that queues for it agree, under a
    lock, on whether the operation was queued: exactly one of commit() and abandon()
    returns True."""

    __slots__ = ("_lock", "_state")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = 0  # 0: undecided, 1: queued, 2: abandoned

    def commit(self) -> bool:
        with self._lock:
            if self._state == 0:
                self._state = 1
            return self._state == 1

    def abandon(self) -> bool:
        with self._lock:
            if self._state == 0:
                self._state = 2
            return self._state == 2


class Intake:
    """Validation, the bound, the full policy, space waiters, the thread-safe entry."""

    __slots__ = (
        "_clock_now",
        "_config",
        "_lanes",
        "_ledger",
        "_max_bytes",
        "_max_items",
        "_min_id_length",
        "_queue_max",
        "_sender",
        "_since_yield",
        "_waiters",
        "auth_failed",
        "loop",
        "loop_error",
        "loop_thread",
        "refusal",
    )

    def __init__(
        self,
        config: ClientConfig,
        now: Callable[[], float],
        ledger: Ledger,
        lanes: Lanes,
        sender: Sender,
    ) -> None:
        self._config = config
        self._clock_now = now
        self._ledger = ledger
        self._lanes = lanes
        self._sender = sender
        self._queue_max = config.queue_max
        self._max_items = config.batch_max_items
        self._min_id_length = config.min_id_length
        self._max_bytes = config.batch_max_bytes
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._since_yield = 0
        #: Why operations are refused at the call (a factory of the error), or None
        #: while the client accepts them. Set by the client's state machine.
        self.refusal: Callable[[], ClientStateError] | None = None
        #: The API key was refused: operations are accepted and fail at once with auth.
        self.auth_failed = False
        #: The loop the client was opened on (its events and futures belong to it), and
        #: the error for a call from any other.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.loop_thread: int | None = None
        self.loop_error: Callable[[], ClientStateError] = _no_loop_error
        ledger.on_room = self._room

    @property
    def waiting(self) -> int:
        """Callers waiting for room now."""
        return len(self._waiters)

    # -- the entries ------------------------------------------------------------------

    # The entries take ``object``: the compiled build checks an ``Identify`` parameter
    # itself, with its own TypeError; check() raises the ValidationError in both builds.

    async def submit(self, given: object) -> Receipt:
        op = self.check(given)
        # The thread, not the running loop: a loop per thread is the usual misuse, and
        # _get_running_loop() costs a getpid() system call, a fifth of an identify(). A
        # loop that ended on the same thread is caught by the state (the orphaned
        # close); before waiting for room, the loop itself is checked.
        if get_ident() != self.loop_thread:
            raise self.loop_error()
        if self._ledger.unresolved >= self._queue_max:
            if _get_running_loop() is not self.loop:
                raise self.loop_error()
            if self._config.on_full != "wait":
                return self._full(op)
            await self._wait_for_room()
        self._enqueue(op)
        # Hand the loop a turn when the sender has a batch to make (or every so often),
        # so a producer that never yields cannot starve it.
        self._since_yield += 1
        if self._sender.wants_turn or self._since_yield >= YIELD_EVERY:
            self._since_yield = 0
            await asyncio.sleep(0)
        return op

    def submit_nowait(self, given: object) -> Receipt:
        op = self.check(given)
        if get_ident() != self.loop_thread:  # the thread only, as in submit()
            raise self.loop_error()
        if self._ledger.unresolved >= self._queue_max:
            return self._full(op)
        self._enqueue(op)
        return op

    def submit_threadsafe(
        self, given: object, timeout: float | None, loop_thread: int | None
    ) -> concurrent.futures.Future[Outcome]:
        loop = self.loop
        if loop is None:  # never opened (a state that is not open yet refuses in check())
            raise ClientNotStarted("the client is not open; use 'async with AmplitudeClient(...)'")
        if threading.get_ident() == loop_thread:
            raise ClientStateError(
                "identify_threadsafe() was called on the event loop's own thread; "
                "use 'await identify()' or identify_nowait() there"
            )
        op = self.check(given)
        outcome: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        gate = _Gate()

        async def enqueue() -> None:
            self.check(op)
            if self._ledger.unresolved >= self._queue_max and self._config.on_full == "wait":
                await self._wait_for_room()
            # Queue it only if the calling thread has not given up meanwhile (timeout):
            # from here on nothing awaits, so the operation is queued or refused at once.
            if not gate.commit():
                return
            receipt = self.submit_nowait(op)
            # A callback, not a relay task: tasks are cancelled at shutdown, before the
            # leftovers get their outcome; the callback runs with the resolution.
            receipt.add_done_callback(functools.partial(_set_future, outcome))

        queued = asyncio.run_coroutine_threadsafe(enqueue(), loop)
        try:
            queued.result(timeout)
        except TimeoutError:
            if gate.abandon():
                # Not queued, and now it never will be.
                queued.cancel()
                raise
            queued.result()  # queued just now: the result is a moment away
        return outcome

    # -- checks and the policy ----------------------------------------------------------

    def check(self, op: object) -> Identify:
        """``op`` if it may be queued now; else the error why not."""
        refusal = self.refusal
        if refusal is not None:
            raise refusal()
        if not isinstance(op, Identify):
            raise ValidationError(f"identify() takes an Identify, got {type(op).__name__}")
        if op._flags & FROZEN:
            raise ValidationError(
                "this Identify was already queued; build a new one for another operation"
            )
        min_length = self._min_id_length
        user_id, device_id = op.user_id, op.device_id
        if user_id is not None and len(user_id) < min_length:
            self._refuse_short_id(user_id, "user_id")
        if device_id is not None and len(device_id) < min_length:
            self._refuse_short_id(device_id, "device_id")
        too_large = oversize_problem(op, self._max_bytes)
        if too_large:
            raise ValidationError(too_large)
        return op

    def _refuse_short_id(self, value: str, kind: str) -> None:
        problem = id_problem(value, kind, self._min_id_length)
        if problem:
            raise ValidationError(problem)

    def _full(self, op: Identify) -> Receipt:
        if self._config.on_full == "drop":
            ledger = self._ledger
            dropped = ledger.counters.failed[FailureReason.DROPPED.value] + 1
            if dropped & (dropped - 1) == 0:  # the 1st, 2nd, 4th, 8th, ... drop: not a flood
                logger.warning(
                    "intake full (queue_max=%d): %d operation(s) dropped so far (reason dropped)",
                    self._queue_max,
                    dropped,
                    extra=fields("identify.dropped", count=dropped, reason="dropped"),
                )
            op._flags |= FROZEN
            ledger.admit(op)
            ledger.resolve(
                op,
                Failed(
                    FailureReason.DROPPED,
                    f"intake full (queue_max={self._queue_max}); dropped by on_full='drop'",
                ),
            )
            return op
        raise QueueFull(_queue_full_message(self._queue_max, self._config.on_full))

    def _enqueue(self, op: Identify) -> None:
        op._flags |= FROZEN
        ledger = self._ledger
        ledger.admit(op)
        if self.auth_failed:
            ledger.fail(op, FailureReason.AUTH, "the API key was not accepted")
            return
        lanes = self._lanes
        now = self._clock_now()
        lanes.add(op, now)
        self._sender.arrived(now, lanes.ready_units >= self._max_items)

    # -- room ---------------------------------------------------------------------------

    async def _wait_for_room(self) -> None:
        loop = asyncio.get_running_loop()
        while self._ledger.unresolved >= self._queue_max:
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                # Cancelled (or closed): nothing was queued. Pass a wake-up we got on.
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._room(1)
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            refusal = self.refusal
            if refusal is not None:
                raise refusal()

    def _room(self, count: int) -> None:
        """``count`` operations got an outcome: wake as many waiters."""
        waiters = self._waiters
        while count > 0 and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    def fail_waiters(self, error: BaseException) -> None:
        """Intake closed: every caller waiting for room gets ``error``."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)


def _queue_full_message(queue_max: int, on_full: str) -> str:
    """Why QueueFull was raised, naming the settings that decide it and what to change."""
    full = f"intake is full: queue_max={queue_max} operations are waiting for an outcome"
    if on_full == "wait":
        # Only identify_nowait() raises under "wait": it cannot wait for room.
        return (
            f"{full}; identify_nowait() cannot wait for room: await identify() waits "
            "(on_full='wait'), or raise queue_max"
        )
    return (
        f"{full} and on_full={on_full!r}; raise queue_max, or use on_full='wait' "
        "(identify() waits for room) or on_full='drop' (a 'dropped' outcome)"
    )


def _no_loop_error() -> ClientStateError:
    return ClientStateError("the client is not open on an event loop")


def _set_future(future: concurrent.futures.Future[Outcome], outcome: Outcome) -> None:
    """Hand an outcome to another thread's future; the caller may have cancelled it."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        future.set_result(outcome)
