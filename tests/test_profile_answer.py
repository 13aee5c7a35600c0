"""A User Profile answer mapped without a client: status to error, not-found detection,
and hostile bodies (too long, too deep, not JSON, echoing the key) that must end as an
error, never as a crash or a leak."""

from __future__ import annotations

import json

import pytest

from amplitude_async import (
    APIStatusError,
    AuthenticationError,
    BadRequest,
    RateLimited,
    ServerError,
    UserNotFound,
)
from amplitude_async._http import HttpResponse
from amplitude_async._profile_answer import (
    NOT_SEEN_BEFORE,
    PROFILE_ANSWER_MAX_BYTES,
    answer,
    status_error,
)
from amplitude_async._scrub import REDACTED, Scrubber

SECRET = "sk-live-7f3a9c2e11d04b5e"
SCRUB = Scrubber(SECRET)


def response(
    status: int, body: bytes | str = b"", *, truncated: bool = False, **headers: str
) -> HttpResponse:
    data = body.encode() if isinstance(body, str) else body
    return HttpResponse(
        status, {k.replace("_", "-"): v for k, v in headers.items()}, data, truncated
    )


def test_a_profile_is_returned() -> None:
    body = json.dumps({"userData": {"user_id": "u-1", "amp_props": {"plan": "pro"}}})
    profile = answer(response(200, body), SCRUB)
    assert (profile.user_id, profile.amp_props) == ("u-1", {"plan": "pro"})


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (401, "Invalid Api-Key", AuthenticationError, "Invalid Api-Key"),
        (400, '{"error": "Invalid rec_id"}', BadRequest, "Invalid rec_id"),
        (500, "upstream down", ServerError, "upstream down"),
        (503, "", ServerError, "HTTP 503"),
        (403, "Forbidden", APIStatusError, "Forbidden"),
        (404, '{"other": 1}', APIStatusError, '{"other": 1}'),
    ],
)
def test_each_status_maps_to_its_error(
    status: int, body: str, kind: type[APIStatusError], message: str
) -> None:
    error = status_error(response(status, body), SCRUB)
    assert type(error) is kind
    assert (error.message, error.status) == (message, status)
    with pytest.raises(kind):
        answer(response(status, body), SCRUB)


def test_429_carries_retry_after_when_it_is_a_number() -> None:
    limited = status_error(response(429, "slow down", Retry_After="7"), SCRUB)
    assert isinstance(limited, RateLimited) and limited.retry_after == 7.0
    unknown = status_error(response(429, "slow down", Retry_After="soon"), SCRUB)
    assert isinstance(unknown, RateLimited) and unknown.retry_after is None


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, json.dumps({"error": NOT_SEEN_BEFORE})),
        (400, json.dumps({"error": "  user id and DEVICE id not seen before \n"})),
        (404, NOT_SEEN_BEFORE),
        (500, NOT_SEEN_BEFORE.upper()),
    ],
)
def test_not_seen_before_is_user_not_found_whatever_the_status(status: int, body: str) -> None:
    with pytest.raises(UserNotFound) as info:
        answer(response(status, body), SCRUB)
    assert (info.value.message, info.value.status) == (NOT_SEEN_BEFORE, status)


def test_a_similar_text_is_not_user_not_found() -> None:
    error = status_error(response(400, "User id and device id not seen before today"), SCRUB)
    assert type(error) is BadRequest


def test_a_2xx_without_a_profile_is_a_status_error() -> None:
    for body, message in (
        ("{}", "profile API answered without userData"),
        ('{"error": "something else"}', "something else"),
    ):
        with pytest.raises(APIStatusError) as info:
            answer(response(200, body), SCRUB)
        assert (type(info.value), info.value.message) == (APIStatusError, message)


def test_a_truncated_answer_is_not_read() -> None:
    with pytest.raises(APIStatusError) as info:
        answer(response(200, b'{"userData": {', truncated=True), SCRUB)
    assert f"more than {PROFILE_ANSWER_MAX_BYTES} bytes" in info.value.message


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"userData": ' * 5_000, b"<html>", b"\xff\xfe{"],
)
def test_a_hostile_2xx_body_is_a_status_error_not_a_crash(body: bytes) -> None:
    with pytest.raises(APIStatusError) as info:
        answer(response(200, body), SCRUB)
    assert type(info.value) is APIStatusError
    assert info.value.message.startswith("profile API answered 200 with a body that is not")


def test_a_deeply_nested_error_body_falls_back_to_its_text_cut_to_500() -> None:
    error = status_error(response(400, b'{"error": ' * 10_000), SCRUB)
    assert type(error) is BadRequest
    assert error.message == ('{"error": ' * 60)[:500]


def test_a_long_error_text_is_cut_and_the_key_is_scrubbed_before_the_cut() -> None:
    # The key straddles character 500: cutting first would leave its start readable.
    text = "x" * 490 + SECRET + "y" * 1000
    error = status_error(response(500, text), SCRUB)
    assert len(error.message) == 500
    assert SECRET[:10] not in error.message
    assert error.message == ("x" * 490 + REDACTED + "y" * 1000)[:500]
    echoed = status_error(response(401, json.dumps({"error": f"bad key {SECRET}"})), SCRUB)
    assert echoed.message == f"bad key {REDACTED}"


def test_undecodable_bytes_in_an_error_body_do_not_escape() -> None:
    error = status_error(response(502, b"\xff\xfebad gateway"), SCRUB)
    assert type(error) is ServerError
    assert error.message.endswith("bad gateway")
