"""The retry decision for a request that may go again: a 5xx, a timeout, no connection.

Each unit of the request either gives up, failing with ``retries_exhausted``, or goes
back with the request's backoff. It gives up when its first attempt was
``retry_deadline`` ago, when the server's Retry-After points past the deadline (waiting
cannot help), or when the next try, after the backoff, would start past it (so it fails
now, not after one more wasted request). The backoff grows with the most attempts any
unit going back has had.

An attempt without a certain answer (a timeout, a reset after sending) may have been
applied: :func:`mark_ambiguous` flags its operations, so their outcomes say
``maybe_applied`` and a delivered re-send ``possible_duplicate``.
"""

from __future__ import annotations

import logging

from ._backoff import backoff_delay
from ._clock import Clock
from ._coalesce import Merged, Unit
from ._config import ClientConfig
from ._identify import Identify
from ._ledger import Ledger, log_failed
from ._logfields import fields
from ._outcome import AMBIGUOUS, FailureReason
from ._response import Verdict

__all__ = ["RetryPolicy", "mark_ambiguous"]

logger = logging.getLogger("amplitude_async")


class RetryPolicy:
    """Decides, for one client, what of a retriable request goes back and when."""

    __slots__ = ("_clock", "_config", "_host", "_ledger")

    def __init__(self, *, config: ClientConfig, clock: Clock, ledger: Ledger, host: str) -> None:
        self._config = config
        self._clock = clock
        self._ledger = ledger
        #: The server's host, for log lines.
        self._host = host

    def decide(
        self, units: list[Unit], verdict: Verdict, blocked: set[str], sent_at: float
    ) -> float | None:
        """Fail the units out of time; add the others' identities to ``blocked`` and
        return when they may go again (None: nothing goes back). ``sent_at``: when this
        request was sent (the start of a unit never sent before)."""
        cfg = self._config
        now = self._clock.now()
        retry_after = verdict.retry_after
        gave_up = 0
        last_message = ""
        attempts = 1
        if verdict.ambiguous:
            mark_ambiguous(units)
        kept: list[tuple[Unit, Identify, int, float]] = []
        for unit in units:
            first = unit.ops[0] if isinstance(unit, Merged) else unit
            count = len(unit.ops) if isinstance(unit, Merged) else 1
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
                self._ledger.fail_unit(
                    unit, FailureReason.RETRIES_EXHAUSTED, message, verdict.status
                )
                gave_up += count
                last_message = message
                continue
            attempts = max(attempts, first.attempts)
            kept.append((unit, first, count, started))
        delay = backoff_delay(
            attempts, base=cfg.retry_base, cap=cfg.retry_cap, retry_after=verdict.retry_after
        )
        retried = 0
        for unit, first, count, started in kept:
            if now + delay - started >= cfg.retry_deadline:
                # The next try would start past the deadline: give up now, not after it.
                message = (
                    f"gave up after {first.attempts} attempt(s) over {now - started:.1f} s: "
                    f"the next retry (in {delay:.2f} s) would start past retry_deadline "
                    f"({cfg.retry_deadline:g} s); last error: {verdict.message}"
                )
                self._ledger.fail_unit(
                    unit, FailureReason.RETRIES_EXHAUSTED, message, verdict.status
                )
                gave_up += count
                last_message = message
                continue
            retried += count
            blocked.add(unit.identity)
        if gave_up:
            log_failed(gave_up, FailureReason.RETRIES_EXHAUSTED, last_message, verdict.status)
        if not retried:
            return None
        logger.warning(
            "%s from %s: retrying %d operation(s) in %.2f s (attempt %d)%s",
            f"HTTP {verdict.status}" if verdict.status else "no answer",
            self._host,
            retried,
            delay,
            attempts + 1,
            f": {verdict.message}" if verdict.status is None else "",
            extra=fields(
                "identify.retry",
                count=retried,
                status=verdict.status,
                attempt=attempts + 1,
                delay=delay,
            ),
        )
        return now + delay


def mark_ambiguous(units: list[Unit]) -> None:
    """The server may have applied these units: every operation in them says so."""
    for unit in units:
        for op in unit.ops if isinstance(unit, Merged) else (unit,):
            op._flags |= AMBIGUOUS
