"""Decoding User Profile API bodies into UserProfile: full, partial, both spellings."""

from __future__ import annotations

import msgspec
import pytest

from amplitude_async import Propensity, Recommendation, UserProfile
from amplitude_async._profile_models import decode_envelope

FULL_BODY = b"""{
  "userData": {
    "user_id": "user-123",
    "device_id": "device-abc",
    "amplitude_id": 987654321,
    "amp_props": {"plan": "pro", "seats": 12, "tags": ["a", "b"], "nested": {"x": 1}},
    "cohort_ids": ["cohort1", "cohort2"],
    "computations": {"comp-1": "3", "lifetime_value": 42.5},
    "recommendations": [
      {
        "rec_id": "rec-1",
        "child_rec_id": "rec-1-child",
        "items": ["sku-1", "sku-2"],
        "is_control": false,
        "recommendation_source": "model",
        "last_updated": 1608670720
      }
    ],
    "propensities": [{"prop": 83, "pred_id": "pred-1", "prop_type": "score"}],
    "some_future_field": {"ignored": true}
  }
}"""


def test_full_response_decodes_every_part() -> None:
    profile, error = decode_envelope(FULL_BODY)
    assert error is None
    assert profile == UserProfile(
        user_id="user-123",
        device_id="device-abc",
        amplitude_id=987654321,
        amp_props={"plan": "pro", "seats": 12, "tags": ["a", "b"], "nested": {"x": 1}},
        cohort_ids=["cohort1", "cohort2"],
        computations={"comp-1": "3", "lifetime_value": 42.5},
        recommendations=[
            Recommendation(
                rec_id="rec-1",
                child_rec_id="rec-1-child",
                items=["sku-1", "sku-2"],
                is_control=False,
                recommendation_source="model",
                last_updated=1608670720,
            )
        ],
        propensities=[Propensity(prop=83, pred_id="pred-1", prop_type="score")],
    )
    assert profile.user_properties == profile.amp_props


def test_absent_and_null_parts_are_none() -> None:
    profile, _ = decode_envelope(
        b'{"userData": {"user_id": "u-1", "device_id": null, "amp_props": null}}'
    )
    assert profile == UserProfile(user_id="u-1")
    assert profile.cohort_ids is None
    assert profile.recommendations is None
    assert profile.propensities is None


def test_other_spellings_fold_into_one_name() -> None:
    profile, _ = decode_envelope(
        b"""{"userData": {
            "user_id": "u-1",
            "user_properties": {"plan": "free"},
            "computed_properties": {"c": 1},
            "recommendations": [{"rec_id": "r", "child_ids": ["i1"],
                                 "recommendation_type": "model", "title": "For you",
                                 "is_control": true}],
            "propensity": 0.75
        }}"""
    )
    assert profile is not None
    assert profile.amp_props == {"plan": "free"}
    assert profile.computations == {"c": 1}
    assert profile.recommendations == [
        Recommendation(
            rec_id="r", items=["i1"], recommendation_type="model", title="For you", is_control=True
        )
    ]
    assert profile.propensities == [Propensity(prop=0.75)]


@pytest.mark.parametrize(
    ("propensity", "expected"),
    [
        (b'{"prop": 12, "pred_id": "p"}', [Propensity(prop=12, pred_id="p")]),
        (b'[{"prop": 1}, {"prop": 2}]', [Propensity(prop=1), Propensity(prop=2)]),
        (b"null", None),
        (
            b'0.42, "prediction_id": "p", "propensity_type": "score"',
            [Propensity(prop=0.42, pred_id="p", prop_type="score")],
        ),
    ],
)
def test_single_propensity_shapes(propensity: bytes, expected: list[Propensity] | None) -> None:
    profile, _ = decode_envelope(b'{"userData": {"propensity": ' + propensity + b"}}")
    assert profile is not None
    assert profile.propensities == expected


def test_error_body_is_reported_not_decoded() -> None:
    profile, error = decode_envelope(b'{"error": "User id and device id not seen before"}')
    assert profile is None
    assert error == "User id and device id not seen before"


def test_wrong_types_raise_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError, match="amplitude_id"):
        decode_envelope(b'{"userData": {"amplitude_id": "not-a-number"}}')


def test_profiles_are_immutable() -> None:
    profile = UserProfile(user_id="u")
    with pytest.raises(AttributeError):
        profile.user_id = "other"  # type: ignore[misc]
