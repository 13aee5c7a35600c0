"""Hand chunks from a blocking reader to the event loop, with bounded memory.

The reader runs in a daemon thread, not in anyio's worker pool: reading stdin can block
forever, and a worker thread blocked in ``read()`` would keep the process from exiting
after Ctrl-C. The stream between them holds a few chunks; when it is full the thread
waits, which is the backpressure from the client's queue back to the file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator
from typing import Final, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["ReadFailed", "pump"]

T = TypeVar("T")
_BUFFERED_CHUNKS: Final = 4


class ReadFailed(Exception):
    """Reading the source failed (an I/O or decoding error); ``__cause__`` says how."""


def pump(produce: Iterator[T]) -> MemoryObjectReceiveStream[T | ReadFailed]:
    """Start a daemon thread running ``produce``; its items arrive on the returned stream.

    A read error arrives as a :class:`ReadFailed` item, then the stream ends. Closing the
    returned stream stops the thread at its next item.
    """
    send, receive = anyio.create_memory_object_stream[T | ReadFailed](_BUFFERED_CHUNKS)
    loop = asyncio.get_running_loop()
    thread = threading.Thread(
        target=_run, args=(produce, send, loop), name="amplitude-async reader", daemon=True
    )
    thread.start()
    return receive


def _run(
    produce: Iterator[T],
    send: MemoryObjectSendStream[T | ReadFailed],
    loop: asyncio.AbstractEventLoop,
) -> None:
    def deliver(item: T | ReadFailed) -> None:
        asyncio.run_coroutine_threadsafe(send.send(item), loop).result()

    try:
        try:
            for item in produce:
                deliver(item)
        except Exception as exc:  # noqa: BLE001 - handed to the event loop, which reports it
            failure = ReadFailed(f"{type(exc).__name__}: {exc}")
            failure.__cause__ = exc
            deliver(failure)
        finally:
            loop.call_soon_threadsafe(send.close)
    except (
        anyio.BrokenResourceError,
        anyio.ClosedResourceError,
        concurrent.futures.CancelledError,
        RuntimeError,  # the event loop is closed: nobody is listening any more
    ):
        return
