"""``amplitude-async kafka-worker``: help, bad arguments, and SIGTERM: drain, commit, exit 0."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import amplitude_async as aa
from amplitude_async._cli import app
from amplitude_async.emulator import Emulator
from amplitude_async.kafka import IdentifyProducer

from .conftest import Broker, eventually

KEY = "kafka-cli-key-0123"
SCRIPT = Path(sys.executable).with_name("amplitude-async")


def test_help_has_an_example_and_names_every_flag() -> None:
    result = CliRunner().invoke(app, ["kafka-worker", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example:" in result.stdout and "amplitude-async kafka-worker" in result.stdout
    for flag in (
        "--bootstrap-servers",
        "--topic",
        "--group",
        "--dead-letter-topic",
        "--drain-timeout",
    ):
        assert flag in result.stdout
    assert "AMPLITUDE_API_KEY" in result.stdout


def test_help_does_not_import_aiokafka() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from amplitude_async._cli import app;"
        "r = CliRunner().invoke(app, ['kafka-worker', '--help']); assert r.exit_code == 0;"
        "print([m for m in ('aiokafka', 'amplitude_async.kafka') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_a_drain_timeout_past_the_rebalance_timeout_is_refused() -> None:
    result = CliRunner().invoke(
        app,
        [
            "kafka-worker",
            "--bootstrap-servers=127.0.0.1:1",
            "--topic=t",
            "--group=g",
            f"--api-key={KEY}",
            "--drain-timeout=60",
            "--rebalance-timeout=30",
        ],
        terminal_width=200,
    )
    assert result.exit_code == 2
    words = " ".join(result.output.replace("│", " ").split())  # unwrap rich's error box
    assert "shorter than rebalance_timeout" in words
    assert KEY not in result.output


def test_the_api_key_is_required() -> None:
    result = CliRunner().invoke(
        app, ["kafka-worker", "--bootstrap-servers=127.0.0.1:1", "--topic=t", "--group=g"], env={}
    )
    assert result.exit_code == 2 and "API key" in result.output


@pytest.mark.timeout(90)
async def test_sigterm_drains_what_is_in_flight_commits_and_exits_0(broker: Broker) -> None:
    await broker.create_topic("cli-in", 2)
    users = [f"user-{u:04d}" for u in range(10)]
    async with IdentifyProducer(broker.bootstrap, "cli-in") as producer:
        metas = [
            await producer.send_and_wait(aa.Identify(user_id=u).append("log", i))
            for i in range(5)
            for u in users
        ]
    ends = {p: 1 + max(m.offset for m in metas if m.partition == p) for p in (0, 1)}
    async with Emulator(api_keys=[KEY], eps_threshold=None) as emu:
        emu.pause()  # requests arrive and wait: operations in flight when the signal comes
        proc = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            "kafka-worker",
            f"--bootstrap-servers={broker.bootstrap}",
            "--topic=cli-in",
            "--group=cli-group",
            f"--server-url={emu.identify_url}",
            f"--api-key={KEY}",
            "--drain-timeout=20",
            "--rebalance-timeout=30",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await eventually(lambda: emu.stats().requests >= 1, within=40)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(1.0)
            # Draining: still running, and nothing applied yet.
            assert proc.returncode is None and emu.stats().applied == 0
            emu.resume()
            out, err = await asyncio.wait_for(proc.communicate(), 40)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()[-2000:]
        assert all(emu.user(u) == {"log": [0, 1, 2, 3, 4]} for u in users)
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["delivered"] == summary["consumed"] == 50 and summary["stopped"] is None
    assert "SIGTERM" in err.decode() and KEY not in err.decode() + out.decode()
    assert await broker.committed("cli-in", "cli-group", 2) == ends


def test_unreachable_brokers_are_an_error_not_a_traceback() -> None:
    result = CliRunner().invoke(
        app,
        [
            "kafka-worker",
            "--bootstrap-servers=127.0.0.1:1",
            "--topic=t",
            "--group=g",
            f"--api-key={KEY}",
            "--json",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "error: Kafka:" in result.output and "Traceback" not in result.output
    assert KEY not in result.output
