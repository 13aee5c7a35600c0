"""``amplitude-async profile`` through its real entry point, against the emulator."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from amplitude_async._cli import app
from amplitude_async._cli._profile import EXIT_NOT_FOUND
from amplitude_async.emulator import EmulatorThread

SECRET = "cli-test-secret-key"


@pytest.fixture
def emu() -> Iterator[EmulatorThread]:
    with EmulatorThread(secret_key=SECRET, eps_threshold=None) as emulator:
        emulator.define_cohort("pro-users", {"plan": "pro"})
        emulator.define_recommendation("rec-home", [f"sku-{n}" for n in range(10)], title="Home")
        emulator.call(
            emulator.emulator.state.apply,
            1,
            [
                {
                    "user_id": "user-alice",
                    "device_id": "device-alice",
                    "user_properties": {"$set": {"plan": "pro", "seats": 12}},
                }
            ],
        )
        yield emulator


def env(emu: EmulatorThread, secret: str = SECRET) -> dict[str, str]:
    return {"AMPLITUDE_SECRET_KEY": secret, "AMPLITUDE_PROFILE_URL": emu.profile_url}


def test_profile_prints_properties_and_cohorts(emu: EmulatorThread) -> None:
    result = CliRunner().invoke(app, ["profile", "user-alice"], env=env(emu))
    assert result.exit_code == 0, result.output
    assert "user user-alice" in result.stdout
    assert '"pro"' in result.stdout and "seats" in result.stdout
    assert "cohorts: pro-users" in result.stdout


def test_profile_json_with_recommendations(emu: EmulatorThread) -> None:
    result = CliRunner().invoke(
        app,
        ["profile", "user-alice", "--props", "--recs", "rec-home", "--limit", "3", "--json"],
        env=env(emu),
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["user_id"] == "user-alice"
    assert found["amp_props"] == {"plan": "pro", "seats": 12}
    assert found["cohort_ids"] is None  # not asked for
    [rec] = found["recommendations"]
    assert rec["rec_id"] == "rec-home" and len(rec["items"]) == 3


def test_profile_by_device_id_with_flags(emu: EmulatorThread) -> None:
    result = CliRunner().invoke(
        app,
        [
            "profile", "--device-id", "device-alice", "--cohorts", "--json",
            "--secret-key", SECRET, "--server-url", emu.profile_url,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cohort_ids"] == ["pro-users"]


def test_unknown_user_exits_3(emu: EmulatorThread) -> None:
    result = CliRunner().invoke(app, ["profile", "user-nobody"], env=env(emu))
    assert result.exit_code == EXIT_NOT_FOUND
    assert "not found" in result.stderr


def test_a_refused_secret_key_exits_1_without_showing_it(emu: EmulatorThread) -> None:
    wrong = "wrong-secret-0123456789"
    result = CliRunner().invoke(app, ["profile", "user-alice"], env=env(emu, wrong))
    assert result.exit_code == 1
    assert "Invalid Api-Key" in result.stderr
    assert wrong not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profile", "user-alice", "--device-id", "device-alice"], "not both"),
        (["profile", "--props"], "no one to look up"),
        # No arguments at all: the error says what is missing (not a help page).
        (["profile"], "no one to look up"),
    ],
)
def test_exactly_one_id_is_needed(emu: EmulatorThread, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args, env=env(emu), terminal_width=200)
    assert result.exit_code == 2
    assert message in result.output
    assert "USER_ID" in result.output and "--device-id" in result.output


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A profile URL on 127.0.0.1 whose server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1/userprofile"
    finally:
        listener.close()


@pytest.mark.parametrize("where", ["refused", "silent"])
def test_timeout_bounds_an_unreachable_or_silent_server(where: str, silent_server: str) -> None:
    url = (
        silent_server if where == "silent" else f"http://127.0.0.1:{_unused_port()}/v1/userprofile"
    )
    started = time.monotonic()
    result = CliRunner().invoke(
        app,
        ["profile", "user-alice", "--timeout", "1", "--secret-key", SECRET, "--server-url", url],
        terminal_width=200,
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert "error" in result.output
    assert SECRET not in result.output
    # 10 s and more before --timeout existed.
    assert elapsed < 3.0
