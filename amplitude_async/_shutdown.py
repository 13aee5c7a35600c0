"""Closing the client: the close sequence (``Closer``: the drain within
``shutdown_timeout``, then stop, fail, spool, close the transport, in a task waited
out) and what it does with what is left (``Leftovers``: fail it with reason shutdown,
spool it, hand it over to ``on_undelivered`` and the log). The facade decides when."""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import TYPE_CHECKING, Final

import anyio

from ._clock import Clock
from ._config import ClientConfig
from ._identify import Identify
from ._lanes import Lanes
from ._ledger import Ledger
from ._logfields import fields
from ._outcome import Failed, FailureReason
from ._spool import write_spool
from ._state import State, StateMachine
from ._uncancellable import wait_out

if TYPE_CHECKING:
    from ._pipeline import Pipeline

__all__ = ["Closer", "Leftovers"]

logger = logging.getLogger("amplitude_async")

_MESSAGE = "the client closed before the operation was delivered"
_S = State
# Seconds per operation left at shutdown: to fail it, and to append it to the spool
# (measured on the 2-core machine at about 1.5 and 2.5 us; room left for a busy one).
# The drain stops this much before shutdown_timeout, so that aclose() ends within it.
_CLOSE_COST: Final = 2.5e-6
_SPOOL_COST: Final = 4e-6

_Closed = tuple[list[Identify], OSError | None]


class Closer:
    """The close sequence of one client, and the task that runs its uncancellable part.

    The facade starts the host task (``host``), which waits on ``stop``; closing sets
    ``stop``, waits for the host task to end, then resolves everything left."""

    __slots__ = ("_clock", "_config", "_stages", "_states", "_task", "host", "stop")

    def __init__(
        self, stages: Pipeline, config: ClientConfig, clock: Clock, states: StateMachine
    ) -> None:
        self._stages = stages
        self._config = config
        self._clock = clock
        self._states = states
        #: The task that hosts every background task (the facade's ``_host``).
        self.host: asyncio.Task[None] | None = None
        #: Set when closing: the host task then cancels its task group and ends.
        self.stop = asyncio.Event()
        # The task that stops, fails the leftovers, spools and closes (see close()).
        self._task: asyncio.Task[_Closed] | None = None

    async def close(self, *, drain: bool) -> list[Identify]:
        """``aclose()``: drain (when asked and the state allows), then stop and resolve
        everything; returns the undelivered operations, or raises the spool's error."""
        state = self._states.state
        if state in (_S.CLOSING, _S.CLOSED, _S.UNOPENED):
            return []
        # After a bug nothing can be sent; after a refused key the drain only fails the
        # rest with auth.
        drain = drain and state in (_S.OPEN, _S.AUTH_FAILED)
        self._states.enter(_S.CLOSING)
        try:
            if drain and self._stages.ledger.unresolved:
                await self._drain()
        finally:
            # Also when the owner task is cancelled while draining: stop, then resolve.
            undelivered, spool_error = await self._stop_and_fail_leftovers()
        if spool_error is not None:
            # Everything else is done (outcomes, on_undelivered, closed): say it loudly.
            raise spool_error
        return undelivered

    async def _drain(self) -> None:
        """Deliver what can be delivered within ``shutdown_timeout``."""
        sender, ledger = self._stages.sender, self._stages.ledger
        sender.draining = True
        sender.poke()
        timeout = self._config.shutdown_timeout
        give_up_at = self._clock.now() + timeout
        per_op = _CLOSE_COST + (_SPOOL_COST if self._config.spool_path else 0.0)
        with anyio.move_on_after(timeout) as scope:
            end = scope.deadline
            while ledger.unresolved and not sender.stalled(give_up_at):
                # Stop early enough to fail and spool what is left within the deadline
                # (a hundred thousand leftovers take a few tenths of a second).
                scope.deadline = end - min(timeout / 2, ledger.unresolved * per_op)
                sender.settled.clear()
                await self._clock.wait(sender.settled, self._stages.lanes.next_deadline())

    async def _stop_and_fail_leftovers(self) -> _Closed:
        """Stop every task, fail what is left with "shutdown", spool it, close. Returns
        the undelivered operations and the error that kept them from the spool, if any.

        The work runs in a task of its own, waited out: a closer cancelled any number of
        times (a supervisor retrying its cancel, ``wait_for`` timing out) still gets
        every receipt resolved, the spool written and the transport closed before its
        cancellation goes on."""
        if self._task is None:
            assert self.host is not None
            self._task = self.host.get_loop().create_task(
                self._close_down(), name="amplitude_async client close"
            )
        return await wait_out(self._task)

    async def _close_down(self) -> _Closed:
        host = self.host
        assert host is not None
        self.stop.set()
        undelivered: list[Identify] = []
        spool_error: OSError | None = None
        try:
            # No request is in flight once the host task has ended (its tasks are only
            # cancelled, so it ends at once).
            await asyncio.wait({host})
            failure = None if host.cancelled() else host.exception()
            if failure is not None:
                raise failure
        finally:
            # Also when a background task failed: every receipt still gets its outcome
            # and the transport is closed.
            leftovers = self._stages.leftovers
            undelivered = leftovers.fail()
            spool_error = await leftovers.spool(undelivered)
            await self._stages.transport.aclose()
            self._finish(undelivered, spooled=spool_error is None)
        return undelivered, spool_error

    async def orphan(self, client: str) -> None:
        """The loop is ending and nobody closed the client: say so (ResourceWarning),
        fail what is left with "shutdown" (its receipts and threads hear of it), spool
        it and close the transport, so that nothing waits for ever."""
        self._states.orphaned = True
        self._states.enter(_S.CLOSING)
        undelivered, spooled = self._stages.leftovers.orphaned(client)
        await self._stages.transport.aclose()
        self._finish(undelivered, spooled=spooled)

    def _finish(self, undelivered: list[Identify], *, spooled: bool) -> None:
        stages = self._stages
        self._states.enter(_S.CLOSED)
        stages.sync_outcomes()
        stages.telemetry.unwatch()
        stages.ledger.release_flush_waiters(force=True)
        stages.leftovers.hand_over(undelivered, spooled=spooled)


class Leftovers:
    """The operations still in the lanes once nothing runs any more."""

    __slots__ = ("_config", "_lanes", "_ledger")

    def __init__(self, config: ClientConfig, lanes: Lanes, ledger: Ledger) -> None:
        self._config = config
        self._lanes = lanes
        self._ledger = ledger

    def fail(self) -> list[Identify]:
        """Fail every operation still in a lane with reason shutdown; returns them, in
        per-identity order."""
        leftovers = self._lanes.drain_all()
        self._ledger.fail_all(leftovers, FailureReason.SHUTDOWN, _MESSAGE)
        return leftovers

    async def spool(self, undelivered: list[Identify]) -> OSError | None:
        """Append them to ``spool_path`` (in a worker thread); the error, if it failed."""
        path = self._config.spool_path
        if not undelivered or not path:
            return None
        try:
            await anyio.to_thread.run_sync(
                write_spool, path, undelivered, _maybe_applied(undelivered)
            )
        except OSError as exc:
            logger.error(
                "could not append %d undelivered operation(s) to the spool %s: %s",
                len(undelivered),
                path,
                exc,
                extra=fields("identify.spool_failed", count=len(undelivered), reason="shutdown"),
            )
            return exc
        return None

    def spool_now(self, undelivered: list[Identify]) -> bool:
        """Append them to the spool blocking (the loop is ending: a worker thread may
        not run); whether that worked."""
        path = self._config.spool_path
        if not undelivered or not path:
            return True
        try:
            write_spool(path, undelivered, _maybe_applied(undelivered))
        except OSError as exc:
            logger.error(
                "could not append to the spool %s: %s",
                path,
                exc,
                extra=fields("identify.spool_failed", count=len(undelivered), reason="shutdown"),
            )
            return False
        return True

    def orphaned(self, client: str) -> tuple[list[Identify], bool]:
        """The loop is ending with the client open: fail what is left, say so (a
        ResourceWarning naming ``client``), spool it at once. Returns the operations and
        whether the spool took them."""
        undelivered = self.fail()
        warnings.warn(
            f"{client} was not closed before its event loop ended: {len(undelivered)} "
            "operation(s) failed with reason shutdown. Use 'async with AmplitudeClient(...)' "
            "or await aclose() before the loop ends.",
            ResourceWarning,
            stacklevel=1,
        )
        # Blocking, on purpose: the loop is ending, a worker thread may not run.
        return undelivered, self.spool_now(undelivered)

    def hand_over(self, undelivered: list[Identify], *, spooled: bool) -> None:
        """Say what was not delivered (a warning) and give it to ``on_undelivered``."""
        if not undelivered:
            return
        path = self._config.spool_path
        where = f"; appended to {path}" if path and spooled else ""
        logger.warning(
            "closed with %d operation(s) undelivered (reason shutdown)%s",
            len(undelivered),
            where,
            extra=fields("identify.undelivered", count=len(undelivered), reason="shutdown"),
        )
        if self._config.on_undelivered is not None:
            self._config.on_undelivered(undelivered)


def _maybe_applied(ops: list[Identify]) -> list[bool]:
    """Per operation failed at shutdown: whether the server may have applied it (its
    request was in flight at the close, or ended ambiguously)."""
    return [isinstance(op.outcome, Failed) and op.outcome.maybe_applied for op in ops]
