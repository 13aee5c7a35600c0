"""The retry decision alone: who gives up (and says why), who goes back, and when."""

from __future__ import annotations

from amplitude_async import ClientConfig, Failed, FailureReason, Identify, ManualClock
from amplitude_async._ledger import Ledger
from amplitude_async._response import Verdict, VerdictKind
from amplitude_async._retry import RetryPolicy

CONFIG = ClientConfig(retry_base=0.1, retry_cap=0.5, retry_deadline=10.0)


def setup(*ages: float | None) -> tuple[RetryPolicy, ManualClock, list[Identify]]:
    """A policy, its clock, and one sent operation per age (seconds since its first
    attempt; None: this request was its first)."""
    clock, ledger = ManualClock(), Ledger(None)
    ops = []
    for i, age in enumerate(ages):
        op = Identify(user_id=f"user-{i}").set("plan", "pro")
        ledger.admit(op)
        op.attempts = 3
        op.first_sent_at = None if age is None else clock.now() - age
        ops.append(op)
    return RetryPolicy(config=CONFIG, clock=clock, ledger=ledger, host="127.0.0.1"), clock, ops


def retry(
    status: int | None, *, retry_after: float | None = None, ambiguous: bool = False
) -> Verdict:
    return Verdict(VerdictKind.RETRY, status, "boom", retry_after=retry_after, ambiguous=ambiguous)


def failure(op: Identify) -> Failed:
    assert isinstance(op.outcome, Failed)
    assert op.outcome.reason is FailureReason.RETRIES_EXHAUSTED
    return op.outcome


def test_a_unit_past_its_deadline_gives_up_and_the_rest_go_back_after_retry_after() -> None:
    policy, clock, (old, fresh, first) = setup(10.0, 1.0, None)
    blocked: set[str] = set()
    not_before = policy.decide(
        [old, fresh, first], retry(503, retry_after=2.0), blocked, clock.now()
    )
    # The jitter is at most retry_cap (0.5): Retry-After is the floor.
    assert not_before == clock.now() + 2.0
    assert blocked == {fresh.identity, first.identity}
    assert failure(old).message == "gave up after 3 attempt(s) over 10.0 s; last error: boom"
    assert (failure(old).status, fresh.outcome, first.outcome) == (503, None, None)


def test_retry_after_past_the_deadline_gives_up_at_once() -> None:
    policy, clock, [op] = setup(1.0)
    blocked: set[str] = set()
    assert policy.decide([op], retry(503, retry_after=50.0), blocked, clock.now()) is None
    assert blocked == set()
    assert failure(op).message == (
        "gave up after 3 attempt(s): the server asked to retry after 50 s, "
        "past retry_deadline (10 s); last error: boom"
    )


def test_a_next_try_that_would_start_at_the_deadline_gives_up_now() -> None:
    # 8 s spent, 2 s of Retry-After: the next try would start exactly at the deadline.
    policy, clock, [op] = setup(8.0)
    assert policy.decide([op], retry(502, retry_after=2.0), set(), clock.now()) is None
    assert failure(op).message == (
        "gave up after 3 attempt(s) over 8.0 s: the next retry (in 2.00 s) would start "
        "past retry_deadline (10 s); last error: boom"
    )


def test_an_ambiguous_attempt_marks_what_fails_and_what_goes_back() -> None:
    policy, clock, (old, fresh) = setup(20.0, 0.0)
    not_before = policy.decide([old, fresh], retry(None, ambiguous=True), set(), clock.now())
    assert not_before is not None and clock.now() <= not_before <= clock.now() + 0.5
    assert failure(old).maybe_applied is True and failure(old).status is None
    assert fresh.outcome is None and fresh._ambiguous
