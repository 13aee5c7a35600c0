"""What closing does with what is left: fail it with reason shutdown, spool it, hand it
over (``on_undelivered``, the log). The client decides when; this module does it."""

from __future__ import annotations

import logging
import warnings

import anyio

from ._config import ClientConfig
from ._identify import Identify
from ._lanes import Lanes
from ._ledger import Ledger
from ._logfields import fields
from ._outcome import Failed, FailureReason
from ._spool import write_spool

__all__ = ["Leftovers"]

logger = logging.getLogger("amplitude_async")

_MESSAGE = "the client closed before the operation was delivered"


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
