"""The reliability harness: a workload, a client run against the emulator, the invariants.

A workload is thousands of operations over hundreds of identities. Every operation
appends its unique sequence number to its identity's ``log`` list, so the emulator's
``applied`` log shows exactly which operations reached the server, in which requests,
in which order. Each identity is owned by one producer task, so its enqueue order is
its sequence order.

:func:`check` asserts the promises on one finished run:

- every operation has exactly one outcome (``on_outcome`` called once; the receipt
  holds that outcome) and the counters add up;
- every ``Delivered`` operation is in the emulator's applied log, and every ``Failed``
  one the server applied says ``maybe_applied``;
- every other operation is ``Failed`` with an expected reason, and operations failed
  for a reason that means "never sent whole" (invalid, too_large, dropped, ...) were
  never applied;
- per identity, operations are first applied in enqueue order; within one request an
  identity's operations are in order; an operation is applied more than once only
  after an ambiguous attempt (500/502/504, a reset or a timeout), and such duplicates
  are counted and covered by the client's ``possible_duplicate`` accounting; the last
  application of each identity is its newest applied operation (its final state is
  right), unless the scenario lets the server apply a request after the client gave
  up on it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Delivered, Failed, FailureReason, Identify
from amplitude_async.emulator import AppliedIdentification

#: Distinctive keys, so the security test can grep everything the runs produced.
KEY = "rel-api-key-5f3c9a0d7e1b"
SECRET = "rel-secret-key-9d1e7b44c2a8"

#: Reasons that mean the operation was never applied (the server refused it whole, or
#: it was never sent). Others (retries_exhausted, shutdown) may follow an ambiguous
#: attempt that the server did apply.
NEVER_APPLIED = frozenset(
    (
        FailureReason.INVALID,
        FailureReason.TOO_LARGE,
        FailureReason.DROPPED,
        FailureReason.QUOTA,
        FailureReason.AUTH,
    )
)


@dataclass(frozen=True)
class Workload:
    """What the producers send. Identities: ``user-NNNN`` (user only), ``dvc-NNNN``
    (device only) and ``both-NNNN`` (user and device ``bdev-NNNN``); ``b-NN`` are
    device-only identities the client accepts and a scenario may make the server refuse
    (``Emulator(silenced_devices=...)``: a 400 naming them in ``silenced_events``)."""

    ops: int = 4000
    users: int = 400
    seed: int = 1
    #: Share of identities that are device-only / user-and-device.
    device_share: float = 0.1
    both_share: float = 0.1
    #: The first ``hot`` identities get ``hot_share`` of all operations.
    hot: int = 0
    hot_share: float = 0.0
    #: Device-only identities ``b-NN`` for the server to refuse.
    bad: int = 0
    #: Padding set on every operation (bytes), to make bodies large.
    pad: int = 0
    producers: int = 4
    #: Each producer pauses ``pause`` seconds after every ``burst`` operations, so
    #: batches leave while it produces (many small requests) instead of all at the end.
    burst: int = 6
    pause: float = 0.002


@dataclass
class Run:
    """Everything one run produced."""

    name: str
    workload: Workload
    ops: list[Identify]
    keys: list[str]
    receipts: list[aa.Receipt | None]
    calls: Counter[int]
    outcomes: dict[int, aa.Outcome]
    raised: dict[int, BaseException] = field(default_factory=dict)
    stats: aa.ClientStats | None = None
    undelivered: list[Identify] = field(default_factory=list)
    elapsed: float = 0.0
    seq_of: dict[int, int] = field(default_factory=dict)

    def seq(self, op: Identify) -> int:
        return self.seq_of[id(op)]


async def wait_until(condition: Callable[[], bool], within: float = 20.0) -> None:
    """Wait until ``condition()`` holds, or fail after ``within`` seconds. For states
    that span components (client counters, emulator stats) and have no event to await."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polling a condition with a deadline
            await asyncio.sleep(0.002)


def texts_produced(run: Run, records: Iterable[logging.LogRecord]) -> list[str]:
    """Every log line (with its traceback), repr and exception message a run produced."""
    texts: list[str] = []
    formatter = logging.Formatter()
    for record in records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append(formatter.formatException(record.exc_info))
    texts.extend(repr(r) for r in run.receipts)
    texts.extend(repr(o) for o in run.outcomes.values())
    texts.extend(f"{exc!r} {exc}" for exc in run.raised.values())
    texts.append(repr(run.stats))
    return texts


def assert_no_secrets(texts: Iterable[str]) -> int:
    """No text contains the API key or the secret key; returns how many were checked."""
    count = 0
    for text in texts:
        count += 1
        for secret in (KEY, SECRET):
            assert secret not in text, f"a secret leaked: {text[:200]!r}"
    return count


def build(workload: Workload) -> tuple[list[Identify], list[str], list[int]]:
    """The operations (in sequence order), their lane keys, and their owner producer."""
    rng = random.Random(workload.seed)
    identities: list[tuple[str | None, str | None]] = []
    for i in range(workload.users):
        if i < workload.bad:
            identities.append((None, f"b-{i:02d}"))
            continue
        draw = rng.random()
        if draw < workload.device_share:
            identities.append((None, f"dvc-{i:04d}"))
        elif draw < workload.device_share + workload.both_share:
            identities.append((f"both-{i:04d}", f"bdev-{i:04d}"))
        else:
            identities.append((f"user-{i:04d}", None))
    hot = [i for i in range(workload.hot)]
    ops: list[Identify] = []
    keys: list[str] = []
    owners: list[int] = []
    for seq in range(workload.ops):
        if hot and rng.random() < workload.hot_share:
            index = rng.choice(hot)
        else:
            index = rng.randrange(workload.users)
        user_id, device_id = identities[index]
        identify = Identify(user_id=user_id, device_id=device_id).append("log", seq)
        if workload.pad:
            identify.set("pad", "x" * workload.pad)
        ops.append(identify)
        key = user_id if user_id is not None else device_id
        assert key is not None
        keys.append(key)
        owners.append(index % workload.producers)
    return ops, keys, owners


async def drive(
    name: str,
    url: str,
    config: aa.ClientConfig,
    workload: Workload,
    *,
    during: Callable[[AmplitudeClient], Coroutine[Any, Any, None]] | None = None,
    flush_timeout: float = 60.0,
    flush: bool = True,
) -> Run:
    """Run ``workload`` through a client at ``url``; ``during`` runs alongside the
    producers (to inject faults); then flush (unless ``flush=False``) and close."""
    ops, keys, owners = build(workload)
    run = Run(
        name=name,
        workload=workload,
        ops=ops,
        keys=keys,
        receipts=[None] * len(ops),
        calls=Counter(),
        outcomes={},
        seq_of={id(op): seq for seq, op in enumerate(ops)},
    )

    def on_outcome(op: Identify, outcome: aa.Outcome) -> None:
        seq = run.seq_of[id(op)]
        run.calls[seq] += 1
        run.outcomes[seq] = outcome

    def on_undelivered(undelivered: list[Identify]) -> None:
        run.undelivered.extend(undelivered)

    config = config.replace(on_outcome=on_outcome, on_undelivered=on_undelivered)
    started = time.perf_counter()
    amp = AmplitudeClient(KEY, server_url=url, config=config)

    async def produce(owner: int) -> None:
        sent = 0
        for seq, op in enumerate(ops):
            if owners[seq] != owner:
                continue
            try:
                run.receipts[seq] = await amp.identify(op)
            except aa.QueueFull as exc:
                run.raised[seq] = exc
            sent += 1
            if workload.burst and sent % workload.burst == 0:
                await asyncio.sleep(workload.pause)

    async with amp:
        producers = [asyncio.create_task(produce(p)) for p in range(workload.producers)]
        helper = asyncio.create_task(during(amp)) if during is not None else None
        await asyncio.wait_for(asyncio.gather(*producers), flush_timeout)
        if helper is not None:
            await asyncio.wait_for(helper, flush_timeout)
        if flush:
            await asyncio.wait_for(amp.flush(), flush_timeout)
    run.stats = amp.stats()
    run.elapsed = time.perf_counter() - started
    return run


@dataclass
class Expect:
    """What a scenario allows."""

    #: Failure reasons allowed (anything else fails the check).
    reasons: frozenset[FailureReason] = frozenset()
    #: Lane keys whose every operation must fail with reason invalid.
    invalid_keys: frozenset[str] = frozenset()
    #: Whether a duplicate application of an operation may be seen at all.
    duplicates: bool = False
    #: Whether every delivered operation flagged possible_duplicate must really have
    #: been applied more than once (true when every ambiguous answer followed an apply).
    exact_duplicates: bool = False
    #: Every operation must be Delivered.
    must_deliver_all: bool = False
    #: A request the client gave up on (timeout) may be applied by the server later,
    #: after newer operations of the same identity: allow (and count) stale endings.
    late_apply: bool = False


@dataclass
class Checked:
    """Counts from :func:`check`, for the summary line."""

    applications: int
    duplicate_applications: int
    duplicated_ops: int
    stale_endings: int
    delivered: int
    failed: Counter[str]
    possible_duplicates: int

    def line(self, run: Run, faults: dict[str, int], requests: int) -> str:
        failed = ",".join(f"{k}={v}" for k, v in sorted(self.failed.items())) or "none"
        injected = ",".join(f"{k}={v}" for k, v in sorted(faults.items())) or "none"
        stats = run.stats
        assert stats is not None
        return (
            f"ops={len(run.ops)} identities={len(set(run.keys))} requests={requests} "
            f"faults[{injected}] 429s={stats.throttle_responses} splits={stats.splits} "
            f"receipts={sum(run.calls.values())} "
            f"delivered={self.delivered} failed[{failed}] "
            f"applied={self.applications} duplicate_applications={self.duplicate_applications} "
            f"duplicated_ops={self.duplicated_ops} possible_duplicate={self.possible_duplicates} "
            f"stale_endings={self.stale_endings} "
            f"{run.elapsed:.2f}s"
        )


def applied_seqs(applied: Iterable[AppliedIdentification]) -> list[tuple[int, str, list[int]]]:
    """(request, lane key, appended sequence numbers) for every applied identification.
    ``request`` is made unique across emulators by the caller's ordering."""
    out: list[tuple[int, str, list[int]]] = []
    for entry in applied:
        key = entry.user_id if entry.user_id is not None else entry.device_id
        assert key is not None
        props = entry.identification.get("user_properties") or {}
        value = (props.get("$append") or {}).get("log")
        if value is None:
            continue
        seqs = list(value) if isinstance(value, list) else [value]
        out.append((entry.request, key, seqs))
    return out


def check(run: Run, applied: Sequence[tuple[int, str, list[int]]], expect: Expect) -> Checked:
    """Assert the promises on a finished run (see the module docstring)."""
    n = len(run.ops)
    # -- exactly one outcome per operation ------------------------------------------------
    extra = {seq: count for seq, count in run.calls.items() if count != 1}
    assert not extra, f"operations with more than one outcome: {dict(list(extra.items())[:10])}"
    accepted = [seq for seq in range(n) if seq not in run.raised]
    missing = [seq for seq in accepted if run.calls[seq] != 1]
    assert not missing, f"{len(missing)} operations without an outcome, e.g. {missing[:10]}"
    for seq in accepted:
        receipt = run.receipts[seq]
        assert receipt is not None and receipt.done(), f"receipt {seq} unresolved"
        assert receipt.outcome is run.outcomes[seq], f"receipt {seq} disagrees with on_outcome"
    for seq in run.raised:
        assert run.calls[seq] == 0, f"operation {seq} raised QueueFull and still got an outcome"
    stats = run.stats
    assert stats is not None
    assert stats.enqueued == len(accepted)
    assert stats.delivered + stats.failed_total == len(accepted), stats
    assert stats.queued == 0 and stats.in_flight == 0, stats

    # -- outcomes against the applied log ----------------------------------------------------
    times_applied: Counter[int] = Counter()
    for _, _, seqs in applied:
        times_applied.update(seqs)
    delivered = [seq for seq in accepted if isinstance(run.outcomes[seq], Delivered)]
    failed: Counter[str] = Counter()
    for seq in accepted:
        outcome = run.outcomes[seq]
        if isinstance(outcome, Delivered):
            assert times_applied[seq] >= 1, f"operation {seq} Delivered but never applied"
            continue
        assert isinstance(outcome, Failed)
        failed[outcome.reason.value] += 1
        assert outcome.reason in expect.reasons, (
            f"operation {seq} ({run.keys[seq]}) failed with unexpected reason "
            f"{outcome.reason.value}: {outcome.message}"
        )
        assert outcome.message, f"operation {seq} failed without a message"
        assert outcome.maybe_applied or times_applied[seq] == 0, (
            f"operation {seq} failed {outcome.reason.value} with maybe_applied=False "
            f"but the server applied it"
        )
        if outcome.reason in NEVER_APPLIED:
            assert times_applied[seq] == 0, (
                f"operation {seq} failed {outcome.reason.value} but was applied"
            )
    if expect.must_deliver_all:
        assert not failed, f"expected every operation delivered, got failures {dict(failed)}"
    for seq in accepted:
        if run.keys[seq] in expect.invalid_keys:
            outcome = run.outcomes[seq]
            assert isinstance(outcome, Failed) and outcome.reason is FailureReason.INVALID, (
                f"operation {seq} of {run.keys[seq]} should have failed invalid: {outcome}"
            )
    if run.undelivered:
        shutdown = {
            seq
            for seq in accepted
            if isinstance(run.outcomes[seq], Failed)
            and run.outcomes[seq].reason is FailureReason.SHUTDOWN  # type: ignore[union-attr]
        }
        assert {run.seq(op) for op in run.undelivered} == shutdown

    # -- per-identity order ---------------------------------------------------------------
    seen: set[int] = set()
    last_new: dict[str, int] = {}
    duplicate_applications = 0
    for request, key, seqs in applied:
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), (
            f"request {request}: {key}'s operations out of order within one request: {seqs}"
        )
        for seq in seqs:
            assert run.keys[seq] == key, f"operation {seq} applied under {key}"
            if seq in seen:
                duplicate_applications += 1
                receipt = run.receipts[seq]
                assert receipt is not None and receipt._ambiguous, (
                    f"operation {seq} of {key} applied twice without an ambiguous attempt"
                )
                continue
            seen.add(seq)
            previous = last_new.get(key, -1)
            assert seq > previous, (
                f"{key}: operation {seq} first applied after operation {previous} "
                "(enqueue order broken)"
            )
            last_new[key] = seq
    # The last application of each identity is its newest applied operation: a replay
    # after an ambiguous answer goes on to the newest, so the final state is right.
    last_applied: dict[str, int] = {}
    newest_applied: dict[str, int] = {}
    for _, key, seqs in applied:
        last_applied[key] = seqs[-1]
        newest_applied[key] = max(newest_applied.get(key, -1), seqs[-1])
    stale = sorted(key for key, seq in last_applied.items() if seq != newest_applied[key])
    if not expect.late_apply:
        assert not stale, f"identities whose last application is not their newest: {stale[:10]}"
    duplicated = {seq for seq, count in times_applied.items() if count > 1}
    if not expect.duplicates:
        assert not duplicated, f"unexpected duplicate applications: {sorted(duplicated)[:10]}"
    flagged = {
        seq
        for seq in delivered
        if run.outcomes[seq].possible_duplicate  # type: ignore[union-attr]
    }
    assert stats.possible_duplicates == len(flagged)
    duplicated_delivered = duplicated & set(delivered)
    assert duplicated_delivered <= flagged, (
        f"applied twice but not flagged possible_duplicate: "
        f"{sorted(duplicated_delivered - flagged)[:10]}"
    )
    if expect.exact_duplicates:
        assert flagged == duplicated_delivered, (
            f"flagged possible_duplicate but applied once: {sorted(flagged - duplicated)[:10]}"
        )
    return Checked(
        applications=sum(times_applied.values()),
        duplicate_applications=duplicate_applications,
        duplicated_ops=len(duplicated),
        stale_endings=len(stale),
        delivered=len(delivered),
        failed=failed,
        possible_duplicates=len(flagged),
    )
