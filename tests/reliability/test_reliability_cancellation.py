"""Cancellation: callers cancelled while waiting leave nothing half-queued, and cancelling
the task that owns the client still gives every receipt its outcome."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Failed, FailureReason
from amplitude_async.emulator import Emulator, Faults

from ..conftest import fast_config, op
from .harness import KEY, SECRET, applied_seqs, wait_until


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_keys=[KEY], secret_key=SECRET, eps_threshold=None) as emulator:
        yield emulator


def applied_users(emu: Emulator) -> list[str]:
    return [key for _, key, _ in applied_seqs(emu.applied)]


async def test_cancelled_waiters_leave_nothing_half_queued(emu: Emulator) -> None:
    emu.pause()
    cfg = fast_config(queue_max=20, batch_max_items=5)
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg) as amp:
        first = [await amp.identify(op(f"user-a{i:03d}", seq=i)) for i in range(20)]
        waiting_ops = [op(f"user-w{i:03d}", seq=100 + i) for i in range(60)]
        waiters = [asyncio.ensure_future(amp.identify(o)) for o in waiting_ops]
        await wait_until(lambda: amp.stats().waiting == 60)
        cancelled = set(range(0, 60, 2))
        for i in cancelled:
            waiters[i].cancel()
        emu.resume()
        results = await asyncio.wait_for(
            asyncio.gather(*waiters, return_exceptions=True), timeout=20
        )
        await asyncio.wait_for(amp.flush(), 20)
        stats = amp.stats()
    for i, result in enumerate(results):
        if i in cancelled:
            assert isinstance(result, asyncio.CancelledError)
            # Not frozen: the caller may queue it again.
            waiting_ops[i].set("again", True)
        else:
            assert isinstance(result, aa.Receipt) and result.outcome is not None
            assert result.outcome.ok
    assert all(r.outcome is not None and r.outcome.ok for r in first)
    assert stats.enqueued == 20 + 30 and stats.delivered == 50 and stats.queued == 0
    users = set(applied_users(emu))
    assert users.isdisjoint({f"user-w{i:03d}" for i in cancelled})
    assert {f"user-w{i:03d}" for i in range(60) if i not in cancelled} <= users


async def test_cancelling_the_owner_during_the_shutdown_drain_resolves_every_receipt(
    emu: Emulator, tmp_path: Path
) -> None:
    """The owner leaves ``async with`` normally, aclose() waits to drain a stalled server,
    and the owner is cancelled meanwhile: every receipt still resolves, nothing runs on."""
    emu.pause()
    spool = tmp_path / "spool.jsonl"
    receipts: list[aa.Receipt] = []
    draining = asyncio.Event()
    cfg = fast_config(shutdown_timeout=30.0, spool_path=str(spool))
    amp = AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg)

    async def owner() -> None:
        async with amp:
            for i in range(40):
                receipts.append(await amp.identify(op(f"user-{i:03d}", seq=i)))
            draining.set()

    task = asyncio.ensure_future(owner())
    await asyncio.wait_for(draining.wait(), 5)
    await wait_until(lambda: amp.stats().in_flight > 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert amp.closed
    assert len(receipts) == 40
    assert all(
        isinstance(r.outcome, Failed) and r.outcome.reason is FailureReason.SHUTDOWN
        for r in receipts
    )
    assert len(spool.read_text().splitlines()) == 40
    assert amp.stats().in_flight == 0


async def test_cancelling_the_owner_with_requests_in_flight_resolves_every_receipt(
    emu: Emulator, tmp_path: Path
) -> None:
    emu.set_faults(Faults(rate_hang=1.0, hang_seconds=30))
    spool = tmp_path / "spool.jsonl"
    receipts: list[aa.Receipt] = []
    started = asyncio.Event()
    cfg = fast_config(spool_path=str(spool), batch_max_items=10)
    amp = AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg)

    async def owner() -> None:
        async with amp:
            for i in range(100):
                receipts.append(await amp.identify(op(f"user-{i:03d}", seq=i)))
            started.set()
            await asyncio.Event().wait()

    task = asyncio.ensure_future(owner())
    await asyncio.wait_for(started.wait(), 5)
    await wait_until(lambda: amp.stats().in_flight == cfg.max_in_flight)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    reasons = {r.outcome.reason for r in receipts if isinstance(r.outcome, Failed)}
    assert all(r.done() for r in receipts) and reasons == {FailureReason.SHUTDOWN}
    lines = [json.loads(line) for line in spool.read_text().splitlines()]
    assert sorted(line["user_id"] for line in lines) == [f"user-{i:03d}" for i in range(100)]


async def test_threadsafe_caller_timing_out_leaves_nothing_queued(emu: Emulator) -> None:
    """identify_threadsafe(timeout=...) that times out while intake is full must not
    queue the operation later behind the caller's back."""
    emu.pause()
    cfg = fast_config(queue_max=2)
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg) as amp:
        for i in range(2):
            await amp.identify(op(f"user-a{i:03d}", seq=i))
        late = op("user-timed-out", seq=99)
        raised: list[BaseException] = []

        def call() -> None:
            try:
                amp.identify_threadsafe(late, timeout=0.2)
            except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                raised.append(exc)

        thread = threading.Thread(target=call)
        thread.start()
        await asyncio.to_thread(thread.join, 5)
        assert len(raised) == 1 and isinstance(raised[0], TimeoutError)
        emu.resume()
        await asyncio.wait_for(amp.flush(), 10)
        await asyncio.sleep(0)
        assert amp.stats().enqueued == 2
    assert "user-timed-out" not in applied_users(emu)


async def test_threadsafe_futures_resolve_at_shutdown(emu: Emulator) -> None:
    """A thread's outcome future gets its outcome also when the client closes first."""
    emu.pause()
    cfg = fast_config(shutdown_timeout=0.2)
    futures: list[concurrent.futures.Future[aa.Outcome]] = []
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg) as amp:

        def call() -> None:
            for i in range(10):
                futures.append(amp.identify_threadsafe(op(f"user-{i:03d}", seq=i)))

        await asyncio.to_thread(call)
    _, pending = await asyncio.to_thread(concurrent.futures.wait, futures, timeout=2)
    assert not pending, f"{len(pending)} thread futures never got an outcome"
    outcomes = [f.result() for f in futures]
    assert all(isinstance(o, Failed) and o.reason is FailureReason.SHUTDOWN for o in outcomes)


async def test_cancelling_a_flush_caller_leaves_the_client_working(emu: Emulator) -> None:
    emu.pause()
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config()) as amp:
        receipts = [await amp.identify(op(f"user-{i:03d}", seq=i)) for i in range(10)]
        flusher = asyncio.ensure_future(amp.flush())
        await asyncio.sleep(0.05)
        flusher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flusher
        emu.resume()
        await asyncio.wait_for(amp.flush(), 10)
        assert all(r.outcome is not None and r.outcome.ok for r in receipts)


async def test_a_cancelled_awaiter_of_a_receipt_does_not_cancel_the_operation(
    emu: Emulator,
) -> None:
    emu.pause()
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config()) as amp:
        receipt = await amp.identify(op("user-00001", seq=1))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_await(receipt), 0.05)
        emu.resume()
        outcome = await asyncio.wait_for(_await(receipt), 10)
    assert outcome.ok and "user-00001" in applied_users(emu)


async def _await(receipt: aa.Receipt) -> aa.Outcome:
    return await receipt


async def test_threads_under_faults_and_backpressure_get_exactly_one_outcome_each(
    emu: Emulator, summary: Callable[[str, str], None]
) -> None:
    """Four threads push through identify_threadsafe() into a small queue while the
    server fails a third of the requests: every future gets one outcome, every
    operation is applied, each user's operations first applied in order."""
    emu.set_faults(Faults(rate_503=0.2, rate_5xx_after=0.1, rate_reset=0.05))
    calls: Counter[int] = Counter()
    cfg = fast_config(
        queue_max=50, batch_max_items=10, on_outcome=lambda op, _o: calls.update([id(op)])
    )
    per_thread = 300
    ops = [
        [op(f"user-t{t}-{i % 20:03d}", seq=t * per_thread + i) for i in range(per_thread)]
        for t in range(4)
    ]
    futures: list[concurrent.futures.Future[aa.Outcome]] = []
    lock = threading.Lock()
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg) as amp:

        def push(mine: list[aa.Identify]) -> None:
            for identify in mine:
                future = amp.identify_threadsafe(identify, timeout=30)
                with lock:
                    futures.append(future)

        await asyncio.gather(*(asyncio.to_thread(push, mine) for mine in ops))
        await asyncio.wait_for(amp.flush(), 30)
        stats = amp.stats()
    outcomes = [f.result(timeout=0) for f in futures]
    assert len(outcomes) == 4 * per_thread and all(o.ok for o in outcomes)
    assert sorted(calls.values()) == [1] * (4 * per_thread)
    first: dict[str, list[int]] = {}
    seen: set[int] = set()
    for _, key, seqs in applied_seqs(emu.applied):
        for seq in seqs:
            if seq not in seen:
                seen.add(seq)
                first.setdefault(key, []).append(seq)
    assert seen == set(range(4 * per_thread))
    assert all(seqs == sorted(seqs) for seqs in first.values())
    summary(
        "threads",
        f"threads=4 ops={4 * per_thread} queue_max=50 requests={emu.stats().requests} "
        f"faults={sum(emu.stats().faults.values())} possible_duplicate={stats.possible_duplicates}",
    )
