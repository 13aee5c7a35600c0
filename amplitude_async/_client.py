"""``AmplitudeClient``: the batching identify client.

Data flow (DESIGN section 2)::

    identify() -> Accumulator lanes -> sender loop -> send tasks (<= max_in_flight)
        ^ backpressure                      ^ throttle map, backoff        |
        |                                   +---- Verdict (classify) <-----+
        +-- Receipt resolves to exactly one Outcome

One owner for every background task: an anyio task group entered by ``__aenter__``.
The sender loop is the only place batches are taken; send tasks only report back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import functools
import logging
import threading
import warnings
from collections import Counter, deque
from collections.abc import Iterable
from types import TracebackType
from typing import Final, Literal
from urllib.parse import urlsplit

import anyio
import anyio.abc

from ._accumulator import Accumulator, Batch
from ._backoff import backoff_delay
from ._clock import Clock, SystemClock
from ._coalesce import Group
from ._config import ClientConfig
from ._encode import BatchEncoder, form_escape
from ._errors import (
    ClientClosed,
    ClientNotStarted,
    ClientStateError,
    ConfigurationError,
    QueueFull,
    TransportError,
    ValidationError,
)
from ._identify import Identify
from ._outcome import Delivered, Failed, FailureReason, Outcome, Receipt
from ._response import Verdict, VerdictKind, classify, classify_transport_error
from ._rules import id_problem
from ._spool import write_spool
from ._stats import ClientStats, Counters
from ._transport import AiohttpTransport, AsyncTransport, HttpRequest

__all__ = ["AmplitudeClient"]

logger = logging.getLogger("amplitude_async")

SERVER_URLS: Final = {
    "US": "https://api2.amplitude.com/identify",
    "EU": "https://api.eu.amplitude.com/identify",
}
# How many identities a log line names before it says "and N more".
_LOG_NAMES: Final = 5


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    #: A background task died of a bug: intake is refused; aclose() fails what is left.
    FAILED = "failed"


class _Attempt:
    """What one batch's requests decided, across the sub-requests of a split."""

    __slots__ = ("blocked", "not_before")

    def __init__(self) -> None:
        #: Lanes with an operation that goes back: their later operations must too.
        self.blocked: set[str] = set()
        #: Retry backoff for what goes back, if any.
        self.not_before: float | None = None


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
        self._host = parts.netloc
        self._clock: Clock = clock or SystemClock()
        self._now = self._clock.now
        self._encoder = BatchEncoder(api_key, cfg.encoding)
        # The key as it may come back in an echoed body: raw (JSON, multipart) and
        # form-escaped. Longest first, so a longer form is cut out whole.
        escaped = form_escape(api_key.encode("utf-8")).decode("ascii")
        self._secrets = tuple(sorted({api_key, escaped}, key=len, reverse=True))
        self._acc = Accumulator(
            self._encoder,
            max_items=cfg.batch_max_items,
            max_bytes=cfg.batch_max_bytes,
            flush_interval=cfg.flush_interval,
            coalesce=cfg.coalesce,
            throttle_map_max=cfg.throttle_map_max,
        )
        # Read for every operation: kept here rather than looked up in the config.
        self._queue_max = cfg.queue_max
        self._max_in_flight = cfg.max_in_flight
        self._min_id_length = cfg.min_id_length
        self._state = _State.UNOPENED
        self._counters = Counters()
        self._unresolved = 0
        self._in_flight = 0
        self._auth_failed = False
        self._draining = False
        self._flushing = 0
        # flush() bookkeeping: operations without an outcome, per generation. The
        # current generation counts in a plain int (the hot path); a flush closes it
        # into _gen_open and starts the next.
        self._gen = 0
        self._open_now = 0
        self._gen_open: dict[int, int] = {}
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._space_waiters: deque[asyncio.Future[None]] = deque()
        self._sleep_until: float | None = None
        self._wake: asyncio.Event | None = None
        self._settled: asyncio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        # The task that owns the task group (and so every background task): the client's
        # own, so that any task may close the client, under any timeout.
        self._host_task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._transport: AsyncTransport = transport or AiohttpTransport(
            max_connections=cfg.max_in_flight, timeout=cfg.request_timeout
        )
        self._headers = {"Content-Type": self._encoder.content_type}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._on_outcome = cfg.on_outcome

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> AmplitudeClient:
        if self._state is not _State.UNOPENED:
            raise ClientStateError(
                f"an AmplitudeClient can be opened once; this one is {self._state.value}"
            )
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._stop = asyncio.Event()
        started = asyncio.Event()
        self._host_task = self._loop.create_task(
            self._run_host(started), name="amplitude_async client"
        )
        try:
            await started.wait()
        except BaseException:
            # Cancelled while opening: nothing was queued; stop what was started.
            self._host_task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait({self._host_task})
                await self._transport.aclose()
            self._state = _State.CLOSED
            raise
        if self._failure is not None:  # failed before it started: never opened
            await self._transport.aclose()
            self._state = _State.CLOSED
            raise ClientStateError("the client could not start") from self._failure
        self._state = _State.OPEN
        return self

    async def _run_host(self, started: asyncio.Event) -> None:
        """Own the task group: the sender and the send tasks live in it until close."""
        assert self._stop is not None
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._run_sender, name="amplitude_async sender")
                started.set()
                await self._stop.wait()
                # Stop the sender and any request still in flight; their operations go
                # back to their lanes (see _send_batch) and are failed by the closer.
                tg.cancel_scope.cancel()
        except asyncio.CancelledError:
            raise  # the loop is going away (asyncio.run ending): nothing to report
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
            if self._state is _State.OPEN:
                self._state = _State.FAILED
            self._wake_space_waiters()
            error = self._state_error()
            for _, waiter in self._flush_waiters:
                if not waiter.done():
                    waiter.set_exception(error)
            self._flush_waiters = []
            raise
        finally:
            started.set()

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
        everything else is done (outcomes, ``on_undelivered``, the session closed)."""
        if self._state in (_State.CLOSING, _State.CLOSED):
            return []
        if self._state is _State.UNOPENED:
            self._state = _State.CLOSED
            return []
        return await self._shutdown(drain=True)

    async def _shutdown(self, *, drain: bool) -> list[Identify]:
        if self._state is _State.FAILED:
            drain = False  # nothing can be sent any more
        elif self._state is not _State.OPEN:
            return []
        self._state = _State.CLOSING
        self._wake_space_waiters()
        try:
            if drain and self._unresolved:
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
        self._draining = True
        self._poke()
        give_up_at = self._clock.now() + self._config.shutdown_timeout
        with anyio.move_on_after(self._config.shutdown_timeout):
            while self._unresolved and not self._drain_stalled(give_up_at):
                assert self._settled is not None
                self._settled.clear()
                await self._clock.wait(self._settled, self._acc.next_deadline())

    async def _stop_and_fail_leftovers(self) -> tuple[list[Identify], OSError | None]:
        """Stop every task, fail what is left with "shutdown", spool it, close. Returns
        the undelivered operations and the error that kept them from the spool, if any."""
        assert self._host_task is not None and self._stop is not None
        self._stop.set()
        undelivered: list[Identify] = []
        spool_error: OSError | None = None
        try:
            # Shielded: a cancelled closer still waits for the tasks to stop (at once:
            # they are only cancelled), so that no request is in flight below.
            with anyio.CancelScope(shield=True):
                await asyncio.wait({self._host_task})
            failure = None if self._host_task.cancelled() else self._host_task.exception()
            if failure is not None:
                raise failure
        finally:
            # Also when a background task failed: every receipt still gets its outcome
            # and the session is closed.
            with anyio.CancelScope(shield=True):
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

    def _finish_close(self, undelivered: list[Identify], *, spooled: bool = True) -> None:
        self._state = _State.CLOSED
        self._release_flush_waiters(force=True)
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

    def _drain_stalled(self, give_up_at: float) -> bool:
        """Nothing in flight, and nothing can be sent before the shutdown deadline (only
        holds that end later are left): waiting longer cannot deliver anything."""
        if self._in_flight or self._acc.has_sendable():
            return False
        next_release = self._acc.next_deadline()
        return next_release is None or next_release > give_up_at

    def _fail_leftovers(self) -> list[Identify]:
        leftovers = self._acc.drain_all()
        message = "the client closed before the operation was delivered"
        for receipt in leftovers:
            self._resolve(
                receipt,
                Failed(FailureReason.SHUTDOWN, message, None, receipt.attempts, receipt._ambiguous),
            )
        return [receipt.op for receipt in leftovers]

    def __del__(self) -> None:
        if getattr(self, "_state", None) is _State.OPEN:
            warnings.warn(
                f"{self!r} was never closed: queued operations may be lost. "
                "Use 'async with AmplitudeClient(...)' or await aclose().",
                ResourceWarning,
                stacklevel=1,
            )

    # -- intake -------------------------------------------------------------------------

    async def identify(self, op: Identify) -> Receipt:
        """Queue one operation and return its receipt; waits only for queue room.

        Raises :class:`ValidationError` for bad input, :class:`ClientClosed` /
        :class:`ClientNotStarted` for a client that is not open, and :class:`QueueFull`
        when intake is full and ``on_full="raise"``.
        """
        self._check(op)
        if self._unresolved >= self._queue_max:
            policy = self._config.on_full
            if policy != "wait":
                return self._full(op)
            await self._wait_for_space()
        return self._enqueue(op)

    def identify_nowait(self, op: Identify) -> Receipt:
        """Queue one operation without waiting. When intake is full, ``on_full="drop"``
        drops it (a Failed receipt) and both "wait" and "raise" raise :class:`QueueFull`."""
        self._check(op)
        if self._unresolved >= self._queue_max:
            return self._full(op)
        return self._enqueue(op)

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
        if loop is None or self._state is _State.UNOPENED:
            raise ClientNotStarted("the client is not open; use 'async with AmplitudeClient(...)'")
        if threading.get_ident() == self._loop_thread:
            raise ClientStateError(
                "identify_threadsafe() was called on the event loop's own thread; "
                "use 'await identify()' or identify_nowait() there"
            )
        self._check(op)
        outcome: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
        gate = _Gate()

        async def enqueue() -> None:
            self._check(op)
            if self._unresolved >= self._config.queue_max and self._config.on_full == "wait":
                await self._wait_for_space()
            # Queue it only if the calling thread has not given up meanwhile (timeout):
            # from here on nothing awaits, so the operation is queued or refused at once.
            if not gate.commit():
                return
            receipt = self.identify_nowait(op)
            # A callback, not a relay task: tasks are cancelled at shutdown, before the
            # leftovers get their outcome; the callback runs with the resolution.
            receipt._on_outcome(functools.partial(_set_future, outcome))

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

    def _check(self, op: Identify) -> None:
        if self._state is not _State.OPEN:
            raise self._state_error()
        if not isinstance(op, Identify):
            raise ValidationError(f"identify() takes an Identify, got {type(op).__name__}")
        if op._frozen:
            raise ValidationError(
                "this Identify was already queued; build a new one for another operation"
            )
        min_length = self._min_id_length
        user_id, device_id = op.user_id, op.device_id
        if user_id is not None and len(user_id) < min_length:
            self._refuse_short_id(user_id, "user_id")
        if device_id is not None and len(device_id) < min_length:
            self._refuse_short_id(device_id, "device_id")

    def _refuse_short_id(self, value: str, kind: str) -> None:
        problem = id_problem(value, kind, self._min_id_length)
        if problem:
            raise ValidationError(problem)

    def _state_error(self) -> ClientStateError:
        if self._state is _State.UNOPENED:
            return ClientNotStarted(
                "the client is not open; use 'async with AmplitudeClient(...) as amp'"
            )
        if self._state is _State.FAILED:
            error = ClientClosed(
                "the client stopped: its background task failed (see the log); "
                "await aclose() to fail what is queued"
            )
            error.__cause__ = self._failure
            return error
        return ClientClosed("the client is closed; operations are no longer accepted")

    def _full(self, op: Identify) -> Receipt:
        if self._config.on_full == "drop":
            dropped = self._counters.failed[FailureReason.DROPPED.value] + 1
            if dropped & (dropped - 1) == 0:  # the 1st, 2nd, 4th, 8th, ... drop: not a flood
                logger.warning(
                    "intake full (queue_max=%d): %d operation(s) dropped so far (reason dropped)",
                    self._config.queue_max,
                    dropped,
                )
            op._freeze()
            receipt = Receipt(op, self._gen)
            self._counters.enqueued += 1
            self._unresolved += 1
            self._open_now += 1
            self._resolve(
                receipt,
                Failed(
                    FailureReason.DROPPED,
                    f"intake full ({self._config.queue_max} operations); dropped by on_full='drop'",
                ),
            )
            return receipt
        raise QueueFull(
            f"intake is full ({self._config.queue_max} operations waiting for an outcome)"
        )

    def _enqueue(self, op: Identify) -> Receipt:
        op._frozen = True
        now = self._now()
        receipt = Receipt(op, self._gen)
        self._counters.enqueued += 1
        self._unresolved += 1
        self._open_now += 1
        if self._auth_failed:
            self._resolve(receipt, Failed(FailureReason.AUTH, "the API key was not accepted"))
            return receipt
        acc = self._acc
        acc.add(receipt, now)
        # Wake the sender only when this operation changes what it waits for.
        wake = self._wake
        assert wake is not None
        if self._in_flight < self._max_in_flight and not wake.is_set():
            sleep_until = self._sleep_until
            if (
                sleep_until is None
                or now + self._config.flush_interval < sleep_until
                or acc.ready_ops >= self._config.batch_max_items
            ):
                wake.set()
        return receipt

    async def _wait_for_space(self) -> None:
        loop = asyncio.get_running_loop()
        while self._unresolved >= self._queue_max:
            waiter: asyncio.Future[None] = loop.create_future()
            self._space_waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                # Cancelled (or closed): nothing was queued. Pass a wake-up we got on.
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._wake_one_space_waiter()
                raise
            finally:
                if waiter in self._space_waiters:
                    self._space_waiters.remove(waiter)
            if self._state is not _State.OPEN:
                raise self._state_error()

    def _wake_one_space_waiter(self) -> None:
        while self._space_waiters:
            waiter = self._space_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _wake_space_waiters(self) -> None:
        error = self._state_error()
        while self._space_waiters:
            waiter = self._space_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    # -- flush and stats ----------------------------------------------------------------

    async def flush(self) -> None:
        """Send now, and return once every operation enqueued before the call has an
        outcome (delivered or failed)."""
        if self._state is _State.UNOPENED or self._state is _State.FAILED:
            raise self._state_error()
        if not self._open_now and not self._gen_open:
            return
        gen = self._gen
        if self._open_now:
            self._gen_open[gen] = self._open_now
            self._open_now = 0
        self._gen += 1
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((gen, waiter))
        self._flushing += 1
        self._poke()
        try:
            await asyncio.shield(waiter)
        finally:
            self._flushing -= 1

    def stats(self) -> ClientStats:
        """A snapshot of the counters."""
        return self._counters.snapshot(
            in_flight=self._in_flight,
            queued=self._unresolved,
            throttled_identities=self._acc.throttled_identities,
            identities=self._acc.lanes,
            waiting=len(self._space_waiters),
        )

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    def __repr__(self) -> str:
        return (
            f"AmplitudeClient(server_url={self._url!r}, state={self._state.value!r}, "
            f"queued={self._unresolved}, in_flight={self._in_flight})"
        )

    # -- outcomes -----------------------------------------------------------------------

    def _resolve(self, receipt: Receipt, outcome: Outcome) -> None:
        receipt._resolve(outcome)
        counters = self._counters
        if isinstance(outcome, Failed):
            counters.failed[outcome.reason.value] += 1
        else:
            counters.delivered += 1
        self._unresolved -= 1
        if receipt.gen == self._gen:
            self._open_now -= 1
        else:
            self._settle_generation(receipt.gen, 1)
        if self._space_waiters:
            self._wake_one_space_waiter()
        callback = self._on_outcome
        if callback is not None:
            try:
                callback(receipt.op, outcome)
            except Exception:  # a user callback's bug must not lose other outcomes
                logger.exception("on_outcome callback raised; the outcome stands")

    def _settle_generation(self, gen: int, count: int) -> None:
        """``count`` operations of a flushed generation have their outcome; once the
        generation has none left, the flush() calls waiting on it may return."""
        left = self._gen_open[gen] - count
        if left:
            self._gen_open[gen] = left
            return
        del self._gen_open[gen]
        if self._flush_waiters:
            self._release_flush_waiters()

    def _release_flush_waiters(self, *, force: bool = False) -> None:
        oldest_open = min(self._gen_open) if self._gen_open else None
        still: list[tuple[int, asyncio.Future[None]]] = []
        for gen, waiter in self._flush_waiters:
            if force or oldest_open is None or oldest_open > gen:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((gen, waiter))
        self._flush_waiters = still

    def _deliver_group(self, group: Group, status: int) -> None:
        for receipt in group.receipts:
            duplicate = receipt._ambiguous
            if duplicate:
                self._counters.possible_duplicates += 1
            self._resolve(receipt, _delivered(status, receipt.attempts, duplicate))

    def _deliver_all(self, groups: list[Group], status: int) -> None:
        """Resolve every operation of a delivered request: what _resolve does, once per
        request instead of once per operation (the hot path: a thousand per request)."""
        if self._on_outcome is not None:
            # A user callback may read stats() as it goes: one at a time.
            for group in groups:
                self._deliver_group(group, status)
            return
        counters = self._counters
        current_gen = self._gen
        first_try = _delivered(status, 1, False)
        resolved = in_current = 0
        older: Counter[int] | None = None
        for group in groups:
            for receipt in group.receipts:
                if receipt.attempts == 1 and not receipt._ambiguous:
                    outcome = first_try
                else:
                    if receipt._ambiguous:
                        counters.possible_duplicates += 1
                    outcome = _delivered(status, receipt.attempts, receipt._ambiguous)
                receipt._resolve(outcome)
                resolved += 1
                if receipt.gen == current_gen:
                    in_current += 1
                else:
                    if older is None:
                        older = Counter()
                    older[receipt.gen] += 1
        counters.delivered += resolved
        self._unresolved -= resolved
        self._open_now -= in_current
        if older is not None:
            for gen, count in older.items():
                self._settle_generation(gen, count)
        for _ in range(min(resolved, len(self._space_waiters))):
            self._wake_one_space_waiter()

    def _fail_group(
        self, group: Group, reason: FailureReason, message: str, status: int | None
    ) -> None:
        for receipt in group.receipts:
            self._resolve(
                receipt, Failed(reason, message, status, receipt.attempts, receipt._ambiguous)
            )

    # -- the sender -----------------------------------------------------------------------

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run_sender(self) -> None:
        clock, acc, cfg = self._clock, self._acc, self._config
        wake = self._wake
        assert wake is not None and self._tg is not None
        while True:
            now = clock.now()
            if self._auth_failed:
                self._fail_all_auth()
            force = self._draining or self._flushing > 0
            while self._in_flight < cfg.max_in_flight and acc.due(now, force=force):
                batch, refused = acc.take(now)
                for group, reason, message in refused:
                    self._fail_group(group, reason, message, None)
                    _log_failed(len(group.receipts), reason, message)
                if batch is None:
                    break
                self._in_flight += 1
                self._tg.start_soon(self._send_batch, batch)
                # Assembling a batch takes a few milliseconds: let the application (and
                # the request just started) run before assembling the next one, so the
                # loop never stalls for several batches in a row.
                await asyncio.sleep(0)
                now = clock.now()
            if self._settled is not None:
                self._settled.set()
            self._sleep_until = acc.next_deadline() if self._in_flight < cfg.max_in_flight else None
            await clock.wait(wake, self._sleep_until)
            wake.clear()

    def _fail_all_auth(self) -> None:
        for receipt in self._acc.drain_all():
            self._resolve(receipt, Failed(FailureReason.AUTH, "the API key was not accepted"))

    async def _send_batch(self, batch: Batch) -> None:
        attempt = _Attempt()
        try:
            await self._attempt(batch.groups, attempt)
        finally:
            # Whatever has no outcome goes back to the front of its lane, in batch order
            # (also when cancelled at shutdown, so aclose() can fail and spool it).
            # Per operation, not per group: a merged group that was re-sent unmerged
            # (413, 400) may have some of its operations resolved and others not.
            back = [r for g in batch.groups for r in g.receipts if r.outcome is None]
            if back:
                self._counters.retried += len(back)
            self._acc.settle(batch, back, self._clock.now(), attempt.not_before)
            self._in_flight -= 1
            self._poke()

    async def _attempt(
        self, groups: list[Group], attempt: _Attempt, *, split: bool = False
    ) -> None:
        """Send ``groups`` as one request and act on the answer (recursing to narrow a
        400, and to send a merged identification's operations alone after a 413;
        ``split``: this request is such a part, so a 413 is bisected in place)."""
        if attempt.blocked:
            # An earlier part of this batch went back: later operations of the same
            # lanes must not overtake it.
            groups = [g for g in groups if g.key not in attempt.blocked]
            if not groups:
                return
        now = self._clock.now()
        for group in groups:
            for receipt in group.receipts:
                receipt.attempts += 1
                if receipt.first_sent_at is None:
                    receipt.first_sent_at = now
        body = self._encoder.body([g.encoded for g in groups])  # type: ignore[misc]
        counters = self._counters
        counters.requests += 1
        counters.identifications += len(groups)
        try:
            response = await self._transport.handle_async_request(
                HttpRequest("POST", self._url, self._headers, body)
            )
            verdict = classify(response, self._secrets)
        except TransportError as exc:
            verdict = classify_transport_error(exc)
        except asyncio.CancelledError:
            # Closing (or cancelled) with this request in flight: the server may have
            # applied it. Its operations fail with maybe_applied=True.
            for group in groups:
                for receipt in group.receipts:
                    receipt._ambiguous = True
            raise
        kind = verdict.kind
        if kind is VerdictKind.DELIVERED:
            status = verdict.status or 200
            self._deliver_all(groups, status)
            self._acc.recover()
        elif kind is VerdictKind.THROTTLED:
            self._on_throttled(groups, verdict, attempt)
        elif kind is VerdictKind.TOO_LARGE:
            await self._on_too_large(groups, verdict, len(body), attempt, split)
        elif kind is VerdictKind.INVALID:
            await self._on_invalid(groups, verdict, attempt)
        elif kind is VerdictKind.AUTH:
            if not self._auth_failed:
                logger.error(
                    "%s refused the API key (HTTP %s): failing every queued operation with "
                    "reason auth and sending nothing more",
                    self._host,
                    verdict.status,
                )
            self._auth_failed = True
            for group in groups:
                self._fail_group(group, FailureReason.AUTH, verdict.message, verdict.status)
        else:
            self._on_retry(groups, verdict, attempt, now)

    def _on_throttled(self, groups: list[Group], verdict: Verdict, attempt: _Attempt) -> None:
        self._counters.throttle_responses += 1
        quota_users, quota_devices = verdict.quota_users, verdict.quota_devices
        remaining: list[Group] = []
        for group in groups:
            op = group.receipts[0].op
            if op.user_id in quota_users or op.device_id in quota_devices:
                self._fail_group(
                    group,
                    FailureReason.QUOTA,
                    "the user or device exceeded Amplitude's daily quota",
                    429,
                )
            else:
                remaining.append(group)
        users, devices = set(verdict.users), set(verdict.devices)
        if not users and not devices and not quota_users and not quota_devices:
            # A 429 that names nobody holds everybody in the request.
            for group in remaining:
                op = group.receipts[0].op
                if op.user_id is not None:
                    users.add(op.user_id)
                if op.device_id is not None:
                    devices.add(op.device_id)
        hold = (
            verdict.retry_after if verdict.retry_after is not None else self._config.throttle_hold
        )
        if users or devices:
            self._acc.hold(users, devices, self._clock.now() + hold)
            # A request carrying more identifications of one identity than its rate
            # allows is refused every time: send fewer of one identity per request.
            per_identity = Counter(
                g.key
                for g in remaining
                if g.receipts[0].op.user_id in users or g.receipts[0].op.device_id in devices
            )
            if per_identity:
                self._acc.throttled(max(per_identity.values()), verdict.eps_threshold)
        attempt.blocked.update(g.key for g in remaining)
        held_ops = sum(
            len(g.receipts)
            for g in remaining
            if g.receipts[0].op.user_id in users or g.receipts[0].op.device_id in devices
        )
        logger.warning(
            "HTTP 429 from %s: holding %s for %.1f s (%d operation(s)); "
            "re-sending %d other operation(s) now%s",
            self._host,
            _describe_identities(users, devices),
            hold,
            held_ops,
            sum(len(g.receipts) for g in remaining) - held_ops,
            f"; {len(quota_users) + len(quota_devices)} identity(ies) over the daily quota: "
            f"their operations failed with reason quota"
            if quota_users or quota_devices
            else "",
        )

    async def _on_too_large(
        self, groups: list[Group], verdict: Verdict, size: int, attempt: _Attempt, split: bool
    ) -> None:
        if len(groups) == 1 and len(groups[0].receipts) == 1:
            message = f"the server refused the identification as too large ({verdict.message})"
            self._fail_group(groups[0], FailureReason.TOO_LARGE, message, verdict.status)
            _log_failed(1, FailureReason.TOO_LARGE, f"HTTP {verdict.status}: {message}")
            return
        self._counters.splits += 1
        self._acc.shrink(size, len(groups))
        if len(groups) == 1 or split:
            # One merged identification (or a part of one) too large: its operations may
            # well fit alone. Send them unmerged now, halving until each goes alone, so
            # that only an operation too large by itself fails with too_large.
            if len(groups) == 1:
                groups = self._acc.unmerge(groups[0])
            middle = len(groups) // 2
            await self._attempt(groups[:middle], attempt, split=True)
            await self._attempt(groups[middle:], attempt, split=True)
            return
        attempt.blocked.update(g.key for g in groups)
        logger.info(
            "HTTP %s from %s for %d bytes, %d identifications: re-sending in smaller "
            "requests (limits now %d bytes, %d identifications)",
            verdict.status,
            self._host,
            size,
            len(groups),
            self._acc.size_limit,
            self._acc.item_limit,
        )

    async def _on_invalid(self, groups: list[Group], verdict: Verdict, attempt: _Attempt) -> None:
        if not verdict.narrow:
            # The request itself was refused (not a 400): the same for every part of it.
            for group in groups:
                self._fail_group(group, FailureReason.INVALID, verdict.message, verdict.status)
            self._log_invalid(len(groups), verdict)
            return
        indices = verdict.indices
        if (
            indices is not None
            and all(0 <= i < len(groups) for i in indices)
            and all(len(groups[i].receipts) == 1 for i in indices)
        ):
            # The server named the bad items and applied nothing: fail those, re-send the
            # rest. (A merged item named is narrowed below to the operations at fault.)
            for index in sorted(indices):
                self._fail_group(
                    groups[index], FailureReason.INVALID, verdict.message, verdict.status
                )
            attempt.blocked.update(g.key for i, g in enumerate(groups) if i not in indices)
            self._log_invalid(len(indices), verdict)
            return
        if len(groups) == 1:
            if len(groups[0].receipts) > 1:
                # A merged identification refused: narrow it to the operations at fault.
                self._counters.splits += 1
                await self._attempt(self._acc.unmerge(groups[0]), attempt)
                return
            self._fail_group(groups[0], FailureReason.INVALID, verdict.message, verdict.status)
            self._log_invalid(1, verdict)
            return
        # Not said which: bisect, in order, so the good items are still delivered.
        self._counters.splits += 1
        middle = len(groups) // 2
        await self._attempt(groups[:middle], attempt)
        await self._attempt(groups[middle:], attempt)

    def _log_invalid(self, count: int, verdict: Verdict) -> None:
        logger.warning(
            "HTTP %s from %s: %d identification(s) rejected (reason invalid): %s",
            verdict.status,
            self._host,
            count,
            verdict.message,
        )

    def _on_retry(
        self, groups: list[Group], verdict: Verdict, attempt: _Attempt, sent_at: float
    ) -> None:
        cfg = self._config
        now = self._clock.now()
        retry_after = verdict.retry_after
        kept = gave_up = 0
        last_message = ""
        attempts = 1
        for group in groups:
            first = group.receipts[0]
            if verdict.ambiguous:
                for receipt in group.receipts:
                    receipt._ambiguous = True
            started = first.first_sent_at if first.first_sent_at is not None else sent_at
            message = None
            if now - started >= cfg.retry_deadline:
                message = (
                    f"gave up after {first.attempts} attempt(s) over {now - started:.1f} s; "
                    f"last error: {verdict.message}"
                )
            elif retry_after is not None and now + retry_after - started > cfg.retry_deadline:
                # The server says not before the deadline: waiting cannot help.
                message = (
                    f"gave up after {first.attempts} attempt(s): the server asked to retry "
                    f"after {retry_after:g} s, past retry_deadline ({cfg.retry_deadline:g} s); "
                    f"last error: {verdict.message}"
                )
            if message is not None:
                self._fail_group(group, FailureReason.RETRIES_EXHAUSTED, message, verdict.status)
                gave_up += len(group.receipts)
                last_message = message
                continue
            kept += len(group.receipts)
            attempts = max(attempts, first.attempts)
            attempt.blocked.add(group.key)
        if gave_up:
            _log_failed(gave_up, FailureReason.RETRIES_EXHAUSTED, last_message)
        if not kept:
            return
        delay = backoff_delay(
            attempts, base=cfg.retry_base, cap=cfg.retry_cap, retry_after=verdict.retry_after
        )
        not_before = now + delay
        if attempt.not_before is None or not_before > attempt.not_before:
            attempt.not_before = not_before
        logger.warning(
            "%s from %s: retrying %d operation(s) in %.2f s (attempt %d)%s",
            f"HTTP {verdict.status}" if verdict.status else "no answer",
            self._host,
            kept,
            delay,
            attempts + 1,
            f": {verdict.message}" if verdict.status is None else "",
        )

    # -- introspection for tests and tools ---------------------------------------------------

    @property
    def config(self) -> ClientConfig:
        return self._config


_DELIVERED_CACHE: dict[tuple[int, int, bool], Delivered] = {}


def _delivered(status: int, attempts: int, duplicate: bool) -> Delivered:
    """Delivered outcomes are immutable: share one per (status, attempts, duplicate)."""
    key = (status, attempts, duplicate)
    outcome = _DELIVERED_CACHE.get(key)
    if outcome is None:
        outcome = Delivered(status, attempts, duplicate)
        if len(_DELIVERED_CACHE) < 4096:
            _DELIVERED_CACHE[key] = outcome
    return outcome


def _log_failed(count: int, reason: FailureReason, message: str) -> None:
    logger.warning("%d operation(s) failed with reason %s: %s", count, reason.value, message)


def _utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _set_future(future: concurrent.futures.Future[Outcome], outcome: Outcome) -> None:
    """Hand an outcome to another thread's future; the caller may have cancelled it."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        future.set_result(outcome)


def _describe_identities(users: Iterable[str], devices: Iterable[str]) -> str:
    parts = []
    for kind, names in (("user", sorted(users)), ("device", sorted(devices))):
        if names:
            shown = ", ".join(names[:_LOG_NAMES])
            more = f" and {len(names) - _LOG_NAMES} more" if len(names) > _LOG_NAMES else ""
            parts.append(f"{len(names)} {kind}(s) [{shown}{more}]")
    return " and ".join(parts) if parts else "nobody"
