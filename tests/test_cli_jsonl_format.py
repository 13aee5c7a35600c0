"""The JSON-lines format of ``import``: wire identifications, or plain top-level properties.

``{"user_id": "user-1", "plan": "pro"}`` is read the way a CSV row is: keys that are not
identification fields are ``$set``. Errors name what is allowed, exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import amplitude_async as aa
from amplitude_async._cli import app
from amplitude_async._cli._records import lift_plain_properties
from amplitude_async._rules import FIELDS
from amplitude_async.emulator import EmulatorThread

KEY = "jsonl-test-key"
pytestmark = pytest.mark.amplitude_emulator(api_keys=[KEY], eps_threshold=None)


def run_import(emu: EmulatorThread, path: Path, *args: str) -> Any:
    return CliRunner().invoke(
        app,
        ["import", str(path), "--json", "--api-key", KEY, "--server-url", emu.identify_url, *args],
    )


def test_top_level_plain_properties_are_set(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    lines = [
        {"user_id": "user-00001", "plan": "pro", "seats": 3},
        # Fields stay fields; plain properties join the operations' $set.
        {"user_id": "user-00002", "country": "DE", "plan": "team"},
        {"user_id": "user-00003", "plan": "pro", "user_properties": {"$add": {"logins": 2}}},
        {"user_id": "user-00004", "plan": "free", "user_properties": {"seats": 1}},
        # The wire form, as in Amplitude's docs, as before.
        {"user_id": "user-00005", "user_properties": {"$set": {"plan": "pro"}}},
    ]
    source = tmp_path / "users.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = run_import(amplitude_emulator, source)
    assert result.exit_code == 0, result.output
    assert amplitude_emulator.users() == {
        "user-00001": {"plan": "pro", "seats": 3},
        "user-00002": {"plan": "team"},
        "user-00003": {"plan": "pro", "logins": 2},
        "user-00004": {"plan": "free", "seats": 1},
        "user-00005": {"plan": "pro"},
    }
    record = amplitude_emulator.record("user-00002")
    assert record is not None and record["fields"] == {"country": "DE"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"user_id": "user-00001", "$set": {"plan": "pro"}}, "$set at the top level"),
        (
            {"user_id": "user-00001", "plan": "a", "user_properties": {"$set": {"plan": "b"}}},
            "'plan' is given both at the top level and in user_properties",
        ),
        (
            {"user_id": "user-00001", "plan": "a", "user_properties": {"$add": {"plan": 1}}},
            "'plan' is already used by another operation",
        ),
    ],
)
def test_ambiguous_lines_are_refused_with_a_reason(
    amplitude_emulator: EmulatorThread, tmp_path: Path, line: dict[str, Any], message: str
) -> None:
    source = tmp_path / "users.jsonl"
    source.write_text(json.dumps(line) + "\n")
    result = run_import(amplitude_emulator, source)
    assert result.exit_code == 1
    assert summary_of(result)["rejected"] == 1
    assert message in result.stderr
    assert amplitude_emulator.stats().requests == 0


def summary_of(result: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_lifting_leaves_a_wire_identification_alone() -> None:
    wire = {"user_id": "user-1", "user_properties": {"$set": {"a": 1}}, "country": "DE"}
    assert lift_plain_properties(wire) is wire


def test_the_unknown_field_error_lists_every_allowed_field() -> None:
    with pytest.raises(aa.ValidationError) as raised:
        aa.Identify.from_dict({"user_id": "user-1", "plan": "pro"})
    message = str(raised.value)
    for name in ("user_id", "device_id", "user_properties", "groups", *FIELDS):
        assert name in message
    assert '"user_properties": {"$set": {"plan"' in message


def test_a_long_problem_is_printed_on_one_line(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    # Wrapped at the terminal's width, a list of allowed names read as if cut short.
    source = tmp_path / "users.jsonl"
    source.write_text(json.dumps({"user_id": "user-00001", "$unset": {"a": "-"}}) + "\n")
    result = CliRunner().invoke(
        app,
        ["import", str(source), "--dry-run"],
        terminal_width=40,
    )
    problem = [line for line in result.stderr.splitlines() if line.startswith("line 1:")]
    assert len(problem) == 1 and problem[0].endswith('{"plan": "pro"}}}')
