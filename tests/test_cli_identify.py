"""``amplitude-async identify`` through its real entry point, against the emulator."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from amplitude_async._cli import app
from amplitude_async.emulator import EmulatorThread

KEY = "cli-test-api-key"
pytestmark = pytest.mark.amplitude_emulator(api_keys=[KEY], min_id_length=8)


def test_identify_applies_every_operation(amplitude_emulator: EmulatorThread) -> None:
    target = ["--api-key", KEY, "--server-url", amplitude_emulator.identify_url]
    first = CliRunner().invoke(
        app, ["identify", "--user-id", "user-000001", "--set", "old=1", *target]
    )
    assert first.exit_code == 0, first.output
    assert amplitude_emulator.user("user-000001") == {"old": 1}
    result = CliRunner().invoke(
        app,
        [
            "identify",
            "--user-id", "user-000001",
            "--set", "plan=pro",
            "--set", "zip=02139",
            "--add", "logins=1",
            "--append", 'tags=["beta","vip"]',
            "--unset", "old",
            "--field", "country=DE",
            *target,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "delivered" in result.stdout
    # Values are JSON where they parse ("1", the list) and strings otherwise ("02139").
    assert amplitude_emulator.user("user-000001") == {
        "plan": "pro",
        "zip": "02139",
        "logins": 1,
        "tags": ["beta", "vip"],
    }
    record = amplitude_emulator.record("user-000001")
    assert record is not None and record["fields"] == {"country": "DE"}


def test_settings_come_from_the_environment(amplitude_emulator: EmulatorThread) -> None:
    env = {"AMPLITUDE_API_KEY": KEY, "AMPLITUDE_SERVER_URL": amplitude_emulator.identify_url}
    result = CliRunner().invoke(
        app, ["identify", "--user-id", "user-000002", "--set-once", "first=1", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"ok": True, "status": 200, "attempts": 1}
    assert amplitude_emulator.user("user-000002") == {"first": 1}


def test_a_refused_api_key_exits_1_without_showing_the_key(
    amplitude_emulator: EmulatorThread,
) -> None:
    secret = "not-the-right-key-0123456789"
    result = CliRunner().invoke(
        app,
        ["identify", "--user-id", "user-000003", "--set", "plan=pro"],
        env={"AMPLITUDE_API_KEY": secret, "AMPLITUDE_SERVER_URL": amplitude_emulator.identify_url},
    )
    assert result.exit_code == 1
    assert "failed: auth" in result.stderr
    assert secret not in result.output
    assert amplitude_emulator.user("user-000003") is None


def test_an_id_the_server_rejects_exits_1_with_its_reason(
    amplitude_emulator: EmulatorThread,
) -> None:
    # Long enough for the client (5), too short for this emulator (8).
    result = CliRunner().invoke(
        app,
        ["identify", "--user-id", "user-12", "--set", "plan=pro", "--json"],
        env={"AMPLITUDE_API_KEY": KEY, "AMPLITUDE_SERVER_URL": amplitude_emulator.identify_url},
    )
    assert result.exit_code == 1
    outcome = json.loads(result.stdout)
    assert outcome["ok"] is False and outcome["reason"] == "invalid" and outcome["status"] == 400
    # Amplitude's text for an item left without an id of a valid length.
    assert "Invalid id length for user_id or device_id" in outcome["message"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user-id", "null", "--set", "a=1"], "placeholder"),
        (["--user-id", "user-000004", "--set", "a=1", "--unset", "a"], "given twice"),
        (["--user-id", "user-000004", "--set", "a"], "NAME=VALUE"),
        (["--set", "a=1"], "user_id or a device_id"),
        (["--user-id", "user-000004", "--add", "n=ten"], "finite number"),
        # No operation: Amplitude would answer 200 to an identification that changes
        # nothing, and the command reported it as delivered.
        (["--user-id", "user-000004"], "nothing to send"),
        (["--device-id", "device-000004", "--json"], "nothing to send"),
    ],
)
def test_invalid_input_is_a_usage_error(
    amplitude_emulator: EmulatorThread, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        app,
        ["identify", *args, "--api-key", KEY, "--server-url", amplitude_emulator.identify_url],
    )
    assert result.exit_code == 2
    assert message in result.output
    assert amplitude_emulator.stats().requests == 0


def test_fields_alone_are_something_to_send(amplitude_emulator: EmulatorThread) -> None:
    result = CliRunner().invoke(
        app,
        ["identify", "--user-id", "user-000006", "--field", "country=DE"],
        env={"AMPLITUDE_API_KEY": KEY, "AMPLITUDE_SERVER_URL": amplitude_emulator.identify_url},
    )
    assert result.exit_code == 0, result.output
    record = amplitude_emulator.record("user-000006")
    assert record is not None and record["fields"] == {"country": "DE"}


def test_a_missing_api_key_is_a_usage_error(amplitude_emulator: EmulatorThread) -> None:
    result = CliRunner().invoke(
        app,
        ["identify", "--user-id", "user-000005", "--set", "a=1"],
        env={"AMPLITUDE_API_KEY": "", "AMPLITUDE_SERVER_URL": amplitude_emulator.identify_url},
    )
    assert result.exit_code == 2
    assert "AMPLITUDE_API_KEY" in result.output


def test_an_unreachable_server_fails_within_the_timeout() -> None:
    result = CliRunner().invoke(
        app,
        [
            "identify", "--user-id", "user-000006", "--set", "a=1", "--timeout", "0.5",
            "--api-key", KEY, "--server-url", "http://127.0.0.1:9/identify", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    outcome = json.loads(result.stdout)
    assert outcome["reason"] == "retries_exhausted"
    assert "could not connect" in outcome["message"]


def test_verbose_shows_retries_and_leaves_logging_as_it_was() -> None:
    logger = logging.getLogger("amplitude_async")
    before = (logger.level, logger.propagate, list(logger.handlers))
    result = CliRunner().invoke(
        app,
        [
            "-v", "identify", "--user-id", "user-000007", "--set", "a=1", "--timeout", "0.3",
            "--api-key", KEY, "--server-url", "http://127.0.0.1:9/identify",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "WARNING amplitude_async: no answer from 127.0.0.1:9" in result.stderr
    # The command ran inside this process: its log setup must not outlive it.
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


def test_debug_verbosity_shows_the_structured_fields() -> None:
    result = CliRunner().invoke(
        app,
        [
            "-vvv", "identify", "--user-id", "user-000007", "--set", "a=1", "--timeout", "0.3",
            "--api-key", KEY, "--server-url", "http://127.0.0.1:9/identify",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    retry = next(line for line in result.stderr.splitlines() if "retrying" in line)
    assert retry.startswith("WARNING amplitude_async: no answer from 127.0.0.1:9")
    assert "[event=identify.retry count=1 attempt=2 delay=" in retry
    assert KEY not in result.stderr
