"""Shutdown under each fault: aclose() resolves every receipt within shutdown_timeout
(plus a small margin), spools exactly what it did not deliver, and re-sending the spool
(through a new client, and through ``amplitude-async import``) delivers it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Delivered, Failed, FailureReason, Identify
from amplitude_async.emulator import Emulator, Faults
from amplitude_async.testing import HttpRequest, HttpResponse, MockTransport

from ..conftest import fast_config
from .harness import KEY, SECRET, Workload, applied_seqs, build, wait_until

SHUTDOWN_TIMEOUT = 0.5
#: aclose() may take this much longer than shutdown_timeout: cancelling in-flight
#: requests, writing the spool in a worker thread, closing the session.
MARGIN = 0.5

Summary = Callable[[str, str], None]


def _hang(emu: Emulator) -> None:
    emu.set_faults(Faults(rate_hang=1.0, hang_seconds=60))


def _paused(emu: Emulator) -> None:
    emu.pause()


def _503(emu: Emulator) -> None:
    emu.set_faults(Faults(rate_503=1.0))


def _500_applied(emu: Emulator) -> None:
    emu.set_faults(Faults(rate_5xx_after=1.0))


def _reset(emu: Emulator) -> None:
    emu.set_faults(Faults(rate_reset=1.0))


def _throttled(emu: Emulator) -> None:
    emu.throttle(users=[f"user-{i:04d}" for i in range(200)])


def _slow(emu: Emulator) -> None:
    emu.set_faults(Faults(latency=0.05))


def _healthy(emu: Emulator) -> None:
    pass


FAULTS: dict[str, Callable[[Emulator], None]] = {
    "healthy": _healthy,
    "slow": _slow,
    "hang": _hang,
    "paused": _paused,
    "503_always": _503,
    "500_applied_always": _500_applied,
    "reset_always": _reset,
    "throttled_past_shutdown": _throttled,
    "server_down": _healthy,  # the emulator is stopped before the client starts
}


async def _close_under(
    name: str, tmp_path: Path
) -> tuple[list[Identify], list[aa.Receipt], list[dict[str, Any]], float, Emulator]:
    """Queue a workload against a faulty emulator, close, and return what was spooled."""
    spool = tmp_path / f"{name}.jsonl"
    emu = Emulator(api_keys=[KEY], secret_key=SECRET, eps_threshold=None)
    await emu.start()
    FAULTS[name](emu)
    if name == "server_down":
        await emu.close()
    ops, _, _ = build(Workload(ops=1500, users=150, device_share=0, both_share=0))
    cfg = fast_config(
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        request_timeout=5.0,
        retry_deadline=60.0,
        throttle_hold=30.0,
        batch_max_items=25,
        spool_path=str(spool),
    )
    amp = AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg)
    try:
        async with amp:
            receipts = [await amp.identify(op) for op in ops]
            await wait_until(lambda: amp.stats().requests > 0 or name == "server_down")
            started = time.perf_counter()
            returned = await amp.aclose()
            elapsed = time.perf_counter() - started
    finally:
        await emu.close()
    lines = [json.loads(line) for line in spool.read_text().splitlines()] if spool.exists() else []
    # Each line is the wire identification plus the _spool annotation (maybe_applied).
    assert [op.to_dict() for op in returned] == [
        {k: v for k, v in line.items() if k != "_spool"} for line in lines
    ]
    assert all(isinstance(line["_spool"]["maybe_applied"], bool) for line in lines)
    return ops, receipts, lines, elapsed, emu


def _seqs(identification: dict[str, Any]) -> list[int]:
    value = identification["user_properties"]["$append"]["log"]
    return list(value) if isinstance(value, list) else [value]


async def _resend(lines: list[dict[str, Any]]) -> Emulator:
    """Re-send spooled lines through a new client into a fresh emulator."""
    emu = Emulator(api_keys=[KEY], secret_key=SECRET, eps_threshold=None)
    await emu.start()
    try:
        async with AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config()) as amp:
            receipts = [await amp.identify(Identify.from_dict(line)) for line in lines]
            await asyncio.wait_for(amp.flush(), 20)
        assert all(isinstance(r.outcome, Delivered) for r in receipts)
    finally:
        await emu.close()
    return emu


@pytest.mark.parametrize("name", list(FAULTS))
async def test_aclose_under_fault_resolves_spools_and_the_spool_delivers(
    name: str, tmp_path: Path, summary: Summary
) -> None:
    ops, receipts, lines, elapsed, first = await _close_under(name, tmp_path)
    # Every receipt resolved, in time, with Delivered or Failed(shutdown).
    assert elapsed <= SHUTDOWN_TIMEOUT + MARGIN, f"aclose() took {elapsed:.2f}s"
    outcomes = [r.outcome for r in receipts]
    assert all(o is not None for o in outcomes)
    failures = {seq: o for seq, o in enumerate(outcomes) if isinstance(o, Failed)}
    assert {o.reason for o in failures.values()} <= {FailureReason.SHUTDOWN}
    failed = sorted(failures)
    # Exactly the operations failed with "shutdown" were spooled, each once.
    spooled = [seq for line in lines for seq in _seqs(line)]
    assert sorted(spooled) == failed
    # Spool lines keep each identity's order.
    per_user: dict[str, list[int]] = {}
    for line in lines:
        per_user.setdefault(line["user_id"], []).extend(_seqs(line))
    assert all(seqs == sorted(seqs) for seqs in per_user.values())
    if name == "healthy":
        assert not failed
    elif name != "slow":
        assert len(failed) > 1000, "the fault should have kept most operations undelivered"
    # Re-sending the spool delivers it: together, every operation reached a server.
    second = await _resend(lines)
    delivered_first = {s for _, _, seqs in applied_seqs(first.applied) for s in seqs}
    delivered_second = [s for _, _, seqs in applied_seqs(second.applied) for s in seqs]
    assert sorted(delivered_second) == sorted(spooled)
    assert delivered_first | set(delivered_second) == set(range(len(ops)))
    if name != "500_applied_always":
        # Only an ambiguous answer may have applied something that was then spooled.
        assert delivered_first.isdisjoint(delivered_second)
    summary(
        f"shutdown[{name}]",
        f"ops={len(ops)} aclose={elapsed:.3f}s (timeout {SHUTDOWN_TIMEOUT}s) "
        f"delivered={len(ops) - len(failed)} spooled={len(spooled)} "
        f"resent_delivered={len(delivered_second)} "
        f"applied_before_and_resent={len(delivered_first & set(delivered_second))}",
    )


async def test_the_cli_import_delivers_a_spool(tmp_path: Path, summary: Summary) -> None:
    """``amplitude-async import`` of a shutdown spool delivers every line, in order."""
    pytest.importorskip(
        "amplitude_async._cli._import", reason="the CLI import command is not in this checkout"
    )
    _, _, lines, _, _ = await _close_under("hang", tmp_path)
    spool = tmp_path / "hang.jsonl"
    assert lines
    async with Emulator(api_keys=[KEY], secret_key=SECRET, eps_threshold=None) as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMPLITUDE_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from amplitude_async._cli import main; main()",
            "import",
            str(spool),
            "--no-progress",
            "--api-key",
            KEY,
            "--server-url",
            emu.identify_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, (out.decode(), err.decode())
        applied = applied_seqs(emu.applied)
    spooled = [seq for line in lines for seq in _seqs(line)]
    assert sorted(s for _, _, seqs in applied for s in seqs) == sorted(spooled)
    per_user: dict[str, list[int]] = {}
    for _, key, seqs in applied:
        per_user.setdefault(key, []).extend(seqs)
    assert all(seqs == sorted(seqs) for seqs in per_user.values())
    assert KEY not in out.decode() + err.decode()
    summary("shutdown[cli_import]", f"spooled={len(spooled)} imported_and_applied={len(spooled)}")


async def test_a_spool_that_cannot_be_written_still_closes_and_hands_everything_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The spool path is a directory: aclose() still resolves, closes, calls
    on_undelivered and returns the operations, logs the failure, and raises it."""
    handed: list[Identify] = []
    cfg = fast_config(shutdown_timeout=0.1, spool_path=str(tmp_path), on_undelivered=handed.extend)
    amp = AmplitudeClient(KEY, server_url="http://127.0.0.1:9/identify", config=cfg)
    caplog.set_level(logging.ERROR, logger="amplitude_async")
    await amp.__aenter__()
    receipts = [await amp.identify(Identify(user_id=f"user-{i:04d}").set("n", i)) for i in range(5)]
    with pytest.raises(OSError):
        await amp.aclose()
    assert amp.closed
    assert all(
        isinstance(r.outcome, Failed) and r.outcome.reason is FailureReason.SHUTDOWN
        for r in receipts
    )
    assert len(handed) == 5
    assert any("spool" in record.getMessage() for record in caplog.records)


async def test_aclose_from_another_task_closes_without_harming_the_opener() -> None:
    """The client's tasks belong to a task of its own, not to the task that opened it:
    another task may close it (a signal handler, a supervisor), the opener runs on
    untouched, and the opener's later aclose() is harmless."""
    async with Emulator(api_keys=[KEY], secret_key=SECRET, eps_threshold=None) as emu:
        amp = AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config())
        opened = asyncio.Event()
        may_close = asyncio.Event()

        async def opener() -> list[Identify]:
            await amp.__aenter__()
            opened.set()
            await may_close.wait()  # the opener's own work; must not be cancelled
            return await amp.aclose()

        task = asyncio.ensure_future(opener())
        await asyncio.wait_for(opened.wait(), 5)
        receipt = await amp.identify(Identify(user_id="user-00001").set("a", 1))
        assert await amp.aclose() == []
        assert amp.closed and receipt.outcome is not None and receipt.outcome.ok
        await asyncio.sleep(0)
        assert not task.done()
        may_close.set()
        assert await asyncio.wait_for(task, 5) == []
    assert emu.user("user-00001") == {"a": 1}


@pytest.mark.parametrize("bound", ["wait_for", "move_on_after"])
async def test_aclose_under_a_timeout_of_the_callers_own(bound: str) -> None:
    """asyncio.wait_for (a new task on 3.11) or an anyio scope around aclose(): both used
    to fail (wrong task; anyio scopes exited out of order). Now the close completes and
    a timeout that fires leaves every receipt resolved."""
    import anyio

    async with Emulator(api_keys=[KEY], secret_key=SECRET, eps_threshold=None) as emu:
        amp = AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config())
        await amp.__aenter__()
        receipts = [
            await amp.identify(Identify(user_id=f"user-{i:05d}").set("a", i)) for i in range(50)
        ]
        if bound == "wait_for":
            assert await asyncio.wait_for(amp.aclose(), 5) == []
        else:
            with anyio.move_on_after(5) as scope:
                assert await amp.aclose() == []
            assert not scope.cancelled_caught
    assert amp.closed
    assert all(r.outcome is not None and r.outcome.ok for r in receipts)


async def test_a_failed_background_task_refuses_intake_and_aclose_fails_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in the pipeline must be loud, not a client that queues forever: intake is
    refused with the cause attached, a waiting flush() raises, and aclose() fails what
    is queued with reason shutdown, then raises the bug."""

    def broken_transport(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("a bug in the transport")

    amp = AmplitudeClient(KEY, config=fast_config(), transport=MockTransport(broken_transport))
    await amp.__aenter__()
    receipt = await amp.identify(Identify(user_id="user-00001").set("a", 1))
    with caplog.at_level(logging.ERROR, logger="amplitude_async"):
        with pytest.raises(aa.ClientClosed, match="background task failed") as refused:
            await asyncio.wait_for(amp.flush(), 5)
        assert "background task failed" in caplog.text
    assert isinstance(refused.value.__cause__, BaseExceptionGroup)
    with pytest.raises(aa.ClientClosed, match="background task failed"):
        await amp.identify(Identify(user_id="user-00002").set("a", 1))
    with pytest.raises(BaseExceptionGroup) as raised:
        await asyncio.wait_for(amp.aclose(), 5)
    assert raised.value.subgroup(RuntimeError) is not None
    assert amp.closed
    outcome = receipt.outcome
    assert isinstance(outcome, Failed) and outcome.reason is FailureReason.SHUTDOWN
