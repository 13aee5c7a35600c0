"""``amplitude-async emulator``: a real process serving on 127.0.0.1, stopped by SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amplitude_async._cli import app

SCRIPT = Path(sys.executable).with_name("amplitude-async")
pytestmark = pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed")


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [
            str(SCRIPT), "emulator", "--port", "0", "--api-key", "emu-key",
            "--secret-key", "emu-secret", "--eps-threshold", "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        # The first line names the address once it is bound (readline waits for it).
        first = process.stdout.readline()
        assert first.startswith("Amplitude emulator listening on http://127.0.0.1:"), first
        yield process, first.split()[-1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_the_emulator_command_serves_and_stops_on_sigterm(
    served: tuple[subprocess.Popen[str], str],
) -> None:
    process, base = served
    sent = CliRunner().invoke(
        app,
        ["identify", "--user-id", "user-000001", "--add", "logins=2"],
        env={"AMPLITUDE_API_KEY": "emu-key", "AMPLITUDE_SERVER_URL": f"{base}/identify"},
    )
    assert sent.exit_code == 0, sent.output
    refused = CliRunner().invoke(
        app,
        ["identify", "--user-id", "user-000001", "--add", "logins=2"],
        env={"AMPLITUDE_API_KEY": "other-key", "AMPLITUDE_SERVER_URL": f"{base}/identify"},
    )
    assert refused.exit_code == 1  # only --api-key is accepted
    looked_up = CliRunner().invoke(
        app,
        ["profile", "user-000001", "--json"],
        env={
            "AMPLITUDE_SECRET_KEY": "emu-secret",
            "AMPLITUDE_PROFILE_URL": f"{base}/v1/userprofile",
        },
    )
    assert looked_up.exit_code == 0, looked_up.output
    assert json.loads(looked_up.stdout)["amp_props"] == {"logins": 2}
    with urllib.request.urlopen(f"{base}/_emulator/stats", timeout=10) as answer:
        stats = json.load(answer)
    assert stats["applied"] == 1 and stats["by_status"] == {"200": 2, "400": 1}

    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=15)
    assert process.returncode == 0
    assert "Amplitude emulator stopped" in out


def test_bad_flags_are_refused_before_serving() -> None:
    result = CliRunner().invoke(app, ["emulator", "--fault-rate", "2"])
    assert result.exit_code == 2
    assert "fault-rate" in result.output
