"""ProfileClient end to end against the local Amplitude emulator (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import aiohttp
import pytest

from amplitude_async import (
    AuthenticationError,
    BadRequest,
    ManualClock,
    ProfileClient,
    Propensity,
    UserNotFound,
)
from amplitude_async.emulator import Emulator

SECRET = "emulator-secret-key"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(secret_key=SECRET, eps_threshold=None) as emulator:
        emulator.define_cohort("pro-users", {"plan": "pro"})
        emulator.define_cohort("free-users", {"plan": "free"})
        emulator.define_recommendation("rec-home", [f"sku-{i}" for i in range(20)], title="Home")
        emulator.define_computation("comp-seats", property="seats", default=0)
        emulator.define_prediction("pred-churn", lambda props: 0.25)
        await identify(
            emulator,
            {
                "user_id": "user-alice",
                "device_id": "device-alice",
                "user_properties": {"$set": {"plan": "pro", "seats": 12}},
            },
            {"user_id": "user-bob", "user_properties": {"$set": {"plan": "free"}}},
        )
        yield emulator


async def identify(emu: Emulator, *identifications: dict[str, Any]) -> None:
    form = {"api_key": "any-api-key", "identification": json.dumps(list(identifications))}
    async with aiohttp.ClientSession() as session, session.post(emu.identify_url, data=form) as r:
        assert r.status == 200, await r.text()


def client(emu: Emulator, **kwargs: Any) -> ProfileClient:
    return ProfileClient(SECRET, server_url=emu.profile_url, **kwargs)


async def test_full_profile_round_trip(emu: Emulator) -> None:
    async with client(emu) as profiles:
        profile = await profiles.get(
            "user-alice",
            amp_props=True,
            cohort_ids=True,
            comp_id="comp-seats",
            rec_id="rec-home",
            rec_type="model",
            limit=5,
            prediction_id="pred-churn",
            propensity_type="pct",
        )
    assert (profile.user_id, profile.device_id) == ("user-alice", "device-alice")
    # Amplitude's documented answer has no amplitude_id (User Profile API docs examples).
    assert profile.amplitude_id is None
    assert profile.amp_props is not None
    assert (profile.amp_props["plan"], profile.amp_props["seats"]) == ("pro", 12)
    assert profile.cohort_ids == ["pro-users"]
    assert profile.computations == {"comp-seats": 12}
    assert profile.recommendations is not None
    [rec] = profile.recommendations
    # The documented recommendation fields; no title (that is the seed OpenAPI shape).
    assert rec.rec_id == "rec-home" and rec.child_rec_id == "rec-home" and rec.title is None
    assert rec.recommendation_source == "model" and rec.last_updated is not None
    assert rec.items is not None and len(rec.items) == 5
    assert set(rec.items) <= {f"sku-{i}" for i in range(20)}
    assert profile.propensities == [Propensity(prop=25, pred_id="pred-churn", prop_type="pct")]


async def test_lookup_by_device_id_and_absent_parts(emu: Emulator) -> None:
    async with client(emu) as profiles:
        profile = await profiles.get(device_id="device-alice")
    assert profile.user_id == "user-alice"
    assert (profile.amp_props, profile.cohort_ids, profile.recommendations) == (None, None, None)


async def test_errors_from_the_emulator_are_mapped(emu: Emulator) -> None:
    async with client(emu) as profiles:
        with pytest.raises(UserNotFound):
            await profiles.get("user-nobody")
        with pytest.raises(BadRequest) as unknown_rec:
            await profiles.get("user-alice", rec_id="no-such-rec")
    async with ProfileClient("wrong-key", server_url=emu.profile_url) as wrong:
        with pytest.raises(AuthenticationError) as auth:
            await wrong.get("user-alice")
    assert unknown_rec.value.status == 400
    assert (auth.value.status, auth.value.message) == (401, "Invalid Api-Key")
    assert "wrong-key" not in repr(auth.value)


async def test_get_many_against_the_emulator(emu: Emulator) -> None:
    ids = ["user-alice", "user-bob", "user-nobody"]
    async with (
        client(emu, rate_limit_per_minute=None) as profiles,
        aclosing(profiles.get_many(ids, concurrency=2, cohort_ids=True)) as results,
    ):
        by_id = {r.id: r async for r in results}
    assert by_id["user-alice"].unwrap().cohort_ids == ["pro-users"]
    assert by_id["user-bob"].unwrap().cohort_ids == ["free-users"]
    assert isinstance(by_id["user-nobody"].error, UserNotFound)


async def test_cache_saves_requests_to_the_emulator(emu: Emulator) -> None:
    clock = ManualClock()
    async with client(emu, cache_ttl=10.0, clock=clock) as profiles:
        before = await profiles.get("user-bob", amp_props=True)
        await identify(emu, {"user_id": "user-bob", "user_properties": {"$set": {"plan": "pro"}}})
        cached = await profiles.get("user-bob", amp_props=True)
        await clock.advance(10.0)
        fresh = await profiles.get("user-bob", amp_props=True)
    assert before.amp_props == cached.amp_props == {"plan": "free"}
    assert fresh.amp_props == {"plan": "pro"}
    assert emu.stats().by_endpoint["userprofile"] == 2
