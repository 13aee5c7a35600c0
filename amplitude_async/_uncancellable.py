"""Wait for a task to finish whatever happens to the waiter.

``anyio.CancelScope(shield=True)`` only shields from anyio's own scopes: a plain asyncio
``task.cancel()`` (``asyncio.wait_for``, a supervisor) still lands inside it. Shutdown
work that must finish (fail every leftover, write the spool, close the session) runs in
a task of its own, and the closer waits for it with :func:`wait_out`.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

__all__ = ["wait_out"]

T = TypeVar("T")


async def wait_out(task: asyncio.Task[T]) -> T:
    """The result of ``task``, which runs to its end however often the caller is
    cancelled meanwhile; the caller's cancellation is raised once it has ended."""
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True  # noted, and raised below: never swallowed
    if cancelled:
        if not task.cancelled():
            # Retrieved, so asyncio does not report it as lost; the task logged it.
            task.exception()
        raise asyncio.CancelledError
    return task.result()
