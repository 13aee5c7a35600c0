"""The pytest plugin's ``amplitude_emulator`` fixture, from sync and async tests."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from amplitude_async.emulator import EmulatorThread, Fault


def _post(url: str, identification: object) -> int:
    body = urllib.parse.urlencode(
        {"api_key": "any-key", "identification": json.dumps(identification)}
    )
    request = urllib.request.Request(url, data=body.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_sync_test_uses_the_fixture(amplitude_emulator: EmulatorThread) -> None:
    assert (
        _post(amplitude_emulator.identify_url, {"user_id": "user-1", "user_properties": {"a": 1}})
        == 200
    )
    assert amplitude_emulator.user("user-1") == {"a": 1}
    amplitude_emulator.script(Fault.http(503))
    assert _post(amplitude_emulator.identify_url, {"user_id": "user-1"}) == 503
    assert amplitude_emulator.stats().by_status == {200: 1, 503: 1}
    assert [a.user_id for a in amplitude_emulator.applied] == ["user-1"]


async def test_async_test_uses_the_fixture(amplitude_emulator: EmulatorThread) -> None:
    async with aiohttp.ClientSession() as http:
        data = {
            "api_key": "k",
            "identification": '{"user_id": "user-2", "user_properties": {"$add": {"n": 5}}}',
        }
        async with http.post(amplitude_emulator.identify_url, data=data) as r:
            assert (r.status, await r.text()) == (200, "success")
    assert amplitude_emulator.users() == {"user-2": {"n": 5}}


@pytest.mark.amplitude_emulator(api_keys=["ONLY"], eps_threshold=1)
def test_marker_configures_the_emulator(amplitude_emulator: EmulatorThread) -> None:
    assert _post(amplitude_emulator.identify_url, {"user_id": "user-1"}) == 400  # wrong key
    amplitude_emulator.throttle(users=["user-1"])
    record = amplitude_emulator.record(user_id="user-1")
    assert record is None


def test_fixture_in_a_fresh_pytest_run(tmp_path: Path) -> None:
    # A user's project: no conftest, the fixture comes from the installed entry point.
    (tmp_path / "test_user.py").write_text(
        "def test_it(amplitude_emulator):\n"
        "    assert amplitude_emulator.identify_url.startswith('http://127.0.0.1:')\n"
        "    assert amplitude_emulator.users() == {}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert "1 passed" in result.stdout, result.stdout + result.stderr


def test_emulator_thread_context_and_errors() -> None:
    thread = EmulatorThread(eps_threshold=None)
    with pytest.raises(RuntimeError, match="not started"):
        _ = thread.base_url
    with thread as emu:
        assert repr(emu).startswith("EmulatorThread(http://127.0.0.1:")
    assert repr(thread) == "EmulatorThread(stopped)"
    with pytest.raises(ValueError, match="allow_remote"):
        EmulatorThread(host="10.0.0.1").start()
