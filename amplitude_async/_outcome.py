"""Outcomes and receipts: every identify operation ends in exactly one of these.

A :class:`Receipt` is returned by ``identify()``: the :class:`~amplitude_async.Identify`
itself, which derives from it. It is awaitable (``outcome = await receipt``) and
resolves exactly once, to :class:`Delivered` or :class:`Failed`. The future behind it is
created only if somebody awaits before the outcome is known, so fire-and-forget callers
pay for no future at all.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from mypy_extensions import mypyc_attr

if TYPE_CHECKING:
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

logger = logging.getLogger("amplitude_async")

#: Receipt._flags bits.
FROZEN: Final = 1
AMBIGUOUS: Final = 2


@mypyc_attr(acyclic=True)
class Receipt:
    """The handle of one queued operation; ``await receipt`` gives its :data:`Outcome`.

    Every :class:`~amplitude_async.Identify` is its own receipt (Identify derives from
    this class): ``identify()`` returns the operation it was given, so a queued operation
    is one object, not an operation plus a handle. The future behind ``await`` is created
    only if somebody awaits before the outcome is known.
    """

    __slots__ = ("_flags", "_listeners", "attempts", "first_sent_at", "gen", "outcome")

    #: The outcome once known, else None.
    outcome: Outcome | None

    def __init__(self) -> None:
        self.outcome = None
        #: A future (someone awaits), a list of callbacks, or None.
        self._listeners: object = None
        #: How many requests carried it.
        self.attempts = 0
        #: When its first request left (the retry deadline counts from it).
        self.first_sent_at: float | None = None
        #: The flush generation it was enqueued in (flush() waits per generation).
        self.gen = 0
        self._flags = 0

    @property
    def op(self) -> Identify:
        """The operation this receipt is for (the Identify itself)."""
        raise NotImplementedError

    @property
    def _ambiguous(self) -> bool:
        """A request that carried it ended without a clear answer."""
        return bool(self._flags & AMBIGUOUS)

    def done(self) -> bool:
        """True once the outcome is known."""
        return self.outcome is not None

    def __await__(self) -> Generator[Any, None, Outcome]:
        outcome = self.outcome
        if outcome is not None:
            return outcome
        listeners = self._listeners
        if isinstance(listeners, asyncio.Future):
            waiter: asyncio.Future[Outcome] = listeners
        else:
            waiter = asyncio.get_running_loop().create_future()
            if listeners is not None:
                # Callbacks were registered first: the future joins them.
                callbacks: list[Callable[[Outcome], object]] = listeners  # type: ignore[assignment]
                callbacks.append(_setter(waiter))
            else:
                self._listeners = waiter
        return (yield from asyncio.shield(waiter).__await__())

    def add_done_callback(self, fn: Callable[[Outcome], object]) -> None:
        """Call ``fn(outcome)`` once, when the outcome is known (at once if it is).

        It runs synchronously inside the resolution (also while the client's tasks are
        being cancelled at shutdown), so keep it quick. An exception it raises is logged
        and never reaches the pipeline.
        """
        outcome = self.outcome
        if outcome is not None:
            _call(fn, outcome)
            return
        listeners = self._listeners
        if listeners is None:
            self._listeners = [fn]
        elif isinstance(listeners, list):
            listeners.append(fn)
        else:
            # Someone awaits already: keep the future as the first listener.
            self._listeners = [_setter(listeners), fn]  # type: ignore[arg-type]

    def _on_outcome(self, callback: Callable[[Outcome], object]) -> None:
        """The pipeline's name for :meth:`add_done_callback`."""
        self.add_done_callback(callback)

    def _resolve(self, outcome: Outcome) -> None:
        """Set the outcome. The pipeline calls this exactly once per operation."""
        if self.outcome is not None:
            raise RuntimeError(f"receipt resolved twice: {self.outcome!r} then {outcome!r}")
        self.outcome = outcome
        listeners = self._listeners
        if listeners is not None:
            self._listeners = None
            if isinstance(listeners, list):
                for fn in listeners:
                    _call(fn, outcome)
            else:
                waiter: asyncio.Future[Outcome] = listeners  # type: ignore[assignment]
                if not waiter.done():
                    waiter.set_result(outcome)


def _setter(waiter: asyncio.Future[Outcome]) -> Callable[[Outcome], object]:
    def set_result(outcome: Outcome) -> None:
        if not waiter.done():
            waiter.set_result(outcome)

    return set_result


def _call(fn: Callable[[Outcome], object], outcome: Outcome) -> None:
    try:
        fn(outcome)
    except Exception:  # a callback's bug must not lose other outcomes; the outcome stands
        logger.exception("a receipt's done callback raised; the outcome stands")
