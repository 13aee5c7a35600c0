"""The User Profile query string, built without a client: parameters, order, and the
BadRequest (status None) each mistake raises before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

from amplitude_async import BadRequest
from amplitude_async._profile_query import id_param, lookup_id, options_params


def test_no_options_send_nothing_and_flags_are_lowercase_in_documented_order() -> None:
    assert options_params() == ()
    assert options_params(
        amp_props=True, cohort_ids=False, computations=None, recommendations=None
    ) == (("get_amp_props", "true"), ("get_cohort_ids", "false"))


def test_an_option_of_a_part_asks_for_that_part() -> None:
    assert options_params(limit=3, rec_id="r") == (
        ("get_recs", "true"),
        ("rec_id", "r"),
        ("limit", "3"),
    )
    assert options_params(comp_id="c") == (("get_computations", "true"), ("comp_id", "c"))
    assert options_params(prediction_id="p", propensity_type="score") == (
        ("get_propensity", "true"),
        ("prediction_id", "p"),
        ("propensity_type", "score"),
    )


@pytest.mark.parametrize(
    ("rec_id", "sent"),
    [("one", "one"), (["a", "b", "c"], "a,b,c"), (("x", "y"), "x,y")],
)
def test_rec_ids_are_joined_with_commas(rec_id: Any, sent: str) -> None:
    assert dict(options_params(rec_id=rec_id))["rec_id"] == sent


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amp_props": 1}, "amp_props must be True, False or None, got int"),
        ({"rec_id": "r", "limit": 2, "recommendations": False}, "rec_id, limit given but recommendations=False"),
        ({"recommendations": True}, "recommendations=True needs rec_id (which recommendations to get)"),
        ({"rec_id": []}, "rec_id must name at least one recommendation"),
        ({"rec_id": ["a", "b,c"]}, "rec_id 'b,c' contains a comma"),
        ({"rec_id": ["a", " "]}, "rec_id must be a non-empty string"),
        ({"rec_id": "r", "rec_type": "best"}, "rec_type must be one of 'model', 'random', got 'best'"),
        ({"rec_id": "r", "limit": True}, "limit must be a positive int, got True"),
        ({"rec_id": "r", "limit": 0}, "limit must be a positive int, got 0"),
        ({"propensity": True, "prediction_id": "p"}, "propensity=True needs prediction_id and propensity_type"),
        ({"prediction_id": "p", "propensity_type": "percent"}, "propensity_type must be one of 'score', 'pct', got 'percent'"),
        ({"comp_id": ""}, "comp_id must be a non-empty string"),
    ],
)  # fmt: skip
def test_bad_options_raise_bad_request_with_a_clear_message(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadRequest) as info:
        options_params(**kwargs)
    assert info.value.message == message
    assert info.value.status is None


def test_id_param_and_lookup_id() -> None:
    assert id_param("user_id", "u-1") == ("user_id", "u-1")
    assert lookup_id("u-1", None) == ("user_id", "u-1")
    assert lookup_id(None, "d-1") == ("device_id", "d-1")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: id_param("email", "a@b"), "ids must be looked up by 'user_id' or 'device_id', not 'email'"),
        (lambda: id_param("user_id", 5), "user_id must be a non-empty string, got int"),
        (lambda: id_param("device_id", "  "), "device_id must be a non-empty string, got str"),
        (lambda: lookup_id(None, None), "give exactly one of user_id and device_id"),
        (lambda: lookup_id("u-1", "d-1"), "give exactly one of user_id and device_id"),
    ],
)  # fmt: skip
def test_bad_ids_raise_bad_request(call: Any, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        call()
    assert info.value.message == message
