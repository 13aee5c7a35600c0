"""/2/httpapi and /batch, and the official amplitude-analytics SDK against the emulator."""

from __future__ import annotations

import threading

import aiohttp
import pytest
from emulator_helpers import KEY

from amplitude_async.emulator import Emulator, EmulatorThread


@pytest.mark.parametrize("path", ["/2/httpapi", "/batch"])
async def test_identify_events_apply_and_others_are_counted(
    emu: Emulator, http: aiohttp.ClientSession, path: str
) -> None:
    payload = {
        "api_key": KEY,
        "events": [
            {
                "event_type": "$identify",
                "user_id": "user-1",
                "user_properties": {"$set": {"plan": "pro"}},
            },
            {"event_type": "Clicked", "user_id": "user-1", "event_properties": {"x": 1}},
            {"event_type": "$identify", "user_id": "user-1", "user_properties": {"$add": {"n": 2}}},
        ],
    }
    async with http.post(emu.base_url + path, json=payload) as r:
        assert r.status == 200
        body = await r.json()
    assert body["code"] == 200 and body["events_ingested"] == 3
    assert body["payload_size_bytes"] > 100 and body["server_upload_time"] > 0
    assert emu.user("user-1") == {"plan": "pro", "n": 2}
    assert emu.stats().events_ingested == 1


async def test_http_v2_errors(emu: Emulator, http: aiohttp.ClientSession) -> None:
    cases = [
        (b"not json", {"code": 400, "error": "Invalid JSON request body"}),
        (b"[]", {"code": 400, "error": "Invalid JSON request body"}),
        (
            b'{"events": []}',
            {"code": 400, "error": "Request missing required field", "missing_field": "api_key"},
        ),
        (
            b'{"api_key": "nope", "events": [{}]}',
            {"code": 400, "error": "Invalid API key: the key is not known to this emulator"},
        ),
        (
            f'{{"api_key": "{KEY}"}}'.encode(),
            {"code": 400, "error": "Request missing required field", "missing_field": "events"},
        ),
    ]
    for raw, expected in cases:
        async with http.post(
            emu.httpapi_url, data=raw, headers={"Content-Type": "application/json"}
        ) as r:
            assert (r.status, await r.json()) == (400, expected), raw
    payload = {"api_key": KEY, "events": [{"user_id": "user-1"}, {"event_type": "$identify"}]}
    async with http.post(emu.httpapi_url, json=payload) as r:
        body = await r.json()
    assert r.status == 400
    assert body["events_with_missing_fields"] == {"event_type": [0], "user_id": [1]}


def test_official_sdk_runs_against_the_emulator() -> None:
    amplitude = pytest.importorskip("amplitude")
    with EmulatorThread(api_keys=[KEY]) as emu:
        done = threading.Event()
        statuses: list[int] = []

        def callback(event: object, code: int, message: str | None = None) -> None:
            statuses.append(code)
            done.set()

        config = amplitude.Config(server_url=emu.httpapi_url, flush_queue_size=1, callback=callback)
        client = amplitude.Amplitude(KEY, configuration=config)
        identify = amplitude.Identify()
        identify.set("plan", "pro")
        identify.add("logins", 3)
        client.identify(identify, amplitude.EventOptions(user_id="sdk-user-1"))
        client.flush()
        assert done.wait(10)
        client.shutdown()
        assert statuses == [200]
        assert emu.user("sdk-user-1") == {"plan": "pro", "logins": 3}
