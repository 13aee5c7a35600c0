"""/v1/userprofile: auth, unknown users, properties, cohorts, recommendations, computations,
propensity."""

from __future__ import annotations

import aiohttp
import pytest
from emulator_helpers import SECRET, identify
from emulator_helpers import profile as _profile

from amplitude_async.emulator import Emulator


@pytest.fixture
async def seeded(emu: Emulator, http: aiohttp.ClientSession) -> Emulator:
    items = [
        {
            "user_id": "user-pro",
            "device_id": "device-pro",
            "user_properties": {"plan": "pro", "age": 41},
        },
        {"user_id": "user-free", "user_properties": {"plan": "free", "age": 19}},
    ]
    assert await identify(http, emu, items) == (200, "success")
    return emu


async def test_auth(seeded: Emulator, http: aiohttp.ClientSession) -> None:
    assert await _profile(http, seeded, headers={}, user_id="user-pro") == (
        401,
        "Missing Api-Key in Authorization header",
    )
    # User Profile API docs, "Authentication errors": a wrong key is "Invalid Api-Key";
    # a missing *or malformed* header is "Missing Api-Key in Authorization header".
    assert await _profile(
        http, seeded, headers={"Authorization": "Api-Key wrong"}, user_id="user-pro"
    ) == (401, "Invalid Api-Key")
    for header in ("Bearer " + SECRET, "Api-Key", "Api-Key   ", SECRET):
        assert await _profile(
            http, seeded, headers={"Authorization": header}, user_id="user-pro"
        ) == (401, "Missing Api-Key in Authorization header"), header


async def test_unknown_user_and_missing_ids(seeded: Emulator, http: aiohttp.ClientSession) -> None:
    assert await _profile(http, seeded, user_id="user-nobody") == (
        400,
        {"error": "User id and device id not seen before"},
    )
    status, body = await _profile(http, seeded)
    assert status == 400 and "user_id or device_id" in body["error"]


async def test_bare_lookup_has_null_parts(seeded: Emulator, http: aiohttp.ClientSession) -> None:
    status, body = await _profile(http, seeded, user_id="user-pro")
    assert status == 200
    # The documented keys only (User Profile API docs, every response example).
    assert body == {
        "userData": {
            "recommendations": None,
            "user_id": "user-pro",
            "device_id": "device-pro",
            "amp_props": None,
            "cohort_ids": None,
        }
    }


async def test_amp_props_by_user_or_device(seeded: Emulator, http: aiohttp.ClientSession) -> None:
    _, by_user = await _profile(http, seeded, user_id="user-pro", get_amp_props="true")
    _, by_device = await _profile(http, seeded, device_id="device-pro", get_amp_props="true")
    assert by_user["userData"]["amp_props"] == {"plan": "pro", "age": 41}
    assert by_device["userData"]["amp_props"] == {"plan": "pro", "age": 41}
    assert by_device["userData"]["user_id"] == "user-pro"


async def test_cohorts(seeded: Emulator, http: aiohttp.ClientSession) -> None:
    seeded.define_cohort("pro-users", where={"plan": "pro"})
    seeded.define_cohort("adults", lambda props: props.get("age", 0) >= 21)
    seeded.define_cohort("nobody", where={"plan": "enterprise"})
    _, pro = await _profile(http, seeded, user_id="user-pro", get_cohort_ids="true")
    _, free = await _profile(http, seeded, user_id="user-free", get_cohort_ids="true")
    assert pro["userData"]["cohort_ids"] == ["pro-users", "adults"]
    assert free["userData"]["cohort_ids"] == []
    record = seeded.record(user_id="user-pro")
    assert record is not None and record["cohort_ids"] == ["pro-users", "adults"]


async def test_recommendations_are_deterministic_per_user(
    seeded: Emulator, http: aiohttp.ClientSession
) -> None:
    items = [f"sku-{i}" for i in range(20)]
    seeded.define_recommendation("rec-1", items=items, title="For you", source="model-7")
    seeded.define_recommendation("rec-ctl", items=items[:3], title="Control", is_control=True)
    params = {"get_recs": "true", "rec_id": "rec-1,rec-ctl", "limit": "5"}
    _, first = await _profile(http, seeded, user_id="user-pro", **params)
    _, again = await _profile(http, seeded, user_id="user-pro", **params)
    _, other = await _profile(http, seeded, user_id="user-free", **params)
    recs = first["userData"]["recommendations"]
    assert recs == again["userData"]["recommendations"]
    assert [r["rec_id"] for r in recs] == ["rec-1", "rec-ctl"]
    # User Profile API docs, "Get a recommendation": the documented fields only.
    assert recs[0]["is_control"] is False and recs[0]["recommendation_source"] == "model-7"
    assert recs[0]["child_rec_id"] == "rec-1" and isinstance(recs[0]["last_updated"], int)
    assert len(recs[0]["items"]) == 5 and set(recs[0]["items"]) <= set(items)
    assert recs[1] == {
        "rec_id": "rec-ctl",
        "child_rec_id": "rec-ctl",
        "items": recs[1]["items"],
        "is_control": True,
        "recommendation_source": "random",
        "last_updated": recs[1]["last_updated"],
    }
    assert sorted(recs[1]["items"]) == ["sku-0", "sku-1", "sku-2"]
    assert other["userData"]["recommendations"][0]["items"] != recs[0]["items"]


async def test_recommendation_errors(seeded: Emulator, http: aiohttp.ClientSession) -> None:
    seeded.define_recommendation("rec-1", items=["a", "b"])
    assert await _profile(http, seeded, user_id="user-pro", get_recs="true") == (
        400,
        {"error": "rec_id is required when get_recs is true"},
    )
    assert await _profile(http, seeded, user_id="user-pro", get_recs="true", rec_id="rec-x") == (
        400,
        {"error": "Unknown rec_id 'rec-x'"},
    )
    status, _ = await _profile(
        http, seeded, user_id="user-pro", get_recs="true", rec_id="rec-1", limit="0"
    )
    assert status == 400


async def test_computations_and_propensity(seeded: Emulator, http: aiohttp.ClientSession) -> None:
    seeded.define_computation("comp-age", property="age")
    seeded.define_computation("comp-double", lambda props: props["age"] * 2)
    seeded.define_prediction(
        "pred-1", score=lambda props: 0.25 if props["plan"] == "free" else 0.875
    )
    _, body = await _profile(
        http,
        seeded,
        user_id="user-pro",
        get_computations="true",
        comp_id="comp-age",
        get_propensity="true",
        prediction_id="pred-1",
        propensity_type="pct",
    )
    data = body["userData"]
    # User Profile API docs: computations come back inside amp_props, and a propensity
    # both as "propensity" and as one entry of "propensities".
    assert "computations" not in data
    assert data["amp_props"] == {"computed-prop-comp-age": 41}
    assert data["propensity"] == 87
    assert data["propensities"] == [{"prop": 87, "pred_id": "pred-1", "prop_type": "pct"}]
    _, body = await _profile(
        http,
        seeded,
        user_id="user-free",
        get_computations="true",
        get_propensity="true",
        prediction_id="pred-1",
        propensity_type="score",
    )
    assert body["userData"]["amp_props"] == {
        "computed-prop-comp-age": 19,
        "computed-prop-comp-double": 38,
    }
    assert body["userData"]["propensity"] == 0.25
    status, body = await _profile(
        http, seeded, user_id="user-free", get_propensity="true", prediction_id="pred-1"
    )
    assert (status, body) == (400, {"error": "propensity_type must be 'score' or 'pct'"})


async def test_any_key_when_no_secret(http: aiohttp.ClientSession) -> None:
    async with Emulator() as emu:
        await identify(http, emu, {"user_id": "user-1"})
        status, _ = await _profile(
            http, emu, headers={"Authorization": "Api-Key whatever"}, user_id="user-1"
        )
        assert status == 200
