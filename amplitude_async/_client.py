"""``AmplitudeClient``: the facade of the batching identify client.

Data flow (docs/architecture.md)::

    identify() -> Intake -> Lanes (merge on arrival) -> Sender -> Batcher -> RequestHandler
        ^ backpressure           ^ ThrottleMap, RequestLimits                 |  -> transport
        |                                                                     v
        +------------- Ledger: exactly one Outcome per operation <------------+

The facade checks arguments, wires the stages together, and runs ONE explicit state
machine (:class:`_State`): a refused API key and a background task that died of a bug
are states, not flags. It owns the lifecycle: the task that hosts every background
task, the drain at close, and the spool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import logging
import threading
import warnings
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import anyio

from ._batcher import Batcher
from ._clock import Clock, SystemClock
from ._config import ClientConfig
from ._encode import BatchEncoder
from ._errors import ClientClosed, ClientNotStarted, ClientStateError, ConfigurationError
from ._identify import Identify
from ._intake import Intake
from ._lanes import Lanes
from ._ledger import Ledger
from ._limits import RequestLimits
from ._outcome import FailureReason, Outcome, Receipt
from ._request import RequestHandler
from ._scrub import Scrubber
from ._sender import Sender
from ._spool import write_spool
from ._stats import ClientStats
from ._throttle import ThrottleMap
from ._transport import AiohttpTransport, AsyncTransport
from ._uncancellable import wait_out

__all__ = ["AmplitudeClient"]

logger = logging.getLogger("amplitude_async")

SERVER_URLS: Final = {
    "US": "https://api2.amplitude.com/identify",
    "EU": "https://api.eu.amplitude.com/identify",
}


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    #: The server refused the API key: nothing more is sent; operations fail at once.
    AUTH_FAILED = "auth_failed"
    #: A background task died of a bug: intake is refused; aclose() fails what is left.
    FAILED = "failed"
    CLOSING = "closing"
    CLOSED = "closed"


_S = _State
#: Every transition the client may make; anything else is a bug.
_TRANSITIONS: Final = {
    _S.UNOPENED: {_S.OPEN, _S.CLOSED},
    _S.OPEN: {_S.AUTH_FAILED, _S.FAILED, _S.CLOSING},
    _S.AUTH_FAILED: {_S.FAILED, _S.CLOSING},
    _S.FAILED: {_S.CLOSING},
    _S.CLOSING: {_S.CLOSED},
    _S.CLOSED: set(),
}


class AmplitudeClient:
    """Batches identify operations into ``POST /identify`` requests and delivers them.

    >>> async with AmplitudeClient(api_key) as amp:
    ...     receipt = await amp.identify(Identify(user_id="user-1").set("plan", "pro"))
    ...     outcome = await receipt          # Delivered(...) or Failed(reason=...)
    """

    def __init__(
        self,
        api_key: str,
        *,
        server_zone: Literal["US", "EU"] = "US",
        server_url: str | None = None,
        config: ClientConfig | None = None,
        clock: Clock | None = None,
        transport: AsyncTransport | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigurationError("api_key must be a non-empty string")
        # Messages here must not echo the key.
        if any(c.isspace() for c in api_key):
            raise ConfigurationError(
                "api_key must not contain whitespace (a newline read from a file?)"
            )
        if not api_key.isascii() and not _utf8_encodable(api_key):
            raise ConfigurationError("api_key must be text UTF-8 can encode")
        if server_zone not in SERVER_URLS:
            raise ConfigurationError(f"server_zone must be 'US' or 'EU', got {server_zone!r}")
        url = server_url if server_url is not None else SERVER_URLS[server_zone]
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"server_url must be an http(s) URL, got {url!r}")
        if config is not None and not isinstance(config, ClientConfig):
            raise ConfigurationError(f"config must be a ClientConfig, got {type(config).__name__}")
        if transport is not None and not isinstance(transport, AsyncTransport):
            raise ConfigurationError(
                f"transport must be an AsyncTransport, got {type(transport).__name__}"
            )
        self._config = cfg = config or ClientConfig()
        self._url = url
        self._clock: Clock = clock or SystemClock()
        # Cuts the key, in any spelling an echo may use, out of every server text.
        scrub = Scrubber(api_key)
        self._transport: AsyncTransport = transport or AiohttpTransport(
            max_connections=cfg.max_in_flight, timeout=cfg.request_timeout, scrub=scrub
        )
        encoder = BatchEncoder(api_key, cfg.encoding)
        # The stages, each owning its state (docs/architecture.md).
        self._ledger = ledger = Ledger(cfg.on_outcome)
        self._throttle = ThrottleMap(cfg.throttle_map_max)
        limits = RequestLimits(cfg.batch_max_items, cfg.batch_max_bytes)
        self._lanes = lanes = Lanes(
            flush_interval=cfg.flush_interval,
            coalesce=cfg.coalesce,
            limits=limits,
            throttle=self._throttle,
        )
        handler = RequestHandler(
            config=cfg,
            clock=self._clock,
            transport=self._transport,
            url=url,
            host=parts.netloc,
            encoder=encoder,
            scrub=scrub,
            ledger=ledger,
            limits=limits,
            throttle=self._throttle,
            on_auth_failed=self._auth_failed,
        )
        self._sender = Sender(
            clock=self._clock,
            lanes=lanes,
            batcher=Batcher(lanes, limits, encoder, ledger),
            handler=handler,
            max_in_flight=cfg.max_in_flight,
            max_items=cfg.batch_max_items,
            flush_interval=cfg.flush_interval,
            on_retried=self._count_retried,
        )
        self._intake = Intake(cfg, self._clock.now, ledger, lanes, self._sender)
        self._state = _State.UNOPENED
        self._intake.refusal = self._state_error
        # The task that hosts every background task: the client's own, so that any task
        # may close the client, under any timeout.
        self._host_task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        # The task that stops, fails the leftovers, spools and closes (see aclose()).
        self._closer: asyncio.Task[tuple[list[Identify], OSError | None]] | None = None
        # Closed because the loop ended (asyncio.run returning) with the client open: the
        # reason CLOSED gives in its error.
        self._orphaned = False
        self._warned_closed_loop = False
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._intake.loop_error = self._loop_error

    # -- the state machine ------------------------------------------------------------

    def _enter(self, state: _State) -> None:
        if state not in _TRANSITIONS[self._state]:
            raise ClientStateError(
                f"the client cannot go from {self._state.value} to {state.value}"
            )
        self._state = state
        # Intake follows the state: open (also after an auth failure, where operations
        # fail at once) or refusing with the error this state gives.
        self._intake.refusal = None if state in (_S.OPEN, _S.AUTH_FAILED) else self._state_error
        self._intake.auth_failed = state is _S.AUTH_FAILED
        if state is not _S.OPEN and state is not _S.AUTH_FAILED:
            self._intake.fail_waiters(self._state_error())

    def _state_error(self) -> ClientStateError:
        if self._state is _S.UNOPENED:
            return ClientNotStarted(
                "the client is not open; use 'async with AmplitudeClient(...) as amp'"
            )
        if self._state is _S.FAILED:
            error = ClientClosed(
                "the client stopped: its background task failed (see the log); "
                "await aclose() to fail what is queued"
            )
            error.__cause__ = self._failure
            return error
        if self._orphaned:
            return ClientClosed(
                "the client's event loop ended before aclose() was called (what was queued "
                "failed with reason shutdown); open a new AmplitudeClient on this event loop"
            )
        return ClientClosed("the client is closed; operations are no longer accepted")

    def _check_loop(self) -> None:
        """Refuse a call from any loop but the client's own (its events, futures and
        transport belong to that loop: used from another one, a receipt never resolves)."""
        loop = self._loop
        if loop is not None and asyncio._get_running_loop() is not loop:
            raise self._loop_error()

    def _loop_error(self) -> ClientStateError:
        loop = self._loop
        if loop is not None and loop.is_closed():
            if not self._warned_closed_loop:
                self._warned_closed_loop = True
                warnings.warn(
                    f"{self!r} is used after its event loop was closed without aclose(); "
                    "its queued operations are lost",
                    ResourceWarning,
                    stacklevel=3,
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

    def _auth_failed(self, status: int | None) -> None:
        if self._sender.before_batch == self._fail_all_auth:
            return  # said once
        logger.error(
            "%s refused the API key (HTTP %s): failing every queued operation with "
            "reason auth and sending nothing more",
            urlsplit(self._url).netloc,
            status,
        )
        self._sender.before_batch = self._fail_all_auth
        if self._state is _S.OPEN:
            self._enter(_S.AUTH_FAILED)

    def _fail_all_auth(self) -> None:
        for op in self._lanes.drain_all():
            self._ledger.fail(op, FailureReason.AUTH, "the API key was not accepted")

    def _count_retried(self, count: int) -> None:
        self._ledger.counters.retried += count

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> AmplitudeClient:
        if self._state is not _S.UNOPENED:
            raise ClientStateError(
                f"an AmplitudeClient can be opened once; this one is {self._state.value}"
            )
        self._loop = self._intake.loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        started = asyncio.Event()
        self._host_task = self._loop.create_task(self._host(started), name="amplitude_async")
        try:
            await started.wait()
        except BaseException:
            # Cancelled while opening: nothing was queued; stop what was started.
            self._host_task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait({self._host_task})
                await self._transport.aclose()
            self._enter(_S.CLOSED)
            raise
        if self._failure is not None:  # failed before it started: never opened
            await self._transport.aclose()
            self._enter(_S.CLOSED)
            raise ClientStateError("the client could not start") from self._failure
        self._enter(_S.OPEN)
        return self

    async def _host(self, started: asyncio.Event) -> None:
        """Own the task group: the sender and the send tasks live in it until close."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._sender.run, tg, name="amplitude_async sender")
                started.set()
                await self._stop.wait()
                # Stop the sender and any request still in flight; their operations go
                # back to their lanes (see Sender._send) and are failed by the closer.
                tg.cancel_scope.cancel()
        except asyncio.CancelledError:
            if not self._stop.is_set() and self._state in (_S.OPEN, _S.AUTH_FAILED):
                # Cancelled from outside, not by aclose(): the loop is going away
                # (asyncio.run ending) with the client still open.
                await self._orphan()
            raise
        except BaseException as exc:
            # A bug in the pipeline: refuse intake and wake every waiter with the error
            # now (nothing would ever resolve their operations); aclose() fails what is
            # left with "shutdown" and raises this.
            self._failure = exc
            logger.error(
                "the client's background task failed; nothing more will be sent and "
                "aclose() will fail what is queued",
                exc_info=exc,
            )
            if self._state in (_S.OPEN, _S.AUTH_FAILED):
                self._enter(_S.FAILED)
            self._ledger.fail_flush_waiters(self._state_error())
            raise
        finally:
            started.set()

    async def _orphan(self) -> None:
        """The loop is ending and nobody closed the client: say so (ResourceWarning),
        fail what is left with "shutdown" (its receipts and threads hear of it), spool
        it and close the transport, so that nothing waits for ever."""
        self._orphaned = True
        self._enter(_S.CLOSING)
        undelivered = self._fail_leftovers()
        warnings.warn(
            f"{self!r} was not closed before its event loop ended: {len(undelivered)} "
            "operation(s) failed with reason shutdown. Use 'async with AmplitudeClient(...)' "
            "or await aclose() before the loop ends.",
            ResourceWarning,
            stacklevel=1,
        )
        spooled = True
        path = self._config.spool_path
        if undelivered and path:
            try:
                # Blocking, on purpose: the loop is ending, a worker thread may not run.
                write_spool(path, undelivered)
            except OSError as exc:
                spooled = False
                logger.error("could not append to the spool %s: %s", path, exc)
        await self._transport.aclose()
        self._finish_close(undelivered, spooled=spooled)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
            # Cancelled: no time to drain, but every receipt still gets its outcome.
            await self._shutdown(drain=False)
            return
        await self.aclose()

    async def aclose(self) -> list[Identify]:
        """Stop intake, deliver what can be delivered within ``shutdown_timeout``, and fail
        the rest with reason "shutdown". Returns the undelivered operations (also handed
        to ``on_undelivered`` and appended to ``spool_path`` when set). Closing twice is
        harmless. If the spool cannot be written, the :class:`OSError` is raised after
        everything else is done (outcomes, ``on_undelivered``, the transport closed)."""
        if self._state is _S.CLOSING or self._state is _S.CLOSED:
            return []  # closing twice is harmless, from any loop
        if self._state is _S.UNOPENED:
            self._enter(_S.CLOSED)
            return []
        self._check_loop()
        return await self._shutdown(drain=True)

    async def _shutdown(self, *, drain: bool) -> list[Identify]:
        if self._state in (_S.CLOSING, _S.CLOSED, _S.UNOPENED):
            return []
        # After a bug nothing can be sent; after a refused key the drain only fails the
        # rest with auth.
        drain = drain and self._state in (_S.OPEN, _S.AUTH_FAILED)
        self._enter(_S.CLOSING)
        try:
            if drain and self._ledger.unresolved:
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
        sender = self._sender
        sender.draining = True
        sender.poke()
        timeout = self._config.shutdown_timeout
        give_up_at = self._clock.now() + timeout
        with anyio.move_on_after(timeout):
            while self._ledger.unresolved and not sender.stalled(give_up_at):
                sender.settled.clear()
                await self._clock.wait(sender.settled, self._lanes.next_deadline())

    async def _stop_and_fail_leftovers(self) -> tuple[list[Identify], OSError | None]:
        """Stop every task, fail what is left with "shutdown", spool it, close. Returns
        the undelivered operations and the error that kept them from the spool, if any.

        The work runs in a task of its own, waited out: a closer cancelled any number of
        times (a supervisor retrying its cancel, ``wait_for`` timing out) still gets
        every receipt resolved, the spool written and the transport closed before its
        cancellation goes on."""
        if self._closer is None:
            assert self._loop is not None
            self._closer = self._loop.create_task(
                self._close_down(), name="amplitude_async client close"
            )
        return await wait_out(self._closer)

    async def _close_down(self) -> tuple[list[Identify], OSError | None]:
        assert self._host_task is not None
        self._stop.set()
        undelivered: list[Identify] = []
        spool_error: OSError | None = None
        try:
            # No request is in flight once the host task has ended (its tasks are only
            # cancelled, so it ends at once).
            await asyncio.wait({self._host_task})
            failure = None if self._host_task.cancelled() else self._host_task.exception()
            if failure is not None:
                raise failure
        finally:
            # Also when a background task failed: every receipt still gets its outcome
            # and the transport is closed.
            undelivered = self._fail_leftovers()
            path = self._config.spool_path
            if undelivered and path:
                try:
                    await anyio.to_thread.run_sync(write_spool, path, undelivered)
                except OSError as exc:
                    # Not written: still close and hand the operations over below.
                    spool_error = exc
                    logger.error(
                        "could not append %d undelivered operation(s) to the spool %s: %s",
                        len(undelivered),
                        path,
                        exc,
                    )
            await self._transport.aclose()
            self._finish_close(undelivered, spooled=spool_error is None)
        return undelivered, spool_error

    def _fail_leftovers(self) -> list[Identify]:
        leftovers = self._lanes.drain_all()
        message = "the client closed before the operation was delivered"
        for op in leftovers:
            self._ledger.fail(op, FailureReason.SHUTDOWN, message)
        return leftovers

    def _finish_close(self, undelivered: list[Identify], *, spooled: bool = True) -> None:
        self._enter(_S.CLOSED)
        self._ledger.release_flush_waiters(force=True)
        if undelivered:
            path = self._config.spool_path
            where = f"; appended to {path}" if path and spooled else ""
            logger.warning(
                "closed with %d operation(s) undelivered (reason shutdown)%s",
                len(undelivered),
                where,
            )
            if self._config.on_undelivered is not None:
                self._config.on_undelivered(undelivered)

    def __del__(self) -> None:
        if getattr(self, "_state", None) is _S.OPEN:
            warnings.warn(
                f"{self!r} was never closed: queued operations may be lost. "
                "Use 'async with AmplitudeClient(...)' or await aclose().",
                ResourceWarning,
                stacklevel=1,
            )

    # -- intake -------------------------------------------------------------------------

    def identify(self, op: Identify) -> Coroutine[Any, Any, Receipt]:
        """Queue one operation and return its receipt (the Identify itself); waits only
        for queue room, and gives the loop a turn when a batch is due. Await it:
        ``receipt = await amp.identify(op)``.

        Raises :class:`ValidationError` for bad input, :class:`ClientClosed` /
        :class:`ClientNotStarted` for a client that is not open, and :class:`QueueFull`
        when intake is full and ``on_full="raise"``.
        """
        # Intake's coroutine itself, not one wrapping it: one frame less per operation.
        return self._intake.submit(op)

    def identify_nowait(self, op: Identify) -> Receipt:
        """Queue one operation without waiting. When intake is full, ``on_full="drop"``
        drops it (a Failed receipt) and both "wait" and "raise" raise :class:`QueueFull`."""
        return self._intake.submit_nowait(op)

    def identify_threadsafe(
        self, op: Identify, timeout: float | None = None
    ) -> concurrent.futures.Future[Outcome]:
        """Queue one operation from another thread.

        Blocks the calling thread until the operation is queued (so backpressure reaches
        threads too), then returns a future of its outcome. Validation errors, a closed
        client and QueueFull are raised in the calling thread. When ``timeout`` seconds
        pass first, :class:`TimeoutError` is raised and the operation is not queued.
        """
        loop = self._loop
        if loop is None or self._state is _S.UNOPENED:
            raise ClientNotStarted("the client is not open; use 'async with AmplitudeClient(...)'")
        if threading.get_ident() == self._loop_thread:
            raise ClientStateError(
                "identify_threadsafe() was called on the event loop's own thread; "
                "use 'await identify()' or identify_nowait() there"
            )
        return self._intake.submit_threadsafe(op, timeout, loop)

    # -- flush and stats ----------------------------------------------------------------

    async def flush(self) -> None:
        """Send now, and return once every operation enqueued before the call has an
        outcome (delivered or failed)."""
        if self._state is _S.UNOPENED or self._state is _S.FAILED or self._orphaned:
            raise self._state_error()
        self._check_loop()
        waiter = self._ledger.flush_waiter()
        if waiter is None:
            return
        sender = self._sender
        sender.flushing += 1
        sender.poke()
        try:
            await asyncio.shield(waiter)
        finally:
            sender.flushing -= 1

    def stats(self) -> ClientStats:
        """A snapshot of the counters."""
        return self._ledger.counters.snapshot(
            in_flight=self._sender.in_flight,
            queued=self._ledger.unresolved,
            throttled_identities=len(self._throttle),
            identities=len(self._lanes),
            waiting=self._intake.waiting,
        )

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def closed(self) -> bool:
        return self._state is _S.CLOSED

    def __repr__(self) -> str:
        return (
            f"AmplitudeClient(server_url={self._url!r}, state={self._state.value!r}, "
            f"queued={self._ledger.unresolved}, in_flight={self._sender.in_flight})"
        )


def _utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
