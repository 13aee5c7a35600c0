"""Faults: each scripted kind, seeded random faults, pause/resume."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from emulator_helpers import KEY, identify

from amplitude_async.emulator import Emulator, Fault, Faults

ONE = [{"user_id": "user-1", "user_properties": {"$add": {"n": 1}}}]


async def _post(http: aiohttp.ClientSession, emu: Emulator, limit: float = 5.0) -> tuple[int, str]:
    data = {"api_key": KEY, "identification": json.dumps(ONE)}
    async with http.post(
        emu.identify_url, data=data, timeout=aiohttp.ClientTimeout(total=limit)
    ) as r:
        return r.status, await r.text()


async def test_503_is_not_applied(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.script(Fault.http(503))
    assert await _post(http, emu) == (503, '{"code":503,"error":"Service unavailable"}')
    assert emu.user("user-1") is None
    assert emu.stats().faults == {"http_503": 1}


async def test_5xx_after_apply_is_applied(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.script(
        Fault.http(500, apply=True), Fault.http(502, apply=True), Fault.http(504, apply=True)
    )
    statuses = [(await _post(http, emu))[0] for _ in range(3)]
    assert statuses == [500, 502, 504]
    assert emu.user("user-1") == {"n": 3}
    assert emu.stats().faults == {
        "http_500_applied": 1,
        "http_502_applied": 1,
        "http_504_applied": 1,
    }


async def test_scripted_answers_run_in_order_then_normal(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.script(
        Fault.http(413), Fault.http(429, retry_after=2), Fault.ok(), Fault.http(400, body="nope")
    )
    async with http.post(
        emu.identify_url, data={"api_key": KEY, "identification": json.dumps(ONE)}
    ) as r:
        assert (r.status, await r.json()) == (413, {"code": 413, "error": "Payload too large"})
    async with http.post(
        emu.identify_url, data={"api_key": KEY, "identification": json.dumps(ONE)}
    ) as r:
        assert r.status == 429
        assert r.headers["Retry-After"] == "2"
        assert await r.json() == {
            "code": 429,
            "error": "Too many requests for some devices and users",
            "eps_threshold": 30,
            "throttled_devices": {},
            "throttled_users": {},
            "throttled_events": [],
        }
    assert await _post(http, emu) == (200, "success")
    assert await _post(http, emu) == (400, "nope")
    assert await _post(http, emu) == (200, "success")
    assert emu.user("user-1") == {"n": 2}


async def test_reset_drops_the_connection(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.script(Fault.reset(), Fault.reset(apply=True))
    for _ in range(2):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await _post(http, emu)
    # Only the second (apply=True) was applied: the ambiguous case.
    assert emu.user("user-1") == {"n": 1}
    assert emu.stats().faults == {"reset": 1, "reset_applied": 1}


async def test_hang_never_answers(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.script(Fault.hang(60.0))
    with pytest.raises(TimeoutError):
        await _post(http, emu, limit=0.3)
    assert emu.user("user-1") is None
    assert emu.stats().faults == {"hang": 1}


async def test_hang_ends_by_closing_the_connection(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.script(Fault.hang(0.05))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await _post(http, emu)


async def test_delay_then_normal(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.script(Fault.delay(0.2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await _post(http, emu) == (200, "success")
    assert loop.time() - started >= 0.2


async def test_pause_stalls_answers_until_resume(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    emu.pause()
    assert emu.paused
    task = asyncio.create_task(_post(http, emu))
    done, _ = await asyncio.wait([task], timeout=0.2)
    assert not done
    assert emu.user("user-1") is None
    emu.resume()
    assert await task == (200, "success")
    assert emu.user("user-1") == {"n": 1}


async def test_random_faults_are_seeded_and_reproducible(http: aiohttp.ClientSession) -> None:
    faults = Faults(rate_503=0.3, rate_5xx_after=0.3)

    async def run(seed: int) -> list[int]:
        async with Emulator(faults=faults, seed=seed, eps_threshold=None) as emu:
            return [(await _post(http, emu))[0] for _ in range(30)]

    first, again, other = await run(7), await run(7), await run(8)
    assert first == again
    assert first != other
    assert set(first) <= {200, 500, 502, 503, 504}
    assert 200 in first and 503 in first and {500, 502, 504} & set(first)


async def test_random_reset_hang_and_latency(http: aiohttp.ClientSession) -> None:
    async with Emulator(faults=Faults(rate_reset=1.0), eps_threshold=None) as emu:
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await _post(http, emu)
        emu.set_faults(Faults(rate_hang=1.0, hang_seconds=0.05))
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await _post(http, emu)
        emu.set_faults(Faults(latency=0.1))
        started = asyncio.get_running_loop().time()
        assert await _post(http, emu) == (200, "success")
        assert asyncio.get_running_loop().time() - started >= 0.1
        assert emu.stats().faults == {"reset": 1, "hang": 1}


def test_fault_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="sum to at most 1"):
        Faults(rate_503=0.7, rate_reset=0.7)
    with pytest.raises(ValueError, match="HTTP status"):
        Fault.http(42)
    assert Fault.from_json({"kind": "http", "status": 503}) == Fault.http(503)
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault.from_json({"kind": "explode"})


async def test_identify_helper_counts_statuses(emu: Emulator, http: aiohttp.ClientSession) -> None:
    emu.script(Fault.http(503))
    assert (await identify(http, emu, ONE))[0] == 503
    assert await identify(http, emu, ONE) == (200, "success")
    assert emu.stats().by_status == {503: 1, 200: 1}
