"""``amplitude-async import`` through its real entry point, against the emulator.

Every test checks what arrived in the emulator, not just what the command printed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from amplitude_async._cli import app
from amplitude_async.emulator import EmulatorThread, apply_user_properties

KEY = "import-test-key"
SCRIPT = Path(sys.executable).with_name("amplitude-async")
pytestmark = pytest.mark.amplitude_emulator(api_keys=[KEY], min_id_length=8, eps_threshold=None)


def wire(n: int, users: int = 30) -> dict[str, Any]:
    """Line ``n``'s identification: appends ``n`` to its user's "seq" (order shows)."""
    return {
        "user_id": f"user-{n % users:06d}",
        "user_properties": {"$append": {"seq": n}, "$add": {"count": 1}},
    }


def expected_state(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    for item in items:
        apply_user_properties(state.setdefault(item["user_id"], {}), item["user_properties"])
    return state


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def run(emu: EmulatorThread, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(
        app,
        ["import", *args, "--json", "--api-key", KEY, "--server-url", emu.identify_url],
        input=input,
    )


def summary(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll a condition (not a fixed sleep) until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.02)


def test_jsonl_import_delivers_exactly_the_file(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    items = [wire(n) for n in range(600)]
    source = write_jsonl(tmp_path / "users.jsonl", items)
    result = run(amplitude_emulator, str(source))
    assert result.exit_code == 0, result.output
    assert summary(result)["delivered"] == 600
    # Exactly the file: every user's final state, with its operations in file order.
    assert amplitude_emulator.users() == expected_state(items)


def test_stdin_is_read_as_json_lines(amplitude_emulator: EmulatorThread) -> None:
    items = [wire(n, users=3) for n in range(9)]
    result = run(amplitude_emulator, "-", input="".join(json.dumps(i) + "\n" for i in items))
    assert result.exit_code == 0, result.output
    assert amplitude_emulator.users() == expected_state(items)


def test_csv_import_sets_columns_and_fields(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    source = tmp_path / "users.csv"
    source.write_text(
        "\ufeffid,device,plan,seats,country,note,zip\r\n"
        'user-000001,device-000001,pro,12,DE,"two\nlines",02139\r\n'
        "user-000002,,free,1,FR,,\r\n"
        "user-000003,only-two\r\n"
        "user-000004,,team,true,,,\r\n",
        encoding="utf-8",
    )
    result = run(
        amplitude_emulator,
        str(source),
        "--user-id-column",
        "id",
        "--device-id-column",
        "device",
    )
    assert result.exit_code == 1  # one bad row
    counts = summary(result)
    assert counts["delivered"] == 3 and counts["bad"] == 1
    # Line numbers count physical lines: the quoted newline makes user-000003 line 5.
    assert "line 5: expected 7 columns as in the header, got 2" in result.stderr
    assert amplitude_emulator.users() == {
        "user-000001": {"plan": "pro", "seats": 12, "note": "two\nlines", "zip": "02139"},
        "user-000002": {"plan": "free", "seats": 1},
        "user-000004": {"plan": "team", "seats": True},
    }
    record = amplitude_emulator.record("user-000001")
    assert record is not None
    assert record["fields"] == {"country": "DE"} and record["device_ids"] == ["device-000001"]


def test_csv_strings_keeps_values_as_text(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    source = tmp_path / "users.csv"
    source.write_text("user_id,seats\nuser-000001,12\n")
    result = run(amplitude_emulator, str(source), "--csv-strings")
    assert result.exit_code == 0, result.output
    assert amplitude_emulator.user("user-000001") == {"seats": "12"}


def test_bad_lines_are_reported_and_failures_go_to_failed_out(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    lines = [
        json.dumps(wire(0)),
        "this is not json",
        json.dumps({"user_id": "null", "user_properties": {"$set": {"a": 1}}}),
        json.dumps(["an", "array"]),
        "",
        # 7 characters: the client accepts it (>= 5), this emulator does not (>= 8).
        json.dumps({"user_id": "short-1", "user_properties": {"$set": {"a": 1}}}),
        json.dumps(wire(1)),
    ]
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n")
    failed_out = tmp_path / "failed.jsonl"
    result = run(amplitude_emulator, str(source), "--failed-out", str(failed_out))
    assert result.exit_code == 1
    counts = summary(result)
    assert counts["delivered"] == 2
    assert counts["failed"] == {"invalid": 1}
    assert counts["rejected"] == 1 and counts["bad"] == 2 and counts["blank"] == 1
    assert "line 2: not valid JSON" in result.stderr
    assert "line 3: user_id 'null' is a placeholder" in result.stderr
    assert "line 4: expected a JSON object, got an array" in result.stderr
    # The good lines around the bad ones were delivered.
    assert set(amplitude_emulator.users()) == {"user-000000", "user-000001"}

    written = [json.loads(line) for line in failed_out.read_text().splitlines()]
    assert [
        (w.get("user_id"), w["_failure"]["reason"], w["_failure"]["line"]) for w in written
    ] == [
        (None, "bad_line", 2),
        ("null", "validation", 3),
        (None, "bad_line", 4),
        ("short-1", "invalid", 6),
    ]
    # Amplitude's text for an item left without an id of a valid length.
    assert "Invalid id length for user_id or device_id" in written[3]["_failure"]["message"]
    # Lines that are not identifications keep their text, to be fixed by hand.
    assert written[0] == {
        "_failure": {
            "reason": "bad_line",
            "message": written[0]["_failure"]["message"],
            "status": None,
            "line": 2,
            "raw": "this is not json",
        }
    }
    assert written[0]["_failure"]["message"].startswith("not valid JSON")
    assert written[2]["_failure"]["raw"] == '["an", "array"]'
    # The failed-out file is import input again (the _failure key is ignored); the
    # unfixed bad lines are still bad, and still carry their text.
    again = run(amplitude_emulator, str(failed_out), "--dry-run")
    assert again.exit_code == 1  # the placeholder id is still invalid
    dry = summary(again)
    assert (dry["valid"], dry["rejected"], dry["bad"]) == (1, 1, 2)
    assert "line 1: not fixed yet (line 2 of the first import): not valid JSON" in again.stderr


def test_every_bad_line_reaches_failed_out_and_can_be_fixed_and_reimported(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    # More bad lines than stderr shows (20): --failed-out has every one of them.
    lines = [json.dumps(wire(0))] + [f"broken line {n} {{" for n in range(30)]
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n")
    failed_out = tmp_path / "failed.jsonl"
    first = run(amplitude_emulator, str(source), "--failed-out", str(failed_out))
    assert first.exit_code == 1
    assert summary(first)["bad"] == 30
    assert first.stderr.count("not valid JSON") == 20
    written = [json.loads(line) for line in failed_out.read_text().splitlines()]
    assert [(w["_failure"]["line"], w["_failure"]["raw"]) for w in written] == [
        (n + 2, f"broken line {n} {{") for n in range(30)
    ]
    # Fix one line by hand (as a user would, in the failed-out file) and import again.
    fixed = [json.dumps({"user_id": "user-fixed-1", "plan": "pro"}), *map(json.dumps, written[1:])]
    failed_out.write_text("\n".join(fixed) + "\n")
    second_out = tmp_path / "failed-again.jsonl"
    second = run(amplitude_emulator, str(failed_out), "--failed-out", str(second_out))
    assert summary(second)["delivered"] == 1 and summary(second)["bad"] == 29
    assert amplitude_emulator.user("user-fixed-1") == {"plan": "pro"}
    # What is still broken keeps its original text and its first line number.
    again = [json.loads(line)["_failure"] for line in second_out.read_text().splitlines()]
    assert [a["raw"] for a in again] == [f"broken line {n} {{" for n in range(1, 30)]
    assert "line 3 of the first import" in again[0]["message"]


def test_unreadable_csv_rows_reach_failed_out_with_their_text(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    source = tmp_path / "users.csv"
    source.write_text(
        "user_id,plan,note\r\n"
        "user-000001,pro,fine\r\n"
        'user-000002,"multi\nline",extra,cells\r\n'
        "user-000003\r\n"
        "user-000004,team,ok\r\n",
        encoding="utf-8",
    )
    failed_out = tmp_path / "failed.jsonl"
    result = run(amplitude_emulator, str(source), "--failed-out", str(failed_out))
    assert result.exit_code == 1
    assert summary(result)["bad"] == 2
    written = [json.loads(line)["_failure"] for line in failed_out.read_text().splitlines()]
    assert [(w["reason"], w["line"], w["raw"]) for w in written] == [
        ("bad_line", 3, 'user-000002,"multi\nline",extra,cells'),
        ("bad_line", 5, "user-000003"),
    ]
    assert written[0]["message"] == "expected 3 columns as in the header, got 4"
    assert set(amplitude_emulator.users()) == {"user-000001", "user-000004"}


def test_without_failed_out_a_failure_is_not_marked_done(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    items = [wire(0), {"user_id": "short-1", "user_properties": {"$set": {"a": 1}}}, wire(1)]
    source = write_jsonl(tmp_path / "users.jsonl", items)
    checkpoint = tmp_path / "import.ckpt"
    result = run(amplitude_emulator, str(source), "--checkpoint", str(checkpoint))
    assert result.exit_code == 1
    assert "line 2: failed (invalid)" in result.stderr
    assert "without --failed-out" in result.stderr
    # Recorded nowhere, so not settled: a resumed run tries line 2 again, and only it.
    saved = json.loads(checkpoint.read_text())
    assert (saved["line"], saved["settled_after"], saved["complete"]) == (1, [[3, 3]], False)


def test_dry_run_sends_nothing(amplitude_emulator: EmulatorThread, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "users.jsonl", [wire(n) for n in range(50)])
    result = run(amplitude_emulator, str(source), "--dry-run")
    assert result.exit_code == 0, result.output
    dry = summary(result)
    assert (dry["valid"], dry["rejected"], dry["bad"]) == (50, 0, 0)
    assert amplitude_emulator.stats().requests == 0


def test_shards_split_a_file_into_disjoint_complete_parts(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    items = [wire(n, users=90) for n in range(450)]
    source = write_jsonl(tmp_path / "users.jsonl", items)
    expected = expected_state(items)
    parts: list[dict[str, dict[str, Any]]] = []
    for index in (1, 2, 3):
        amplitude_emulator.reset()
        result = run(amplitude_emulator, str(source), "--shard", f"{index}/3")
        assert result.exit_code == 0, result.output
        counts = summary(result)
        assert counts["delivered"] + counts["other_shard"] == len(items)
        parts.append(amplitude_emulator.users())
    users = [set(part) for part in parts]
    assert all(users), "every shard got some users"
    assert not (users[0] & users[1] or users[0] & users[2] or users[1] & users[2])
    assert users[0] | users[1] | users[2] == set(expected)
    # Each user went whole to one shard, in file order.
    for part in parts:
        assert part == {user: expected[user] for user in part}


def test_a_refused_key_settles_nothing_and_a_rerun_sends_everything(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    items = [wire(n) for n in range(100)]
    source = write_jsonl(tmp_path / "users.jsonl", items)
    checkpoint = tmp_path / "import.ckpt"
    refused = CliRunner().invoke(
        app,
        [
            "import", str(source), "--checkpoint", str(checkpoint), "--json",
            "--api-key", "a-wrong-key", "--server-url", amplitude_emulator.identify_url,
        ],
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "API key was not accepted" in summary(refused)["stopped"]
    assert "a-wrong-key" not in refused.output
    assert json.loads(checkpoint.read_text())["line"] == 0
    assert amplitude_emulator.users() == {}

    rerun = run(amplitude_emulator, str(source), "--checkpoint", str(checkpoint))
    assert rerun.exit_code == 0, rerun.output
    assert summary(rerun)["delivered"] == 100
    assert amplitude_emulator.users() == expected_state(items)


def test_a_checkpoint_of_another_import_is_refused(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    first = write_jsonl(tmp_path / "a.jsonl", [wire(0)])
    second = write_jsonl(tmp_path / "b.jsonl", [wire(1)])
    checkpoint = str(tmp_path / "import.ckpt")
    assert run(amplitude_emulator, str(first), "--checkpoint", checkpoint).exit_code == 0
    result = run(amplitude_emulator, str(second), "--checkpoint", checkpoint)
    assert result.exit_code == 2
    assert "written for source" in result.output


def test_a_csv_without_the_id_column_is_a_usage_error(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    source = tmp_path / "users.csv"
    source.write_text("name,plan\nann,pro\n")
    result = run(amplitude_emulator, str(source))
    assert result.exit_code == 2
    assert "no column 'user_id'" in result.output


@pytest.mark.skipif(not SCRIPT.exists(), reason="the console script is not installed")
def test_interrupted_import_resumes_without_resending_settled_lines(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    emu = amplitude_emulator
    items = [wire(n, users=30) for n in range(300)]
    expected = expected_state(items)
    held = "user-000007"
    held_lines = [n + 1 for n, item in enumerate(items) if item["user_id"] == held]
    # The emulator answers 429 for this user until told otherwise: its lines cannot
    # settle before the interruption, everyone else's can.
    emu.throttle(users=[held])
    checkpoint = tmp_path / "import.ckpt"
    process = subprocess.Popen(
        [
            str(SCRIPT), "import", "-", "--checkpoint", str(checkpoint), "--json",
            "--drain-timeout", "0.3", "--api-key", KEY, "--server-url", emu.identify_url,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdin is not None
        # stdin stays open: the import is still reading when it is interrupted.
        process.stdin.write("".join(json.dumps(item) + "\n" for item in items))
        process.stdin.flush()
        others = [user for user in expected if user != held]
        wait_until(lambda: all(emu.user(user) == expected[user] for user in others))
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGINT, err
    interrupted = json.loads(out)
    assert interrupted["interrupted"] is True
    assert interrupted["delivered"] == 300 - len(held_lines)
    assert interrupted["not_sent"] == len(held_lines)
    saved = json.loads(checkpoint.read_text())
    assert saved["line"] == held_lines[0] - 1
    settled = set(range(1, saved["line"] + 1))
    for start, end in saved["settled_after"]:
        settled.update(range(start, end + 1))
    assert settled == set(range(1, 301)) - set(held_lines)

    emu.unthrottle()
    applied_before = len(emu.applied)
    resumed = CliRunner().invoke(
        app,
        [
            "import", "-", "--checkpoint", str(checkpoint), "--json",
            "--api-key", KEY, "--server-url", emu.identify_url,
        ],
        input="".join(json.dumps(item) + "\n" for item in items),
    )  # fmt: skip
    assert resumed.exit_code == 0, resumed.output
    counts = summary(resumed)
    assert counts["delivered"] == len(held_lines)
    assert counts["already_done"] == 300 - len(held_lines)
    # Only the held user's lines went out again (coalesced into one identification),
    # and its operations kept their order.
    assert [a.user_id for a in emu.applied[applied_before:]] == [held]
    assert emu.users() == expected
    assert json.loads(checkpoint.read_text())["complete"] is True
