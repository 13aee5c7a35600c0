"""Three worker processes, 6 partitions, 60 users x 100 $append, 429s, one worker SIGKILLed.

At the end every user's applied sequence covers all 100 operations, never skips forward
and ends at the last one. What the killed worker had sent but not committed is replayed
by the partition's next owner: those duplicates are counted and reported.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import amplitude_async as aa
from amplitude_async.emulator import Emulator
from amplitude_async.kafka import IdentifyProducer

from .conftest import Broker, eventually

KEY = "kafka-multi-key-0123"
USERS = [f"user-{u:04d}" for u in range(60)]
OPS = 100
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def check_sequence(log: list[Any]) -> int:
    """Assert the applied sequence is whole and ordered; return its replayed duplicates."""
    highest = -1
    for value in log:
        # A replay goes back (a suffix again); nothing ever jumps past the next one.
        assert value <= highest + 1, f"skipped forward to {value} after {highest}: {log}"
        highest = max(highest, value)
    assert set(log) == set(range(OPS)), log
    assert log[-1] == OPS - 1, log
    return len(log) - OPS


async def spawn(broker: Broker, emu: Emulator, index: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.kafka.worker_main",
        "--bootstrap",
        broker.bootstrap,
        "--topic",
        "multi",
        "--group",
        "multi-group",
        "--server-url",
        emu.identify_url,
        "--api-key",
        KEY,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def test_three_workers_one_killed_keep_every_users_order(
    broker: Broker, report: Callable[[str, str], None]
) -> None:
    started = time.monotonic()
    await broker.create_topic("multi", 6)
    async with IdentifyProducer(broker.bootstrap, "multi") as producer:
        for i in range(OPS):
            for user in USERS:
                await producer.send(aa.Identify(user_id=user).append("log", i))
        await producer.flush()
    # A low per-user rate: workers get 429s naming users, and hold them.
    async with Emulator(api_keys=[KEY], eps_threshold=2) as emu:
        workers = [await spawn(broker, emu, i) for i in range(3)]
        try:

            def applied() -> int:
                return sum(len((emu.user(u) or {}).get("log", [])) for u in USERS)

            await eventually(lambda: applied() >= 0.25 * len(USERS) * OPS, within=60)
            # Some users held for longer than the commit interval: their operations are
            # consumed and without an outcome when the victim dies, so its commit point
            # must be behind them.
            emu.throttle(users=USERS[:12])
            await asyncio.sleep(2.0)
            at_kill = applied()
            victim = workers[0]
            victim.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(victim.wait(), 10) == -signal.SIGKILL
            assert victim.stderr is not None
            lines = (await victim.stderr.read()).decode().splitlines()
            last = json.loads([line for line in lines if line.startswith('{"assigned"')][-1])
            print("victim at the kill:", last)
            assert last["assigned"] >= 1 and last["consumed"] > last["delivered"], last
            emu.unthrottle()
            assert at_kill < 0.9 * len(USERS) * OPS, "the kill came too late to mean anything"

            def finished() -> bool:
                for user in USERS:
                    log = (emu.user(user) or {}).get("log", [])
                    if not log or log[-1] != OPS - 1 or len(set(log)) != OPS:
                        return False
                return True

            await eventually(finished, within=80, every=0.2)
            for survivor in workers[1:]:
                survivor.send_signal(signal.SIGTERM)
            outputs = [await asyncio.wait_for(w.communicate(), 30) for w in workers[1:]]
        finally:
            for w in workers:
                if w.returncode is None:
                    w.kill()
                    await w.wait()
        assert [w.returncode for w in workers[1:]] == [0, 0], [o[1][-2000:] for o in outputs]
        summaries = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
        duplicates = {u: check_sequence(emu.user(u)["log"]) for u in USERS}  # type: ignore[index]
        throttled = emu.stats().throttled_requests
    replayed = sum(duplicates.values())
    users_replayed = sum(1 for n in duplicates.values() if n)
    elapsed = time.monotonic() - started
    line = (
        f"killed at {at_kill}/{len(USERS) * OPS} applied; replayed duplicates: {replayed} "
        f"in {users_replayed} users; 429 answers: {throttled}; took {elapsed:.1f} s"
    )
    report("multi-process", line)
    assert throttled > 0, "the emulator's rate limit never bit: the test did not test 429s"
    assert all(s["rebalances"] >= 2 for s in summaries), summaries  # took over the victim's
