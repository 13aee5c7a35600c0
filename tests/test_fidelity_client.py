"""The clients follow Amplitude's documentation (issue 14, items 10 and 11).

Sources are named per test; docs/emulator.md, "Fidelity", lists them all.
"""

from __future__ import annotations

import pytest

from amplitude_async import (
    AmplitudeClient,
    Identify,
    Propensity,
    Recommendation,
    ValidationError,
)
from amplitude_async._profile_models import decode_envelope
from amplitude_async._rules import PLACEHOLDER_IDS, id_problem
from amplitude_async.emulator import Emulator

from .conftest import ScriptedServer, fast_config

KEY = "test-api-key-0123456789"


# -- 10. the documented invalid ids ------------------------------------------------------------


def test_placeholder_ids_are_exactly_the_documented_list() -> None:
    # HTTP V2 API docs, "Invalid IDs": these "result in a 400 error".
    documented = {"anonymous", "nil", "none", "null", "n/a", "na", "undefined", "unknown"}
    documented |= {"", "00000000-0000-0000-0000-000000000000", "{}", "lmy47d", "0", "-1"}
    assert documented == PLACEHOLDER_IDS
    assert id_problem("", "user_id") == "user_id '' is a placeholder id that Amplitude rejects"
    assert id_problem("LMY47D", "device_id") is not None
    for fine in ("lmy47v", "guest", "empty"):
        assert id_problem(fine, "user_id") is None, fine


def test_identify_refuses_every_placeholder_in_any_case_and_keeps_near_misses() -> None:
    # Identify's fast check (_identify_checks.plain_id) skips the placeholder lookup for
    # ids whose length or last character no placeholder has; none may slip through it.
    for placeholder in sorted(PLACEHOLDER_IDS - {""}):
        for spelling in {placeholder, placeholder.upper(), placeholder.title()}:
            for kind in ("user_id", "device_id"):
                with pytest.raises(ValidationError, match="placeholder"):
                    Identify(**{kind: spelling})
    for fine in ("lmy47v", "nulls", "unknowns", "user-0", "user-1", "0x", "-10", "{}x"):
        assert Identify(user_id=fine).user_id == fine


async def test_the_client_refuses_an_empty_user_id_before_queueing(server: ScriptedServer) -> None:
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        with pytest.raises(ValueError, match="placeholder"):
            await amp.identify(Identify(user_id="", device_id="device-1").set("a", 1))
    assert server.requests == []


# -- 11. UserProfile reads the documented and the seed OpenAPI shapes ---------------------------


def test_user_profile_reads_the_documented_shapes() -> None:
    # User Profile API docs: "Get multiple recommendations", "Get all computations" and
    # "Prediction propensity score with multiple prediction IDs" responses, as printed.
    body = b"""{"userData": {
        "recommendations": [
          {"rec_id": "testRecId", "child_rec_id": "testRecId",
           "items": ["cookie", "cracker"], "is_control": false,
           "recommendation_source": "model", "last_updated": 1608670720}],
        "user_id": "testUser", "device_id": "ffff-ffff-ffff-ffff",
        "amp_props": {"computed-prop-1": "5000000.0", "computed-prop-2": "3", "plan": "pro"},
        "cohort_ids": null,
        "propensity": null,
        "propensities": [
          {"prop": 83, "pred_id": "0x10x", "prop_type": "score"},
          {"prop": 85, "pred_id": "0x11x", "prop_type": "score"}]}}"""
    profile, error = decode_envelope(body)
    assert error is None and profile is not None
    assert profile.recommendations == [
        Recommendation(
            rec_id="testRecId",
            child_rec_id="testRecId",
            items=["cookie", "cracker"],
            is_control=False,
            recommendation_source="model",
            last_updated=1608670720,
        )
    ]
    assert profile.computations == {"1": "5000000.0", "2": "3"}
    assert profile.amp_props is not None and profile.amp_props["plan"] == "pro"
    assert profile.propensities == [
        Propensity(prop=83, pred_id="0x10x", prop_type="score"),
        Propensity(prop=85, pred_id="0x11x", prop_type="score"),
    ]
    single, _ = decode_envelope(
        b'{"userData": {"propensity": 0.500001, "propensities": '
        b'[{"prop": 0.500001, "pred_id": "0x10x", "prop_type": "score"}]}}'
    )
    assert single is not None
    assert single.propensities == [Propensity(prop=0.500001, pred_id="0x10x", prop_type="score")]


def test_user_profile_still_reads_the_seed_openapi_shapes() -> None:
    body = b"""{"userData": {
        "user_id": "user-1", "amplitude_id": 123456789,
        "user_properties": {"plan": "pro"},
        "computed_properties": {"ltv": 9.5},
        "recommendations": [{"rec_id": "r", "child_ids": ["i1", "i2"],
                             "recommendation_type": "model", "title": "For you",
                             "is_control": true}],
        "propensity": {"prop": 0.75, "pred_id": "p", "prop_type": "score"}}}"""
    profile, _ = decode_envelope(body)
    assert profile is not None
    assert profile.amplitude_id == 123456789
    assert profile.amp_props == {"plan": "pro"}
    assert profile.computations == {"ltv": 9.5}
    assert profile.recommendations == [
        Recommendation(
            rec_id="r",
            items=["i1", "i2"],
            recommendation_type="model",
            title="For you",
            is_control=True,
        )
    ]
    assert profile.propensities == [Propensity(prop=0.75, pred_id="p", prop_type="score")]


async def test_profile_client_reads_the_emulators_documented_answer() -> None:
    from amplitude_async import ProfileClient

    async with Emulator(api_keys=[KEY], secret_key="secret-1") as emu:
        async with AmplitudeClient(KEY, server_url=emu.identify_url, config=fast_config()) as amp:
            assert (await (await amp.identify(Identify(user_id="user-1").set("seats", 12)))).ok
        emu.define_computation("comp-seats", property="seats")
        emu.define_recommendation("rec-1", ["a", "b", "c"])
        async with ProfileClient("secret-1", server_url=emu.profile_url) as profiles:
            profile = await profiles.get(
                "user-1", amp_props=True, computations=True, rec_id="rec-1", limit=2
            )
    assert profile.computations == {"comp-seats": 12}
    assert profile.amp_props == {"seats": 12, "computed-prop-comp-seats": 12}
    assert profile.recommendations is not None
    (rec,) = profile.recommendations
    assert rec.rec_id == "rec-1" and rec.child_rec_id == "rec-1"
    assert rec.recommendation_source == "model" and len(rec.items or []) == 2
