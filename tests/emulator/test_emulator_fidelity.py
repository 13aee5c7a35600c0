"""The emulator behaves as Amplitude documents (issue 14, items 1-7).

Each test names its source: Amplitude's docs (amplitude-dev-center docs/analytics/apis/
and the amplitude.com pages) or the official SDKs' response handling
(amplitude/Amplitude-Python, amplitude/analytics-go, amplitude/Amplitude-TypeScript).
docs/emulator.md, "Fidelity", lists every behaviour with its source.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp
from emulator_helpers import KEY, SECRET, identify
from emulator_helpers import profile as _profile

from amplitude_async import ManualClock
from amplitude_async.emulator import Emulator


async def _post(
    http: aiohttp.ClientSession, url: str, events: list[dict[str, Any]], **extra: Any
) -> tuple[int, Any]:
    async with http.post(url, json={"api_key": KEY, "events": events, **extra}) as r:
        return r.status, await r.json()


# -- 1. unknown API key --------------------------------------------------------------


async def test_unknown_key_has_the_prefix_the_sdks_recognise(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # Amplitude-Python processor.py: res.error.startswith("Invalid API key:") raises
    # InvalidAPIKeyError; analytics-go and analytics-core test the same prefix.
    for url in (emu.httpapi_url, emu.batch_url):
        payload = {"api_key": "wrong-key-1234", "events": [{"event_type": "x", "user_id": "u-123"}]}
        async with http.post(url, json=payload) as r:
            status, text = r.status, await r.text()
        body = json.loads(text)
        assert status == 400 and body["code"] == 400
        assert body["error"].startswith("Invalid API key:")
        assert "wrong-key-1234" not in text
    assert emu.users() == {}


# -- 2. user_properties on ordinary events ---------------------------------------------


async def test_any_event_creates_the_user_and_applies_its_user_properties(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # HTTP V2 API docs, "Upload request" example: a 'watch_tutorial' event with
    # user_properties {"Cohort": "Test A"} for user 12345.
    events: list[dict[str, Any]] = [
        {
            "event_type": "watch_tutorial",
            "user_id": "user-12345",
            "user_properties": {"Cohort": "A"},
        },
        {"event_type": "Clicked", "device_id": "device-only-1"},
        {"event_type": "$identify", "user_id": "user-12345", "user_properties": {"$add": {"n": 1}}},
    ]
    assert (await _post(http, emu.httpapi_url, events))[0] == 200
    assert emu.user("user-12345") == {"Cohort": "A", "n": 1}
    assert emu.device("device-only-1") == {}
    assert [(a.index, a.user_id, a.device_id) for a in emu.applied] == [
        (0, "user-12345", None),
        (1, None, "device-only-1"),
        (2, "user-12345", None),
    ]
    assert emu.stats().events_ingested == 2


# -- 3. limits per endpoint --------------------------------------------------------------


async def test_batch_takes_50_events_of_one_user_that_httpapi_throttles(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # Batch Event Upload API docs: 1,000 events per second per user; HTTP V2 API docs:
    # 30 events per second per user or device.
    events = [
        {"event_type": "Played", "user_id": "user-hot", "insert_id": f"i{i}"} for i in range(50)
    ]
    status, body = await _post(http, emu.batch_url, events)
    assert (status, body["events_ingested"]) == (200, 50)
    status, body = await _post(http, emu.httpapi_url, events)
    assert status == 429
    assert body["eps_threshold"] == 30 and body["throttled_users"] == {"user-hot": 50}


async def test_batch_rate_is_averaged_over_30_seconds(
    clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    # Batch docs, "EPDS and EPUS": rates "averaged over a period of 30 seconds".
    async with Emulator(api_keys=[KEY], clock=clock, batch_eps_threshold=2) as emu:
        events = [{"event_type": "e", "user_id": "user-1"}] * 60
        assert (await _post(http, emu.batch_url, events))[0] == 200
        status, body = await _post(http, emu.batch_url, events[:1])
        assert status == 429
        assert body["eps_threshold"] == 2
        assert body["throttled_users"] == {"user-1": 3}  # 61 events / 30 s, rounded up
        assert body["throttled_events"] == [0]
        await clock.advance(30.5)
        assert (await _post(http, emu.batch_url, events[:1]))[0] == 200


async def test_batch_daily_quota_rolls_over_24_hours(
    clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    # Batch docs, "Daily limit": per user and device, "per rolling 24 hours ... in
    # one-hour intervals", answered with a 429 naming exceeded_daily_quota_users.
    async with Emulator(
        api_keys=[KEY], clock=clock, batch_daily_quota=5, batch_eps_threshold=None
    ) as emu:
        events = [{"event_type": "e", "user_id": "user-1", "device_id": "device-1"}] * 5
        assert (await _post(http, emu.batch_url, events))[0] == 200
        status, body = await _post(http, emu.batch_url, events[:1])
        assert status == 429
        assert body["exceeded_daily_quota_users"] == {"user-1": 6}
        assert body["exceeded_daily_quota_devices"] == {"device-1": 6}
        await clock.advance(23 * 3600)
        assert (await _post(http, emu.batch_url, events[:1]))[0] == 429
        await clock.advance(3600)
        assert (await _post(http, emu.batch_url, events[:1]))[0] == 200
        # /2/httpapi has no daily quota unless one is configured.
        assert (await _post(http, emu.httpapi_url, events[:1]))[0] == 200


async def test_batch_takes_bodies_over_1_mb(emu: Emulator, http: aiohttp.ClientSession) -> None:
    # Batch docs: "The JSON serialized payload must not exceed 20MB"; HTTP V2: under 1 MB.
    events = [
        {"event_type": "e", "user_id": f"user-{i}", "event_properties": {"pad": "x" * 1000}}
        for i in range(1200)
    ]
    assert (await _post(http, emu.batch_url, events))[0] == 200
    status, body = await _post(http, emu.httpapi_url, events)
    assert (status, body) == (413, {"code": 413, "error": "Payload too large"})


async def test_property_updates_past_the_hourly_limit_are_dropped_silently(
    clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    # HTTP V2 and Batch docs: users updating their properties "more than 1,800 times per
    # hour" are rate limited: Amplitude "may drop user property updates for that user"
    # while the requests succeed. Opt-in, with a small limit here.
    async with Emulator(api_keys=[KEY], clock=clock, property_updates_per_hour=3) as emu:
        add = {"user_id": "user-busy", "user_properties": {"$add": {"n": 1}}}
        for _ in range(5):
            assert await identify(http, emu, [add]) == (200, "success")
        assert emu.user("user-busy") == {"n": 3}
        assert emu.stats().dropped_updates == 2
        await clock.advance(3601)
        assert await identify(http, emu, [add]) == (200, "success")
        assert emu.user("user-busy") == {"n": 4}
    async with Emulator() as default:
        assert default.state.update_limit is None


# -- 4. short and invalid ids --------------------------------------------------------------


async def test_a_short_id_is_dropped_and_the_item_kept_when_another_id_is_valid(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # HTTP V2 API docs, "Device IDs and User IDs minimum length": a too-short id "is
    # removed from the event"; only an event left without an id is refused.
    item = {"user_id": "abc", "device_id": "device-ok", "user_properties": {"$set": {"a": 1}}}
    assert await identify(http, emu, [item]) == (200, "success")
    assert emu.user("abc") is None
    assert emu.device("device-ok") == {"a": 1}
    events = [{"event_type": "e", "user_id": "abc", "device_id": "device-ok2"}]
    assert (await _post(http, emu.httpapi_url, events))[0] == 200
    assert emu.user("abc") is None and emu.device("device-ok2") == {}


async def test_an_item_without_a_valid_length_id_is_named_in_invalid_id_lengths(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # The body Amplitude returned in amplitude/Amplitude-TypeScript#81, read by all three
    # SDKs as events_with_invalid_id_lengths.
    items = [{"user_id": "user-ok"}, {"device_id": "d1"}, {"user_id": "u2", "device_id": "d2"}]
    status, text = await identify(http, emu, items)
    body = json.loads(text)
    assert status == 400
    assert body["error"] == "Invalid id length for user_id or device_id"
    assert body["events_with_invalid_id_lengths"] == {"device_id": [1], "user_id": [2]}
    assert "events_with_invalid_fields" not in body and "missing_field" not in body
    assert emu.users() == {}


async def test_the_documented_invalid_ids_are_refused(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # HTTP V2 API docs, "Invalid IDs": these "result in a 400 error" (the empty string too).
    invalid = ["anonymous", "nil", "none", "null", "n/a", "na", "undefined", "unknown", ""]
    invalid += ["00000000-0000-0000-0000-000000000000", "{}", "lmy47d", "0", "-1", "NULL"]
    items = [{"user_id": value, "device_id": "device-ok"} for value in invalid]
    status, text = await identify(http, emu, items)
    body = json.loads(text)
    assert status == 400
    assert body["events_with_invalid_fields"] == {"user_id": list(range(len(invalid)))}
    for allowed in ("guest", "empty", "lmy47v"):  # not on the documented list
        assert await identify(http, emu, [{"user_id": allowed}]) == (200, "success")
    assert sorted(emu.users()) == ["empty", "guest", "lmy47v"]


async def test_silenced_devices_are_named_in_silenced_events(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # HTTP V2 API docs, 400 "Silenced devices example": silenced_devices and the
    # events' indices in silenced_events, which the SDKs drop (and resend the rest).
    emu.silence(["device-silenced"])
    events = [
        {"event_type": "e", "device_id": "device-fine"},
        {"event_type": "e", "device_id": "device-silenced"},
    ]
    status, body = await _post(http, emu.httpapi_url, events)
    assert status == 400
    assert body["error"] == "Events silenced for device_id"
    assert body["silenced_devices"] == ["device-silenced"]
    assert body["silenced_events"] == [1]
    assert emu.users() == {} and emu.device("device-fine") is None
    emu.unsilence()
    assert (await _post(http, emu.httpapi_url, events))[0] == 200
    async with Emulator(silenced_devices=["device-silenced"]) as preset:
        status, body = await _post(http, preset.batch_url, events)
        assert (status, body["silenced_events"]) == (400, [1])


# -- 5. User Profile API answers ---------------------------------------------------------


async def test_profile_computations_propensities_and_auth(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    await identify(http, emu, {"user_id": "user-1", "user_properties": {"age": 41}})
    emu.define_computation("comp-age", property="age")
    emu.define_prediction("pred-a", score=lambda props: 0.5)
    emu.define_prediction("pred-b", score=lambda props: 0.25)
    # User Profile API docs, comp_id: "It returns a null value if it doesn't exist".
    _, body = await _profile(http, emu, user_id="user-1", comp_id="comp-age,comp-gone")
    assert body["userData"]["amp_props"] == {
        "computed-prop-comp-age": 41,
        "computed-prop-comp-gone": None,
    }
    # "Responses for multiple prediction IDs are in the propensities field" (and
    # propensity is null), per the docs' multiple-prediction example.
    _, body = await _profile(
        http,
        emu,
        user_id="user-1",
        get_propensity="true",
        prediction_id="pred-a,pred-b",
        propensity_type="score",
    )
    assert body["userData"]["propensity"] is None
    assert body["userData"]["propensities"] == [
        {"prop": 0.5, "pred_id": "pred-a", "prop_type": "score"},
        {"prop": 0.25, "pred_id": "pred-b", "prop_type": "score"},
    ]
    # The newest page describes Basic auth with base64(api_key:secret_key).
    basic = base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()
    status, _ = await _profile(http, emu, {"Authorization": f"Basic {basic}"}, user_id="user-1")
    assert status == 200
    broken = {"Authorization": "Basic not-base64!"}
    assert await _profile(http, emu, broken, user_id="user-1") == (
        401,
        "Missing Api-Key in Authorization header",
    )


async def test_profile_calls_are_rate_limited_per_minute(
    clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    # User Profile API docs, "Throttling errors": 600 requests a minute per org, answered
    # with this error body (its status is not documented: the emulator sends 429).
    async with Emulator(secret_key=SECRET, clock=clock, profile_rate_limit=3) as emu:
        await identify(http, emu, {"user_id": "user-1"})
        for _ in range(3):
            assert (await _profile(http, emu, user_id="user-1"))[0] == 200
        assert await _profile(http, emu, user_id="user-1") == (
            429,
            {
                "error": "Number of requests per minute exceeds system limit. "
                "Contact Support if you need this limit raised"
            },
        )
        await clock.advance(60.5)
        assert (await _profile(http, emu, user_id="user-1"))[0] == 200
    async with Emulator() as default:
        assert default.profile_limiter.limit == 600


# -- 6. the time field ---------------------------------------------------------------------


async def test_time_must_be_milliseconds_since_epoch(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # HTTP V2 API docs, "Set time values": "Any other format (such as ISO format) results
    # in a 400 Bad Request response".
    events: list[dict[str, Any]] = [
        {"event_type": "e", "user_id": "user-1", "time": 1396381378123},
        {"event_type": "e", "user_id": "user-1", "time": "2024-01-01T00:00:00"},
        {"event_type": "e", "user_id": "user-1", "time": 1396381378.5},
    ]
    status, body = await _post(http, emu.httpapi_url, events)
    assert status == 400
    assert body["events_with_invalid_fields"] == {"time": [1, 2]}
    assert (await _post(http, emu.batch_url, events[:1]))[0] == 200


# -- 7. groups ----------------------------------------------------------------------------


async def test_group_identify_is_stored_and_groups_alone_leave_user_properties(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    # Amplitude-Python Amplitude.group_identify sends a $groupidentify event with
    # groups and group_properties; set_group sends an $identify with groups AND a $set of
    # the group type (the server is not relied on to derive it).
    events: list[dict[str, Any]] = [
        {
            "event_type": "$groupidentify",
            "groups": {"org": "acme"},
            "group_properties": {"$set": {"plan": "enterprise"}},
        },
        {"event_type": "$identify", "user_id": "user-1", "groups": {"org": "acme"}},
    ]
    assert (await _post(http, emu.httpapi_url, events))[0] == 200
    assert emu.group("org", "acme") == {"plan": "enterprise"}
    assert emu.user("user-1") == {}
    record = emu.record(user_id="user-1")
    assert record is not None and record["groups"] == {"org": "acme"}
    # Group Identify API docs: /groupidentify with form fields.
    identification = [
        {"group_type": "org", "group_value": "acme", "group_properties": {"seats": 9}}
    ]
    data = {"api_key": KEY, "identification": json.dumps(identification)}
    async with http.post(emu.groupidentify_url, data=data) as r:
        assert (r.status, await r.text()) == (200, "success")
    assert emu.group("org", "acme") == {"plan": "enterprise", "seats": 9}
    async with Emulator(groups_as_user_properties=True) as mirror:
        assert (await _post(http, mirror.httpapi_url, events[1:]))[0] == 200
        assert mirror.user("user-1") == {"org": "acme"}


# -- the same controls over HTTP and from another thread -------------------------------------


async def test_silence_and_groups_over_the_control_api(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    control = emu.control_url
    async with http.post(f"{control}/silence", json={"devices": ["device-s1"]}) as r:
        assert await r.json() == {"silenced_devices": ["device-s1"]}
    status, body = await _post(http, emu.batch_url, [{"event_type": "e", "device_id": "device-s1"}])
    assert (status, body["silenced_events"]) == (400, [0])
    async with http.post(f"{control}/unsilence") as r:
        assert await r.json() == {"silenced_devices": []}
    group_event = {"event_type": "$groupidentify", "groups": {"org": ["acme", "beta"]}}
    group_event["group_properties"] = {"$add": {"n": 2}}
    assert (await _post(http, emu.batch_url, [group_event]))[0] == 200
    async with http.get(f"{control}/groups/org/beta") as r:
        assert (r.status, await r.json()) == (200, {"n": 2})
    async with http.get(f"{control}/groups/org/none") as r:
        assert r.status == 404


def test_emulator_thread_offers_the_new_controls() -> None:
    from amplitude_async.emulator import EmulatorThread

    with EmulatorThread(api_keys=[KEY]) as emu:
        emu.silence(["device-s1"])
        emu.unsilence(["device-s1"])
        emu.set_eps_threshold(5, endpoint="batch")
        assert emu.emulator.throttles["batch"].eps_threshold == 5
        assert emu.emulator.throttles["httpapi"].eps_threshold == 30
        assert emu.group("org", "acme") is None
        assert emu.groupidentify_url.endswith("/groupidentify")
