"""``amplitude-async profile`` through its real entry point, against the emulator."""

from __future__ import annotations

import json
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
    "args",
    [
        ["profile", "user-alice", "--device-id", "device-alice"],  # both
        ["profile", "--props"],  # neither
    ],
)
def test_exactly_one_id_is_needed(emu: EmulatorThread, args: list[str]) -> None:
    result = CliRunner().invoke(app, args, env=env(emu))
    assert result.exit_code == 2
    assert "one of them" in result.output
