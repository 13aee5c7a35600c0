"""``amplitude-async demo`` through its real entry point, kept small so it runs in seconds."""

from __future__ import annotations

import io
import json

import anyio
import anyio.lowlevel
import pytest
from rich.console import Console
from typer.testing import CliRunner

from amplitude_async._cli import app
from amplitude_async._cli._progress import LiveProgress, RateMeter, Sample

SMALL = ["--users", "300", "--ops", "4000", "--hot-users", "3", "--throttle-hold", "0.2"]


def test_the_demo_delivers_everything_and_checks_every_user() -> None:
    result = CliRunner().invoke(app, ["demo", *SMALL, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["operations"] == report["delivered"] == 4000
    assert report["outcomes"] == {"delivered": 4000}
    assert report["failed"] == {}
    assert report["users_checked"] == 300 and report["users_mismatched"] == []
    # Coalescing: fewer identifications were applied than operations were sent.
    assert report["emulator_applied"] < 4000
    assert report["ops_per_identification"] > 1.0
    assert len(report["profiles"]) == 3


@pytest.mark.parametrize("seed", [1, 2])
def test_every_run_shows_throttling(seed: int) -> None:
    # The README promises hot users get throttled: before the offline-sync burst, this
    # small run saw no 429 at all (timing decided), now every hot user gets one.
    result = CliRunner().invoke(app, ["demo", *SMALL, "--seed", str(seed), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["throttle_responses"] >= 1
    assert report["emulator_throttled_requests"] >= 1
    assert report["kinds"]["offline_sync"] == 3 * 11  # hot users x (--eps-threshold + 1)
    assert report["ok"] is True and report["users_mismatched"] == []


def test_without_a_limit_there_is_no_burst_and_no_429() -> None:
    result = CliRunner().invoke(app, ["demo", *SMALL, "--eps-threshold", "0", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["throttle_responses"] == 0
    assert "offline_sync" not in report["kinds"]


def test_the_demo_prints_profiles_and_a_summary() -> None:
    result = CliRunner().invoke(app, ["demo", *SMALL, "--profiles", "1"], terminal_width=120)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Read back through the User Profile API" in out
    # Amplitude's documented answer has no title: the demo shows the rec_id.
    assert "rec-for-you" in out  # the recommendation model
    assert "cohorts:" in out
    for row in ("delivered", "failed, by reason", "HTTP requests", "coalescing", "429 answers"):
        assert row in out
    assert "all 300 users as expected" in out
    assert out.rstrip().endswith("OK")


def test_live_progress_draws_on_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    sample = Sample(
        delivered=1200, failed=3, retried=40, held=2, throttled=5, queued=10, fraction=0.5
    )

    async def show() -> None:
        with LiveProgress(console, "import", lambda: sample) as progress:
            async with anyio.create_task_group() as tg:
                tg.start_soon(progress.run)
                await anyio.lowlevel.checkpoint()
                tg.cancel_scope.cancel()

    anyio.run(show)
    drawn = buffer.getvalue()
    for text in (
        "import",
        "50%",
        "delivered",
        "1,200",
        "held by throttling",
        "(429s: 5)",
        "retried",
    ):
        assert text in drawn


def test_live_progress_draws_nothing_off_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False)
    with LiveProgress(console, "import", lambda: Sample(1, 0, 0, 0, 0, 0)):
        pass
    assert buffer.getvalue() == ""


def test_the_rate_is_measured_over_a_window() -> None:
    meter = RateMeter(window=2.0)
    assert meter.update(0, now=10.0) == 0.0
    assert meter.update(1000, now=11.0) == 1000.0
    assert meter.update(3000, now=12.0) == 1500.0
    # Points older than the window drop out: only the last two seconds count.
    assert meter.update(4000, now=14.0) == 500.0
