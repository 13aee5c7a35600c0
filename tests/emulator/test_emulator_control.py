"""The /_emulator/ control API, the public namespace and the command line."""

from __future__ import annotations

import subprocess
import sys

import aiohttp
from emulator_helpers import KEY, SECRET, identify

import amplitude_async.emulator as emulator_ns
from amplitude_async.emulator import Emulator


async def test_inspect_and_steer_over_http(emu: Emulator, http: aiohttp.ClientSession) -> None:
    control = emu.control_url
    await identify(
        http, emu, {"user_id": "user-1", "device_id": "device-1", "user_properties": {"a": 1}}
    )
    async with http.get(f"{control}/stats") as r:
        stats = await r.json()
    assert (stats["requests"], stats["by_status"], stats["applied"]) == (1, {"200": 1}, 1)
    async with http.get(f"{control}/users") as r:
        assert await r.json() == {"user-1": {"a": 1}}
    async with http.get(f"{control}/users/user-1") as r:
        record = await r.json()
    assert (record["user_properties"], record["device_ids"]) == ({"a": 1}, ["device-1"])
    async with http.get(f"{control}/devices/device-1") as r:
        assert (await r.json())["user_id"] == "user-1"
    async with http.get(f"{control}/users/user-404") as r:
        assert (r.status, await r.json()) == (404, {"error": "unknown user_id"})
    async with http.get(f"{control}/applied", params={"since": "0"}) as r:
        assert [e["user_id"] for e in await r.json()] == ["user-1"]

    async with http.post(
        f"{control}/script", json={"faults": [{"kind": "http", "status": 503}]}
    ) as r:
        assert await r.json() == {"queued": 1}
    assert (await identify(http, emu, {"user_id": "user-1"}))[0] == 503

    async with http.post(f"{control}/throttle", json={"users": ["user-1"]}) as r:
        assert await r.json() == {"held_users": ["user-1"], "held_devices": []}
    assert (await identify(http, emu, {"user_id": "user-1"}))[0] == 429
    async with http.post(f"{control}/unthrottle") as r:
        assert await r.json() == {"held_users": [], "held_devices": []}

    async with http.put(f"{control}/faults", json={"rate_503": 1.0}) as r:
        assert (await r.json())["rate_503"] == 1.0
    assert (await identify(http, emu, {"user_id": "user-1"}))[0] == 503
    async with http.put(f"{control}/faults", json={}) as r:
        assert (await r.json())["rate_503"] == 0.0

    async with http.post(f"{control}/pause") as r:
        assert await r.json() == {"paused": True}
    assert emu.paused
    async with http.post(f"{control}/resume") as r:
        assert await r.json() == {"paused": False}

    async with http.post(f"{control}/reset") as r:
        assert await r.json() == {"reset": True}
    assert emu.users() == {}


async def test_profile_models_over_http(emu: Emulator, http: aiohttp.ClientSession) -> None:
    control = emu.control_url
    await identify(http, emu, {"user_id": "user-1", "user_properties": {"plan": "pro"}})
    for path, body in [
        ("cohorts", {"cohort_id": "c-pro", "where": {"plan": "pro"}}),
        ("recommendations", {"rec_id": "r-1", "items": ["a", "b", "c"], "title": "T"}),
        ("computations", {"comp_id": "k-plan", "property": "plan"}),
        ("computations", {"comp_id": "k-const", "value": 7}),
        ("predictions", {"prediction_id": "p-1"}),
    ]:
        async with http.post(f"{control}/{path}", json=body) as r:
            assert r.status == 200, (path, await r.text())
    params = {
        "user_id": "user-1",
        "get_cohort_ids": "true",
        "get_recs": "true",
        "rec_id": "r-1",
        "get_computations": "true",
        "get_propensity": "true",
        "prediction_id": "p-1",
        "propensity_type": "score",
    }
    headers = {"Authorization": f"Api-Key {SECRET}"}
    async with http.get(emu.profile_url, params=params, headers=headers) as r:
        data = (await r.json())["userData"]
    assert data["cohort_ids"] == ["c-pro"]
    assert sorted(data["recommendations"][0]["items"]) == ["a", "b", "c"]
    assert data["amp_props"] == {"computed-prop-k-plan": "pro", "computed-prop-k-const": 7}
    assert 0.0 <= data["propensity"] <= 1.0


async def test_bad_control_input_is_400(emu: Emulator, http: aiohttp.ClientSession) -> None:
    control = emu.control_url
    for path, raw in [
        ("script", b"{"),
        ("script", b'{"faults": [{"kind": "nope"}]}'),
        ("script", b'{"faults": [{"kind": "http"}]}'),
        ("faults", b'{"rate_503": 5}'),
        ("faults", b'{"bogus": 1}'),
        ("throttle", b'{"users": "user-1"}'),
        ("cohorts", b'{"cohort_id": "x"}'),
        ("recommendations", b"[1]"),
    ]:
        async with http.post(f"{control}/{path}", data=raw) as r:
            assert r.status == 400, (path, raw)
            assert "error" in await r.json()


def test_public_namespace_is_sorted_and_resolves() -> None:
    assert emulator_ns.__all__ == sorted(emulator_ns.__all__)
    for name in emulator_ns.__all__:
        assert getattr(emulator_ns, name) is not None


def test_plugin_import_is_light() -> None:
    # The plugin loads in every pytest run of every project that installs us: it must
    # not import the server (nor aiohttp.web) until a test asks for the fixture.
    code = (
        "import sys, amplitude_async.emulator.pytest_plugin; "
        "print(*(m in sys.modules for m in "
        "('amplitude_async.emulator._server', 'amplitude_async.emulator._thread', 'aiohttp.web')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]


def test_refuses_remote_host_unless_allowed() -> None:
    try:
        Emulator(host="0.0.0.0")
    except ValueError as exc:
        assert "allow_remote=True" in str(exc)
    else:
        raise AssertionError("a non-loopback host was accepted")
    assert Emulator(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"
    assert Emulator(host="::1").host == "::1"


def test_command_serves_until_interrupted() -> None:
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "amplitude_async.emulator", "--port", "0", "--api-key", KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Amplitude emulator listening on http://127.0.0.1:")
        url = first.rsplit(" ", 1)[1].strip()
        import urllib.request

        with urllib.request.urlopen(f"{url}/_emulator/stats", timeout=5) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
