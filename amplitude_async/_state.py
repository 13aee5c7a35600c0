"""The client's one state machine, and the guard of the event loop it belongs to.

States: ``unopened → open → closing → closed``, and two an open client can fall into:
``auth_failed`` (the server refused the API key: nothing more is sent; operations are
accepted and fail at once with reason auth) and ``failed`` (a background task died of a
bug: intake and ``flush()`` raise ``ClientClosed`` with the bug as its cause). Every
transition is checked against :data:`TRANSITIONS`; each refusing state has its error.
"""

from __future__ import annotations

import asyncio
import enum
import warnings
from asyncio.events import _get_running_loop
from collections.abc import Callable
from typing import Final

from ._errors import ClientClosed, ClientNotStarted, ClientStateError

__all__ = ["TRANSITIONS", "LoopGuard", "State", "StateMachine"]


class State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    #: The server refused the API key: nothing more is sent; operations fail at once.
    AUTH_FAILED = "auth_failed"
    #: A background task died of a bug: intake is refused; aclose() fails what is left.
    FAILED = "failed"
    CLOSING = "closing"
    CLOSED = "closed"


_S = State
#: Every transition the client may make; anything else is a bug.
TRANSITIONS: Final = {
    _S.UNOPENED: {_S.OPEN, _S.CLOSED},
    _S.OPEN: {_S.AUTH_FAILED, _S.FAILED, _S.CLOSING},
    _S.AUTH_FAILED: {_S.FAILED, _S.CLOSING},
    _S.FAILED: {_S.CLOSING},
    _S.CLOSING: {_S.CLOSED},
    _S.CLOSED: set(),
}


class StateMachine:
    """The state, why it is what it is (the bug, an ended loop), and its error."""

    __slots__ = ("_on_change", "failure", "orphaned", "state")

    def __init__(self, on_change: Callable[[State], None]) -> None:
        self.state = _S.UNOPENED
        #: The bug a background task died of (state FAILED).
        self.failure: BaseException | None = None
        #: Closed because the event loop ended with the client open.
        self.orphaned = False
        self._on_change = on_change

    @property
    def accepting(self) -> bool:
        """Intake takes operations (after an auth failure too: they fail at once)."""
        return self.state is _S.OPEN or self.state is _S.AUTH_FAILED

    def enter(self, state: State) -> None:
        if state not in TRANSITIONS[self.state]:
            raise ClientStateError(f"the client cannot go from {self.state.value} to {state.value}")
        self.state = state
        self._on_change(state)

    def error(self) -> ClientStateError:
        """Why this state refuses operations."""
        if self.state is _S.UNOPENED:
            return ClientNotStarted(
                "the client is not open; use 'async with AmplitudeClient(...) as amp'"
            )
        if self.state is _S.FAILED:
            error = ClientClosed(
                "the client stopped: its background task failed (see the log); "
                "await aclose() to fail what is queued"
            )
            error.__cause__ = self.failure
            return error
        if self.orphaned:
            return ClientClosed(
                "the client's event loop ended before aclose() was called (what was queued "
                "failed with reason shutdown); open a new AmplitudeClient on this event loop"
            )
        return ClientClosed("the client is closed; operations are no longer accepted")


class LoopGuard:
    """The loop a client was opened on: its events, futures and transport belong to it,
    so a call from any other loop is refused (used there, a receipt never resolves)."""

    __slots__ = ("_describe", "_warned", "loop")

    def __init__(self, describe: Callable[[], str]) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._describe = describe
        self._warned = False

    def check(self) -> None:
        loop = self.loop
        if loop is not None and _get_running_loop() is not loop:
            raise self.error()

    def error(self) -> ClientStateError:
        loop = self.loop
        if loop is not None and loop.is_closed():
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"{self._describe()} is used after its event loop was closed without "
                    "aclose(); its queued operations are lost",
                    ResourceWarning,
                    stacklevel=4,
                )
            return ClientClosed(
                "the event loop this client was opened on is closed (and aclose() was never "
                "called); open a new AmplitudeClient on this event loop"
            )
        return ClientStateError(
            "this AmplitudeClient belongs to the event loop it was opened on, not this one "
            "(or this thread has none); use it on that loop, or from another thread call "
            "identify_threadsafe()"
        )
