"""``amplitude_async.sync.Client``: the identify client for code without an event loop.

Django views, Flask handlers, Celery tasks and scripts call plain functions; this facade
runs an :class:`AmplitudeClient` on an event loop of its own, in one background (daemon)
thread, and talks to it only through the client's public, thread-safe API
(``identify_threadsafe``, ``flush``, ``aclose``, ``stats``).

- The thread starts on first use, not at construction: a client made at import time in
  a pre-forking server's master costs nothing until a worker uses it.
- ``identify()`` returns once the operation is queued (it waits only for queue room,
  like ``await identify()``), with a :class:`concurrent.futures.Future` of its outcome.
- ``flush()``, ``close()`` and ``with`` block the calling thread; ``close()`` delivers
  what it can within ``shutdown_timeout`` and returns what it could not.
- At interpreter exit every client still open is closed (so a short script loses
  nothing); after ``os.fork()`` the child's clients forget the parent's thread, and the
  child's first call starts a fresh client of its own. What the parent had queued stays
  the parent's to deliver.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures

# Imported for its exit hook, which must be registered before ours (see the end).
import concurrent.futures.thread
import contextlib
import functools
import logging
import os
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from ._client import AmplitudeClient
from ._config import ClientConfig
from ._errors import ClientClosed, ClientStateError, ConfigurationError
from ._identify import Identify
from ._logfields import fields
from ._outcome import Outcome
from ._stats import ClientStats

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["Client"]

logger = logging.getLogger("amplitude_async.sync")

T = TypeVar("T")
# Past shutdown_timeout, what close() at exit allows for stopping the thread itself.
_EXIT_GRACE = 5.0


class _Runner:
    """One background thread, its event loop, and the AmplitudeClient open on it."""

    def __init__(self, client: AmplitudeClient, start_timeout: float) -> None:
        self.client = client
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._opened = threading.Event()
        self._error: BaseException | None = None
        self._result: concurrent.futures.Future[list[Identify]] = concurrent.futures.Future()
        self.thread = threading.Thread(target=self._main, name="amplitude-async sync", daemon=True)
        self.thread.start()
        if not self._opened.wait(start_timeout):
            raise ClientStateError(f"the background client did not start in {start_timeout} s")
        if self._error is not None:
            raise ClientStateError("the background client could not start") from self._error

    def _main(self) -> None:
        try:
            undelivered = asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - handed to close() and the opener
            self._error = exc
            self._result.set_exception(exc)
        else:
            self._result.set_result(undelivered)
        finally:
            self._opened.set()

    async def _serve(self) -> list[Identify]:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.client:
            self._opened.set()
            await self._stop.wait()
            return await self.client.aclose()

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.thread.ident

    def call(self, make: Callable[[], Any], timeout: float | None) -> Any:
        """Run ``make()`` (a coroutine) on the loop; wait ``timeout`` for its result."""
        loop = self.loop
        if loop is None or not self.thread.is_alive():
            raise ClientClosed("the background client has stopped")
        future = asyncio.run_coroutine_threadsafe(make(), loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self, timeout: float | None) -> list[Identify]:
        if self.loop is not None and self._stop is not None and self.thread.is_alive():
            # The loop may be closing on its own (it failed): then it is already stopping.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._stop.set)
        undelivered = self._result.result(timeout)
        self.thread.join(timeout)
        return undelivered


async def _now(function: Callable[[], T]) -> T:
    return function()


class Client:
    """A blocking facade over :class:`AmplitudeClient` (see the module docstring).

    >>> with Client(api_key) as amp:
    ...     future = amp.identify(Identify(user_id="user-1").set("plan", "pro"))
    ...     future.result(timeout=10)      # Delivered(...) or Failed(...), if you wait

    The arguments are those of :class:`AmplitudeClient` (a caller's ``session`` belongs to
    one event loop, so it is not one of them); they are checked here, in the caller's
    thread. ``start_timeout`` bounds starting the background thread and its client.
    """

    def __init__(
        self,
        api_key: str,
        *,
        server_zone: Literal["US", "EU"] = "US",
        server_url: str | None = None,
        config: ClientConfig | None = None,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        if (
            isinstance(start_timeout, bool)
            or not isinstance(start_timeout, int | float)
            or not start_timeout > 0
        ):
            raise ConfigurationError(
                f"start_timeout must be a positive number of seconds, got {start_timeout!r}"
            )

        def factory() -> AmplitudeClient:
            # A closure, not functools.partial: a partial's repr would show the key.
            return AmplitudeClient(
                api_key,
                server_zone=server_zone,
                server_url=server_url,
                config=config,
                meter_provider=meter_provider,
                tracer_provider=tracer_provider,
            )

        self._factory = factory
        # Built now so that bad arguments raise in the caller's thread; opened on first use.
        self._unopened: AmplitudeClient | None = self._factory()
        self._config = self._unopened.config
        self._start_timeout = float(start_timeout)
        self._lock = threading.Lock()
        self._runner: _Runner | None = None
        self._closed = False
        _open_clients.add(self)

    # -- the background client ---------------------------------------------------------

    def _running(self) -> _Runner:
        with self._lock:
            if self._closed:
                raise ClientClosed("this sync Client is closed")
            if self._runner is None:
                client = self._unopened if self._unopened is not None else self._factory()
                self._unopened = None
                self._runner = _Runner(client, self._start_timeout)
            return self._runner

    def _after_fork_in_child(self) -> None:
        # The parent's thread does not exist here, and its lock may have been held by
        # one of the parent's threads at the fork: start over, lazily.
        self._lock = threading.Lock()
        self._runner = None
        self._unopened = None

    # -- the API -------------------------------------------------------------------------

    def identify(
        self, op: Identify, timeout: float | None = None
    ) -> concurrent.futures.Future[Outcome]:
        """Queue one operation; return a future of its outcome.

        Blocks only while the queue is full (``on_full="wait"``), at most ``timeout``
        seconds (then :class:`TimeoutError`, and the operation is not queued). Raises
        :class:`ValidationError` for bad input and :class:`QueueFull` as the async
        client does.
        """
        return self._running().client.identify_threadsafe(op, timeout)

    def flush(self, timeout: float | None = None) -> None:
        """Send now; return once every operation queued before the call has an outcome.
        :class:`TimeoutError` after ``timeout`` seconds (the operations stay queued)."""
        runner = self._runner_if_started()
        if runner is None:
            return
        self._refuse_on_loop_thread(runner, "flush")
        runner.call(runner.client.flush, timeout)

    def close(self, timeout: float | None = None) -> list[Identify]:
        """Stop intake, deliver what can be delivered within ``shutdown_timeout``, stop the
        thread, and return the operations not delivered. Closing twice is harmless."""
        with self._lock:
            if self._closed:
                return []
            runner = self._runner
            if runner is not None:
                self._refuse_on_loop_thread(runner, "close")
            self._closed = True
            self._runner = self._unopened = None
        _open_clients.discard(self)
        if runner is None:
            return []
        return runner.stop(timeout)

    def stats(self) -> ClientStats:
        """A snapshot of the counters, taken on the client's own thread."""
        runner = self._runner_if_started()
        if runner is None:
            unopened = self._unopened
            return (unopened if unopened is not None else self._factory()).stats()
        stats: ClientStats = runner.call(functools.partial(_now, runner.client.stats), None)
        return stats

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self._runner else "not started"
        return f"sync.Client(state={state!r})"

    def _runner_if_started(self) -> _Runner | None:
        with self._lock:
            if self._closed:
                raise ClientClosed("this sync Client is closed")
            return self._runner

    @staticmethod
    def _refuse_on_loop_thread(runner: _Runner, what: str) -> None:
        if runner.on_loop_thread():
            # Waiting on the loop from the loop's own thread (an on_outcome callback)
            # would wait forever.
            raise ClientStateError(f"{what}() was called on the client's own thread")


# Every Client not yet closed; weak, so an abandoned client is not kept alive by this.
_open_clients: weakref.WeakSet[Client] = weakref.WeakSet()


def _close_at_exit() -> None:
    """Deliver what short-lived programs queued: close every client still open."""
    for client in list(_open_clients):
        try:
            client.close(timeout=client.config.shutdown_timeout + _EXIT_GRACE)
        except (OSError, TimeoutError, ClientStateError) as exc:
            # The outcomes were already resolved (failed "shutdown"); say why close failed.
            logger.error(
                "sync Client: closing at exit failed: %s",
                exc,
                extra=fields("sync.exit_close_failed"),
            )


def _after_fork_in_child() -> None:
    for client in list(_open_clients):
        client._after_fork_in_child()


# Closing needs worker threads (aiohttp resolves host names in the loop's executor, the
# spool is written in one), and at atexit time the interpreter no longer starts them.
# threading's own exit hooks run earlier, before non-daemon threads are joined; it is
# how concurrent.futures shuts its pools down (imported first: hooks run last-in,
# first-out, so this one runs before the pools refuse work).
_register_early_exit = getattr(threading, "_register_atexit", None)
if _register_early_exit is not None:
    _register_early_exit(_close_at_exit)
else:  # pragma: no cover - every CPython this package supports has it
    atexit.register(_close_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
