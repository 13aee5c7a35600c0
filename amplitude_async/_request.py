"""One batch's request: send it, classify the answer, act on it.

The model is aiokafka's per-request handler in its sender: the sender loop only starts
requests; everything an answer means is decided here. A 2xx delivers; a 429 holds the
identities it names (the rest go again at once); a 413 splits the batch and shrinks the
request limits; a 400 is narrowed to the bad identifications (the indices the server
named, else bisecting); a refused API key fails everything and stops the client;
anything else is retried with backoff until ``retry_deadline`` (what goes back and when
is decided in ``_retry``).

Units that end without an outcome stay in the batch; the sender puts them back at the
front of their lanes. :class:`Attempt` carries, across the sub-requests of a split,
which lanes have something going back (their later units must not overtake it) and the
retry backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Final

from ._batcher import Batch, encode_singles
from ._clock import Clock
from ._coalesce import Merged, Unit
from ._config import ClientConfig
from ._encode import BatchEncoder
from ._errors import TransportError
from ._ledger import Ledger, log_failed
from ._limits import RequestLimits
from ._logfields import fields
from ._outcome import FailureReason
from ._response import Verdict, VerdictKind, classify, classify_transport_error
from ._retry import RetryPolicy, mark_ambiguous
from ._scrub import Scrubber
from ._stats import Counters
from ._telemetry import Telemetry
from ._throttle import ThrottleMap
from ._transport import AsyncTransport, HttpRequest

__all__ = ["Attempt", "RequestHandler"]

logger = logging.getLogger("amplitude_async")

# How many identities a log line names before it says "and N more".
_LOG_NAMES: Final = 5
#: Delivered units resolved per step before the loop may get a turn.
_DELIVER_SLICE: Final = 256


class Attempt:
    """What one batch's requests decided, across the sub-requests of a split."""

    __slots__ = ("blocked", "not_before")

    def __init__(self) -> None:
        #: Lanes with a unit that goes back: their later units must too.
        self.blocked: set[str] = set()
        #: Retry backoff for what goes back, if any.
        self.not_before: float | None = None

    def wait_until(self, not_before: float) -> None:
        """What goes back waits at least until ``not_before`` (the latest backoff of
        the parts wins)."""
        if self.not_before is None or not_before > self.not_before:
            self.not_before = not_before


class RequestHandler:
    """Sends batches for one client and acts on every answer."""

    def __init__(
        self,
        *,
        config: ClientConfig,
        clock: Clock,
        transport: AsyncTransport,
        url: str,
        host: str,
        encoder: BatchEncoder,
        scrub: Scrubber,
        ledger: Ledger,
        limits: RequestLimits,
        throttle: ThrottleMap,
        telemetry: Telemetry,
        on_auth_failed: Callable[[int | None], None],
    ) -> None:
        self._config = config
        self._clock = clock
        self._transport = transport
        self._url = url
        self._host = host
        self._encoder = encoder
        self._headers = {"Content-Type": encoder.content_type}
        #: Cuts the API key, in any spelling, out of every text the server sends.
        self._scrub = scrub
        self._ledger = ledger
        self._counters: Counters = ledger.counters
        self._limits = limits
        self._throttle = throttle
        self._telemetry = telemetry
        self._on_auth_failed = on_auth_failed
        self._retry = RetryPolicy(config=config, clock=clock, ledger=ledger, host=host)

    async def send(self, batch: Batch, attempt: Attempt) -> None:
        await self._attempt(batch.units, batch.items, attempt)

    async def _attempt(
        self, units: list[Unit], items: list[bytes], attempt: Attempt, *, split: bool = False
    ) -> None:
        """Send ``units`` as one request and act on the answer (recursing to narrow a
        400, and to send a merged identification's operations alone after a 413;
        ``split``: this request is such a part, so a 413 is bisected in place)."""
        if attempt.blocked:
            # An earlier part of this batch went back: later units of the same lanes
            # must not overtake it.
            keep = [i for i, u in enumerate(units) if u.identity not in attempt.blocked]
            if len(keep) < len(units):
                units = [units[i] for i in keep]
                items = [items[i] for i in keep]
            if not units:
                return
        now = self._clock.now()
        for unit in units:
            for op in unit.ops if isinstance(unit, Merged) else (unit,):
                op.attempts += 1
                if op.first_sent_at is None:
                    op.first_sent_at = now
        body = self._encoder.body(items)
        counters = self._counters
        counters.requests += 1
        counters.identifications += len(units)
        try:
            with self._telemetry.request(len(units)) as scope:
                response = await self._transport.handle_async_request(
                    HttpRequest("POST", self._url, self._headers, body)
                )
                scope.status = response.status
            verdict = classify(response, self._scrub)
        except TransportError as exc:
            verdict = classify_transport_error(exc, self._scrub)
        except asyncio.CancelledError:
            # Closing (or cancelled) with this request in flight: the server may have
            # applied it. Its operations fail with maybe_applied=True.
            mark_ambiguous(units)
            raise
        kind = verdict.kind
        if kind is VerdictKind.DELIVERED:
            await self._deliver(units, verdict.status or 200)
            self._limits.recover()
        elif kind is VerdictKind.THROTTLED:
            self._on_throttled(units, verdict, attempt)
        elif kind is VerdictKind.TOO_LARGE:
            await self._on_too_large(units, items, verdict, len(body), attempt, split)
        elif kind is VerdictKind.INVALID:
            await self._on_invalid(units, items, verdict, attempt)
        elif kind is VerdictKind.AUTH:
            self._on_auth_failed(verdict.status)
            for unit in units:
                self._ledger.fail_unit(unit, FailureReason.AUTH, verdict.message, verdict.status)
        else:
            not_before = self._retry.decide(units, verdict, attempt.blocked, now)
            if not_before is not None:
                attempt.wait_until(not_before)

    async def _deliver(self, units: list[Unit], status: int) -> None:
        """Resolve a delivered request's operations in slices: a thousand merged units
        can carry many thousand operations, and the loop gets a turn in between."""
        deliver = self._ledger.deliver
        if len(units) <= _DELIVER_SLICE:
            deliver(units, status)
            return
        started = time.perf_counter()
        for start in range(0, len(units), _DELIVER_SLICE):
            deliver(units[start : start + _DELIVER_SLICE], status)
            if start + _DELIVER_SLICE < len(units) and time.perf_counter() - started > 0.001:
                try:
                    await asyncio.sleep(0)
                except asyncio.CancelledError:
                    # Delivered is delivered, even when closing: finish, then stop.
                    deliver(units[start + _DELIVER_SLICE :], status)
                    raise
                started = time.perf_counter()

    def _on_throttled(self, units: list[Unit], verdict: Verdict, attempt: Attempt) -> None:
        self._counters.throttle_responses += 1
        quota_users, quota_devices = verdict.quota_users, verdict.quota_devices
        remaining: list[Unit] = []
        for unit in units:
            if unit.user_id in quota_users or unit.device_id in quota_devices:
                self._ledger.fail_unit(
                    unit,
                    FailureReason.QUOTA,
                    "the user or device exceeded Amplitude's daily quota",
                    429,
                )
            else:
                remaining.append(unit)
        users, devices = set(verdict.users), set(verdict.devices)
        if not users and not devices and not quota_users and not quota_devices:
            # A 429 that names nobody holds everybody in the request.
            for unit in remaining:
                if unit.user_id is not None:
                    users.add(unit.user_id)
                if unit.device_id is not None:
                    devices.add(unit.device_id)
        cfg = self._config
        hold = verdict.retry_after if verdict.retry_after is not None else cfg.throttle_hold
        # A floor whatever the server says: Retry-After: 0 must not become a storm.
        hold = max(hold, min(cfg.min_throttle_hold, cfg.throttle_hold))
        held = [u for u in remaining if u.user_id in users or u.device_id in devices]
        if users or devices:
            self._throttle.hold(users, devices, self._clock.now() + hold)
            # A request carrying more identifications of one identity than its rate
            # allows is refused every time: send fewer of one identity per request.
            per_identity = Counter(u.identity for u in held)
            if per_identity:
                self._limits.throttled(max(per_identity.values()), verdict.eps_threshold)
        attempt.blocked.update(u.identity for u in remaining)
        held_ops = _count_ops(held)
        logger.warning(
            "HTTP 429 from %s: holding %s for %.1f s (%d operation(s)); "
            "re-sending %d other operation(s) now%s",
            self._host,
            _describe_identities(users, devices),
            hold,
            held_ops,
            _count_ops(remaining) - held_ops,
            f"; {len(quota_users) + len(quota_devices)} identity(ies) over the daily quota: "
            f"their operations failed with reason quota"
            if quota_users or quota_devices
            else "",
            extra=fields("identify.throttled", count=held_ops, status=429, delay=hold),
        )

    async def _on_too_large(
        self,
        units: list[Unit],
        items: list[bytes],
        verdict: Verdict,
        size: int,
        attempt: Attempt,
        split: bool,
    ) -> None:
        if len(units) == 1 and not isinstance(units[0], Merged):
            message = f"the server refused the identification as too large ({verdict.message})"
            self._ledger.fail_unit(units[0], FailureReason.TOO_LARGE, message, verdict.status)
            log_failed(
                1, FailureReason.TOO_LARGE, f"HTTP {verdict.status}: {message}", verdict.status
            )
            return
        self._counters.splits += 1
        self._limits.shrink(size, len(units))
        if len(units) == 1 or split:
            # One merged identification (or a part of one) too large: its operations may
            # well fit alone. Send them unmerged now, halving until each goes alone, so
            # that only an operation too large by itself fails with too_large.
            if len(units) == 1:
                units, items = self._unmerge(units[0])  # type: ignore[arg-type]
                if not units:
                    return
            middle = len(units) // 2
            await self._attempt(units[:middle], items[:middle], attempt, split=True)
            await self._attempt(units[middle:], items[middle:], attempt, split=True)
            return
        attempt.blocked.update(u.identity for u in units)
        logger.info(
            "HTTP %s from %s for %d bytes, %d identifications: re-sending in smaller "
            "requests (limits now %d bytes, %d identifications)",
            verdict.status,
            self._host,
            size,
            len(units),
            self._limits.size_limit,
            self._limits.item_limit,
            extra=fields("identify.split", count=len(units), status=verdict.status),
        )

    async def _on_invalid(
        self, units: list[Unit], items: list[bytes], verdict: Verdict, attempt: Attempt
    ) -> None:
        ledger = self._ledger
        if not verdict.narrow:
            # The request itself was refused (not a 400): the same for every part of it.
            for unit in units:
                ledger.fail_unit(unit, FailureReason.INVALID, verdict.message, verdict.status)
            self._log_invalid(len(units), verdict)
            return
        indices = verdict.indices
        if (
            indices is not None
            and all(0 <= i < len(units) for i in indices)
            and not any(isinstance(units[i], Merged) for i in indices)
        ):
            # The server named the bad items and applied nothing: fail those, re-send the
            # rest. (A merged item named is narrowed below to the operations at fault.)
            for index in sorted(indices):
                ledger.fail_unit(
                    units[index], FailureReason.INVALID, verdict.message, verdict.status
                )
            attempt.blocked.update(u.identity for i, u in enumerate(units) if i not in indices)
            self._log_invalid(len(indices), verdict)
            return
        if len(units) == 1:
            unit = units[0]
            if isinstance(unit, Merged):
                # A merged identification refused: narrow it to the operations at fault.
                self._counters.splits += 1
                singles, single_items = self._unmerge(unit)
                if singles:
                    await self._attempt(singles, single_items, attempt)
                return
            ledger.fail_unit(unit, FailureReason.INVALID, verdict.message, verdict.status)
            self._log_invalid(1, verdict)
            return
        # Not said which: bisect, in order, so the good items are still delivered.
        self._counters.splits += 1
        middle = len(units) // 2
        await self._attempt(units[:middle], items[:middle], attempt)
        await self._attempt(units[middle:], items[middle:], attempt)

    def _unmerge(self, unit: Merged) -> tuple[list[Unit], list[bytes]]:
        """A merged unit's operations, each alone and encoded; one that no longer
        encodes fails with invalid here."""
        units, items = encode_singles(self._encoder, unit)
        keep = [i for i, item in enumerate(items) if item]
        if len(keep) < len(units):
            for i, item in enumerate(items):
                if not item:
                    self._ledger.fail_unit(
                        units[i],
                        FailureReason.INVALID,
                        "the identification cannot be encoded as JSON",
                    )
            units = [units[i] for i in keep]
            items = [items[i] for i in keep]
        return units, items

    def _log_invalid(self, count: int, verdict: Verdict) -> None:
        logger.warning(
            "HTTP %s from %s: %d identification(s) rejected (reason invalid): %s",
            verdict.status,
            self._host,
            count,
            verdict.message,
            extra=fields("identify.invalid", count=count, reason="invalid", status=verdict.status),
        )


def _count_ops(units: list[Unit]) -> int:
    return sum(len(u.ops) if isinstance(u, Merged) else 1 for u in units)


def _describe_identities(users: Iterable[str], devices: Iterable[str]) -> str:
    parts = []
    for kind, names in (("user", sorted(users)), ("device", sorted(devices))):
        if names:
            shown = ", ".join(names[:_LOG_NAMES])
            more = f" and {len(names) - _LOG_NAMES} more" if len(names) > _LOG_NAMES else ""
            parts.append(f"{len(names)} {kind}(s) [{shown}{more}]")
    return " and ".join(parts) if parts else "nobody"
