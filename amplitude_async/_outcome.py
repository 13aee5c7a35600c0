"""Outcomes and receipts: every identify operation ends in exactly one of these.

A :class:`Receipt` is returned by ``identify()``. It is awaitable (``outcome = await
receipt``) and resolves exactly once, to :class:`Delivered` or :class:`Failed`. The
future behind it is created only if somebody awaits before the outcome is known, so
fire-and-forget callers pay for no future at all. :meth:`Receipt.add_done_callback`
runs a function with the outcome, for code that reacts to completions without a task
per operation (the Kafka worker commits offsets this way).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Final

from ._identify import Identify

__all__ = ["Delivered", "Failed", "FailureReason", "Outcome", "Receipt"]


class FailureReason(enum.StrEnum):
    """Why an operation was not delivered. Each is final: nothing retries it later."""

    #: The server rejected this identification (HTTP 400, narrowed by bisecting).
    INVALID = "invalid"
    #: The API key was not accepted; the client stops sending.
    AUTH = "auth"
    #: The user or device exceeded Amplitude's daily quota.
    QUOTA = "quota"
    #: The identification alone is larger than one request may be.
    TOO_LARGE = "too_large"
    #: Network errors, timeouts or 5xx answers went on past the retry deadline.
    RETRIES_EXHAUSTED = "retries_exhausted"
    #: The client closed before the operation could be delivered (see ``on_undelivered``).
    SHUTDOWN = "shutdown"
    #: Intake was full and the policy is ``on_full="drop"``.
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class Delivered:
    """The server accepted the identification that carried this operation."""

    status: int
    #: How many requests carried it (more than one after retries or holds).
    attempts: int
    #: True when an earlier attempt ended ambiguously (a 500/502/504, a timeout or a
    #: broken connection after sending), so the server may have applied it twice.
    possible_duplicate: bool = False

    ok: bool = True


@dataclass(frozen=True, slots=True)
class Failed:
    """The operation will not be delivered; ``reason`` says why."""

    reason: FailureReason
    message: str
    status: int | None = None
    #: How many requests carried it (0: it was never sent).
    attempts: int = 0
    #: True when one of those requests ended without a clear answer (a 500/502/504, a
    #: timeout, a broken connection, or a request in flight when the client closed):
    #: the server may have applied it although it failed here. Re-sending it (from the
    #: spool, say) may then apply it twice, which matters for ``$add`` and lists.
    maybe_applied: bool = False

    ok: bool = False


Outcome = Delivered | Failed

_PENDING: Final[Any] = None

logger = logging.getLogger("amplitude_async")


class Receipt:
    """The handle of one queued operation; ``await receipt`` gives its :data:`Outcome`."""

    __slots__ = (
        "_ambiguous",
        "_callbacks",
        "_waiter",
        "attempts",
        "first_sent_at",
        "gen",
        "op",
        "outcome",
    )

    op: Identify
    #: The outcome once known, else None.
    outcome: Outcome | None

    def __init__(self, op: Identify, gen: int = 0) -> None:
        self.op = op
        #: The flush generation it was enqueued in (flush() waits per generation).
        self.gen = gen
        self.outcome = _PENDING
        self._waiter: asyncio.Future[Outcome] | None = None
        self.first_sent_at: float | None = None
        self.attempts = 0
        self._ambiguous = False
        self._callbacks: list[Callable[[Outcome], object]] | None = None

    def done(self) -> bool:
        """True once the outcome is known."""
        return self.outcome is not None

    def __await__(self) -> Generator[Any, None, Outcome]:
        if self.outcome is None:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            return (yield from asyncio.shield(self._waiter).__await__())
        return self.outcome

    def _resolve(self, outcome: Outcome) -> None:
        """Set the outcome. The pipeline calls this exactly once per receipt."""
        if self.outcome is not None:
            raise RuntimeError(f"receipt resolved twice: {self.outcome!r} then {outcome!r}")
        self.outcome = outcome
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(outcome)
        callbacks = self._callbacks
        if callbacks is not None:
            self._callbacks = None
            for callback in callbacks:
                _call(callback, outcome)

    def add_done_callback(self, fn: Callable[[Outcome], object]) -> None:
        """Call ``fn(outcome)`` once, when the outcome is known (right away if it is).

        ``fn`` runs synchronously inside the resolution, on the event loop's thread, also
        while the client is closing: keep it quick and do not await from it. Callbacks
        run in the order they were added. An exception from ``fn`` is logged (logger
        ``amplitude_async``) and does not reach the pipeline or the other callbacks.
        """
        self._on_outcome(fn)

    def _on_outcome(self, callback: Callable[[Outcome], object]) -> None:
        """Call ``callback(outcome)`` when the outcome is known (at once if it is).

        Called synchronously from the resolution, so it also runs when the client's
        tasks are being cancelled at shutdown; keep it quick and non-raising.
        """
        if self.outcome is not None:
            _call(callback, self.outcome)
        elif self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)

    def __repr__(self) -> str:
        state = "pending" if self.outcome is None else repr(self.outcome)
        return f"<Receipt {self.op!r}: {state}>"


def _call(callback: Callable[[Outcome], object], outcome: Outcome) -> None:
    try:
        callback(outcome)
    except Exception:  # a callback's bug must not cost other operations their outcome
        logger.exception("a receipt's done callback raised; the outcome stands")
