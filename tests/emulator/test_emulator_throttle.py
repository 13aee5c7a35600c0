"""Throttling: sliding window per user and per device, forced holds, daily quota."""

from __future__ import annotations

import aiohttp
from emulator_helpers import KEY, identify

from amplitude_async import ManualClock
from amplitude_async.emulator import Emulator
from amplitude_async.emulator._throttle import Throttle


async def test_window_names_exactly_the_identities_over_threshold(
    clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    async with Emulator(api_keys=[KEY], eps_threshold=3, clock=clock) as emu:
        first = [{"user_id": "user-hot", "device_id": "device-hot"}] * 2 + [
            {"user_id": "user-cold"}
        ]
        assert await identify(http, emu, first) == (200, "success")
        second = [
            {"user_id": "user-cold"},
            {"user_id": "user-hot", "device_id": "device-hot"},
            {"user_id": "user-new"},
            {"user_id": "user-hot"},
        ]
        status, _ = await identify(http, emu, second)
        assert status == 429
        async with http.post(
            emu.identify_url, data={"api_key": KEY, "identification": _json(second)}
        ) as r:
            body = await r.json()
        assert body == {
            "code": 429,
            "error": "Too many requests for some devices and users",
            "eps_threshold": 3,
            "throttled_devices": {},
            "throttled_users": {"user-hot": 4},
            "throttled_events": [1, 3],
        }
        # Nothing of a throttled request is applied.
        assert [a.request for a in emu.applied] == [1, 1, 1]
        assert emu.stats().throttled_requests == 2
        assert emu.stats().throttled_items == 8
        # The window slides: a second later the same request passes.
        await clock.advance(1.0)
        assert await identify(http, emu, second) == (200, "success")
        assert len(emu.applied) == 7


async def test_devices_are_throttled_on_their_own(
    clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    async with Emulator(api_keys=[KEY], eps_threshold=2, clock=clock) as emu:
        items = [{"device_id": "device-1"}, {"user_id": "user-1", "device_id": "device-1"}]
        assert await identify(http, emu, items) == (200, "success")
        async with http.post(
            emu.identify_url, data={"api_key": KEY, "identification": _json(items[:1])}
        ) as r:
            assert r.status == 429
            body = await r.json()
        assert (body["throttled_devices"], body["throttled_users"], body["throttled_events"]) == (
            {"device-1": 3},
            {},
            [0],
        )


async def test_forced_throttle_until_unthrottled(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.throttle(users=["user-held"], devices=["device-held"])
    items = [{"user_id": "user-free"}, {"user_id": "user-held"}, {"device_id": "device-held"}]
    async with http.post(
        emu.identify_url, data={"api_key": KEY, "identification": _json(items)}
    ) as r:
        assert r.status == 429
        body = await r.json()
    assert body["throttled_users"] == {"user-held": 1}
    assert body["throttled_devices"] == {"device-held": 1}
    assert body["throttled_events"] == [1, 2]
    assert emu.applied == []
    # Requests not naming a held identity pass.
    assert await identify(http, emu, [{"user_id": "user-free"}]) == (200, "success")
    emu.unthrottle(users=["user-held"])
    assert (await identify(http, emu, items))[0] == 429  # the device is still held
    emu.unthrottle()
    assert await identify(http, emu, items) == (200, "success")
    assert emu.users() == {"user-free": {}, "user-held": {}}


async def test_daily_quota(clock: ManualClock, http: aiohttp.ClientSession) -> None:
    async with Emulator(api_keys=[KEY], eps_threshold=None, daily_quota=2, clock=clock) as emu:
        assert await identify(http, emu, [{"user_id": "user-1"}] * 2) == (200, "success")
        async with http.post(
            emu.identify_url,
            data={"api_key": KEY, "identification": _json([{"user_id": "user-1"}])},
        ) as r:
            assert r.status == 429
            body = await r.json()
        assert body["exceeded_daily_quota_users"] == {"user-1": 3}
        assert body["exceeded_daily_quota_devices"] == {}
        assert body["throttled_events"] == [0]
        await clock.advance(86_400.0)
        assert await identify(http, emu, [{"user_id": "user-1"}]) == (200, "success")


def test_throttle_unit_sliding_window() -> None:
    clock = ManualClock(start=0.0)
    throttle = Throttle(clock, eps_threshold=3)
    assert throttle.check({"u": 2}, {}) is None
    clock._now = 0.5
    assert throttle.check({"u": 1}, {}) is None
    rejection = throttle.check({"u": 1}, {})
    assert rejection is not None and rejection.users == {"u": 4}
    clock._now = 1.0  # the first two fall out of the window (t <= now - 1)
    assert throttle.check({"u": 2}, {}) is None
    rejection = throttle.check({"u": 1}, {})
    assert rejection is not None and rejection.users == {"u": 4}


def test_no_threshold_means_no_throttling() -> None:
    throttle = Throttle(ManualClock(), eps_threshold=None)
    assert throttle.check({"u": 10_000}, {"d": 10_000}) is None


def _json(value: object) -> str:
    import json

    return json.dumps(value)
