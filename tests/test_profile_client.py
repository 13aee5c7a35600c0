"""ProfileClient against aioresponses: exact requests, error mapping, retries, state, secrets."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Awaitable, Coroutine
from types import SimpleNamespace
from typing import Any, TypeVar

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from aioresponses.core import RequestMatch
from yarl import URL

from amplitude_async import (
    AmplitudeError,
    APIStatusError,
    AuthenticationError,
    BadRequest,
    ClientClosed,
    ClientNotStarted,
    ClientStateError,
    ConfigurationError,
    ConnectError,
    ManualClock,
    ProfileClient,
    RateLimited,
    ServerError,
    UserNotFound,
)

SECRET = "sk-live-7f3a9c2e11d04b5e"
URL_DEFAULT = "https://profile-api.amplitude.com/v1/userprofile"
ANY_QUERY = re.compile(r"^https://profile-api\.amplitude\.com/v1/userprofile(\?.*)?$")
PROFILE_BODY = {"userData": {"user_id": "user-1", "amp_props": {"plan": "pro"}}}
NOT_SEEN = {"error": "User id and device id not seen before"}

T = TypeVar("T")


class _Response(aiohttp.ClientResponse):
    """aiohttp 3.12+ requires ``stream_writer``, which aioresponses 0.7.9 does not pass."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture
def mock(monkeypatch: pytest.MonkeyPatch) -> Any:
    build = RequestMatch._build_response

    def build_compatible(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["response_class"] = kwargs.get("response_class") or _Response
        return build(self, *args, **kwargs)

    monkeypatch.setattr(RequestMatch, "_build_response", build_compatible)
    with aioresponses() as m:
        yield m


def requests_made(m: Any) -> list[tuple[URL, dict[str, Any]]]:
    """(url with query, request kwargs) of every request, in the order sent."""
    calls = [(url, call.kwargs) for (_, url), calls in m.requests.items() for call in calls]
    return calls


def client(clock: ManualClock | None = None, **kwargs: Any) -> ProfileClient:
    kwargs.setdefault("retry_base", 0.05)
    kwargs.setdefault("retry_cap", 0.2)
    kwargs.setdefault("retry_deadline", 2.0)
    return ProfileClient(SECRET, clock=clock or ManualClock(), **kwargs)


async def drive(clock: ManualClock, work: Coroutine[Any, Any, T] | Awaitable[T]) -> T:
    """Run ``work`` while moving the manual clock, so backoffs and pacing pass instantly."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await clock.advance(0.01)
    return task.result()


# -- the request -------------------------------------------------------------------


async def test_every_parameter_reaches_the_query_string(mock: Any) -> None:
    mock.get(ANY_QUERY, payload=PROFILE_BODY)
    async with client() as profiles:
        await profiles.get(
            "user@example.com a+b",
            amp_props=True,
            cohort_ids=False,
            computations=True,
            comp_id="comp-7",
            recommendations=True,
            rec_id=["rec-a", "rec-b"],
            rec_type="random",
            limit=5,
            propensity=True,
            prediction_id="pred-1",
            propensity_type="pct",
        )
    [(url, kwargs)] = requests_made(mock)
    assert str(url.with_query(None)) == URL_DEFAULT
    assert dict(url.query) == {
        "user_id": "user@example.com a+b",
        "get_amp_props": "true",
        "get_cohort_ids": "false",
        "get_computations": "true",
        "comp_id": "comp-7",
        "get_recs": "true",
        "rec_id": "rec-a,rec-b",
        "rec_type": "random",
        "limit": "5",
        "get_propensity": "true",
        "prediction_id": "pred-1",
        "propensity_type": "pct",
    }
    assert kwargs["headers"]["Authorization"] == f"Api-Key {SECRET}"
    assert kwargs["allow_redirects"] is False


async def test_device_id_only_and_implied_flags(mock: Any) -> None:
    mock.get(ANY_QUERY, payload=PROFILE_BODY)
    async with client() as profiles:
        await profiles.get(
            device_id="dev-1",
            rec_id="rec-a",
            comp_id="c",
            prediction_id="p",
            propensity_type="score",
        )
    [(url, _)] = requests_made(mock)
    assert dict(url.query) == {
        "device_id": "dev-1",
        "get_computations": "true",
        "comp_id": "c",
        "get_recs": "true",
        "rec_id": "rec-a",
        "get_propensity": "true",
        "prediction_id": "p",
        "propensity_type": "score",
    }


async def test_server_url_is_configurable(mock: Any) -> None:
    mock.get(
        re.compile(r"^http://127\.0\.0\.1:9/v1/userprofile\?user_id=u-1$"), payload=PROFILE_BODY
    )
    async with client(server_url="http://127.0.0.1:9/v1/userprofile") as profiles:
        profile = await profiles.get("u-1")
    assert profile.amp_props == {"plan": "pro"}


async def test_response_decodes_into_user_profile(mock: Any) -> None:
    body = {
        "userData": {
            "user_id": "user-1",
            "device_id": "dev-1",
            "amplitude_id": 42,
            "amp_props": {"plan": "pro"},
            "cohort_ids": ["c1"],
            "computations": {"ltv": 9.5},
            "recommendations": [{"rec_id": "r", "items": ["i1", "i2"], "is_control": False}],
            "propensities": [{"prop": 80, "pred_id": "p", "prop_type": "score"}],
        }
    }
    mock.get(ANY_QUERY, payload=body)
    async with client() as profiles:
        profile = await profiles.get("user-1")
    assert (profile.user_id, profile.device_id, profile.amplitude_id) == ("user-1", "dev-1", 42)
    assert profile.cohort_ids == ["c1"]
    assert profile.computations == {"ltv": 9.5}
    assert profile.recommendations is not None
    assert profile.recommendations[0].items == ["i1", "i2"]
    assert profile.propensities is not None
    assert profile.propensities[0].prop == 80


# -- checked before sending ------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"user_id": "u-1", "device_id": "d-1"},
        {"user_id": ""},
        {"user_id": "u-1", "rec_type": "best"},
        {"user_id": "u-1", "propensity_type": "percent"},
        {"user_id": "u-1", "limit": 0},
        {"user_id": "u-1", "limit": -3},
        {"user_id": "u-1", "limit": True},
        {"user_id": "u-1", "rec_id": []},
        {"user_id": "u-1", "rec_id": "a,b"},
        {"user_id": "u-1", "rec_id": "r", "recommendations": False},
        {"user_id": "u-1", "comp_id": "c", "computations": False},
        {"user_id": "u-1", "amp_props": "yes"},
        {"user_id": "u-1", "recommendations": True},
        {"user_id": "u-1", "propensity": True, "prediction_id": "p"},
        {"user_id": "u-1", "propensity_type": "pct"},
    ],
)
async def test_bad_arguments_raise_bad_request_before_any_request(
    mock: Any, kwargs: dict[str, Any]
) -> None:
    async with client() as profiles:
        with pytest.raises(BadRequest) as info:
            await profiles.get(**kwargs)
    assert info.value.status is None
    assert requests_made(mock) == []


# -- error mapping -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Invalid Api-Key", "Missing Api-Key in Authorization header"])
async def test_401_is_authentication_error_with_amplitudes_text(mock: Any, text: str) -> None:
    mock.get(ANY_QUERY, status=401, body=text)
    async with client() as profiles:
        with pytest.raises(AuthenticationError) as info:
            await profiles.get("u-1")
    assert (info.value.message, info.value.status) == (text, 401)
    assert len(requests_made(mock)) == 1


@pytest.mark.parametrize("status", [200, 400, 404])
async def test_not_seen_before_is_user_not_found_whatever_the_status(
    mock: Any, status: int
) -> None:
    mock.get(ANY_QUERY, status=status, payload=NOT_SEEN)
    async with client() as profiles:
        with pytest.raises(UserNotFound) as info:
            await profiles.get("u-1")
    assert info.value.status == status
    assert "not seen before" in str(info.value)


async def test_429_is_rate_limited_with_retry_after_and_not_retried(mock: Any) -> None:
    mock.get(ANY_QUERY, status=429, body="Too many requests", headers={"Retry-After": "7"})
    async with client() as profiles:
        with pytest.raises(RateLimited) as info:
            await profiles.get("u-1")
    assert info.value.retry_after == 7.0
    assert len(requests_made(mock)) == 1


async def test_400_is_bad_request_with_the_servers_message(mock: Any) -> None:
    mock.get(ANY_QUERY, status=400, payload={"error": "Invalid rec_id"})
    async with client() as profiles:
        with pytest.raises(BadRequest) as info:
            await profiles.get("u-1")
    assert (info.value.message, info.value.status) == ("Invalid rec_id", 400)


async def test_unexpected_status_and_garbage_body_are_status_errors(mock: Any) -> None:
    mock.get(ANY_QUERY, status=403, body="Forbidden")
    mock.get(ANY_QUERY, status=200, body="<html>oops</html>")
    async with client() as profiles:
        with pytest.raises(APIStatusError) as forbidden:
            await profiles.get("u-1")
        with pytest.raises(APIStatusError) as garbage:
            await profiles.get("u-1")
    assert (type(forbidden.value), forbidden.value.status) == (APIStatusError, 403)
    assert (type(garbage.value), garbage.value.status) == (APIStatusError, 200)


async def test_redirect_is_not_followed(mock: Any) -> None:
    mock.get(ANY_QUERY, status=302, headers={"Location": "https://elsewhere.example/steal"})
    mock.get("https://elsewhere.example/steal", payload=PROFILE_BODY)
    async with client() as profiles:
        with pytest.raises(APIStatusError) as info:
            await profiles.get("u-1")
    assert info.value.status == 302
    assert [url.host for url, _ in requests_made(mock)] == ["profile-api.amplitude.com"]


# -- retries -------------------------------------------------------------------------


async def test_503_is_retried_then_succeeds(mock: Any) -> None:
    clock = ManualClock()
    mock.get(ANY_QUERY, status=503, body="Service Unavailable")
    mock.get(ANY_QUERY, status=503, body="Service Unavailable")
    mock.get(ANY_QUERY, payload=PROFILE_BODY)
    async with client(clock) as profiles:
        profile = await drive(clock, profiles.get("u-1"))
        stats = profiles.statistics()
    assert profile.user_id == "user-1"
    assert (stats.requests, stats.retries) == (3, 2)


async def test_connection_reset_is_retried_then_succeeds(mock: Any) -> None:
    clock = ManualClock()
    mock.get(ANY_QUERY, exception=aiohttp.ClientOSError(104, "Connection reset by peer"))
    mock.get(ANY_QUERY, exception=aiohttp.ServerDisconnectedError())
    mock.get(ANY_QUERY, payload=PROFILE_BODY)
    async with client(clock) as profiles:
        profile = await drive(clock, profiles.get("u-1"))
    assert profile.user_id == "user-1"
    assert len(requests_made(mock)) == 3


async def test_retries_stop_at_the_deadline_and_raise_the_last_error(mock: Any) -> None:
    clock = ManualClock()
    mock.get(ANY_QUERY, status=500, body="boom", repeat=True)
    async with client(clock, retry_deadline=1.0) as profiles:
        start = clock.now()
        with pytest.raises(ServerError) as info:
            await drive(clock, profiles.get("u-1"))
    assert info.value.status == 500
    assert clock.now() - start <= 1.0 + 0.02
    # Backoff is capped at 0.2 s, so a 1 s deadline allows several attempts.
    assert len(requests_made(mock)) >= 5


async def test_persistent_connection_errors_raise_connect_error(mock: Any) -> None:
    clock = ManualClock()
    mock.get(ANY_QUERY, exception=aiohttp.ClientConnectionError("reset"), repeat=True)
    async with client(clock, retry_deadline=0.5) as profiles:
        with pytest.raises(ConnectError):
            await drive(clock, profiles.get("u-1"))
    assert len(requests_made(mock)) >= 2


async def test_close_during_backoff_ends_the_lookup_with_client_closed(mock: Any) -> None:
    clock = ManualClock()
    answered = asyncio.Event()

    def unavailable(url: URL, **_: Any) -> CallbackResult:
        answered.set()
        return CallbackResult(status=503)

    mock.get(ANY_QUERY, callback=unavailable, repeat=True)
    profiles = client(clock, retry_base=5.0, retry_cap=5.0, retry_deadline=60.0)
    await profiles.__aenter__()
    lookup = asyncio.create_task(profiles.get("u-1"))
    await answered.wait()
    for _ in range(5):  # let the lookup read the 503 and start its backoff
        await asyncio.sleep(0)
    await profiles.aclose()
    with pytest.raises(ClientClosed):
        await lookup
    assert len(requests_made(mock)) == 1


# -- state ---------------------------------------------------------------------------


async def test_client_states() -> None:
    profiles = client()
    assert profiles.state == "unopened"
    with pytest.raises(ClientNotStarted):
        await profiles.get("u-1")
    with pytest.raises(ClientNotStarted):
        profiles.get_many(["u-1"])
    async with profiles:
        assert profiles.state == "open"
        with pytest.raises(ClientStateError):
            await profiles.__aenter__()
    assert profiles.state == "closed"
    with pytest.raises(ClientClosed):
        await profiles.get("u-1")
    with pytest.raises(ClientClosed):
        async with profiles:
            pass
    await profiles.aclose()  # closing twice is fine
    assert profiles.state == "closed"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_url": "ftp://x/y"},
        {"server_url": "https://user:pw@profile-api.amplitude.com/v1/userprofile"},
        {"timeout": 0},
        {"retry_deadline": float("inf")},
        {"max_connections": 0},
        {"rate_limit_per_minute": 0},
        {"cache_ttl": -1},
    ],
)
def test_bad_settings_raise_configuration_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ProfileClient(SECRET, **kwargs)


# -- secrets -------------------------------------------------------------------------


async def test_secret_never_appears_in_repr_errors_or_logs(
    mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock()
    # A server that echoes the key must not make us repeat it.
    mock.get(ANY_QUERY, status=401, body=f"Invalid Api-Key {SECRET}")
    mock.get(ANY_QUERY, status=503, body=f"upstream said {SECRET}")
    mock.get(ANY_QUERY, exception=aiohttp.ServerDisconnectedError(), repeat=True)
    errors: list[BaseException] = []
    async with client(clock, retry_deadline=0.5) as profiles:
        texts = [repr(profiles), str(profiles), repr(vars(profiles))]
        for _ in range(2):
            try:
                await drive(clock, profiles.get("u-1"))
            except AmplitudeError as exc:
                errors.append(exc)
    with pytest.raises(ConfigurationError) as bad_key:
        ProfileClient(f"{SECRET} \n")
    errors.append(bad_key.value)
    assert [type(e) for e in errors] == [AuthenticationError, ConnectError, ConfigurationError]
    assert errors[0].args == ("Invalid Api-Key [redacted]",)
    texts += [repr(e) for e in errors] + [str(e) for e in errors]
    texts += [caplog.text]
    assert caplog.records, "retries should have been logged"
    assert all(SECRET not in text for text in texts)


# -- get_many ------------------------------------------------------------------------


def profile_for(url: URL, **_: Any) -> CallbackResult:
    user = url.query.get("user_id") or url.query.get("device_id")
    if user is not None and user.startswith("missing"):
        return CallbackResult(status=200, payload=NOT_SEEN)
    return CallbackResult(payload={"userData": {"user_id": user}})


async def test_get_many_yields_one_result_per_id(mock: Any) -> None:
    mock.get(ANY_QUERY, callback=profile_for, repeat=True)
    clock = ManualClock()
    ids = ["user-1", "missing-1", "", "user-2"]
    async with client(clock, rate_limit_per_minute=None) as profiles:
        results = await drive(clock, collect(profiles.get_many(ids, amp_props=True)))
    by_id = {r.id: r for r in results}
    assert sorted(by_id) == sorted(ids)
    assert by_id["user-1"].unwrap().user_id == "user-1"
    assert isinstance(by_id["missing-1"].error, UserNotFound)
    assert isinstance(by_id[""].error, BadRequest)
    assert by_id["user-2"].ok
    assert all(dict(url.query)["get_amp_props"] == "true" for url, _ in requests_made(mock))
    assert len(requests_made(mock)) == 3  # the empty id never left


async def collect(results: Any) -> list[Any]:
    return [r async for r in results]


async def test_get_many_by_device_id_from_an_async_source(mock: Any) -> None:
    mock.get(ANY_QUERY, callback=profile_for, repeat=True)

    async def devices() -> Any:
        for i in range(3):
            yield f"dev-{i}"

    async with client(rate_limit_per_minute=None) as profiles:
        results = await collect(profiles.get_many(devices(), by="device_id"))
    assert sorted(r.unwrap().user_id for r in results) == ["dev-0", "dev-1", "dev-2"]
    assert all("device_id" in url.query for url, _ in requests_made(mock))


async def test_get_many_checks_options_at_the_call(mock: Any) -> None:
    async with client() as profiles:
        with pytest.raises(BadRequest):
            profiles.get_many(["u-1"], rec_type="best")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError):
            profiles.get_many(["u-1"], concurrency=0)
    assert requests_made(mock) == []


async def test_get_many_bounds_concurrency_and_yields_in_completion_order(mock: Any) -> None:
    in_flight = 0
    peak = 0
    release = {f"user-{i}": asyncio.Event() for i in range(6)}

    async def slow(url: URL, **_: Any) -> CallbackResult:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await release[url.query["user_id"]].wait()
        in_flight -= 1
        return CallbackResult(payload={"userData": {"user_id": url.query["user_id"]}})

    mock.get(ANY_QUERY, callback=slow, repeat=True)
    order: list[str] = []
    async with client(rate_limit_per_minute=None) as profiles:
        results = profiles.get_many(list(release), concurrency=2)
        # Release in reverse of what can be in flight: user-1 finishes before user-0.
        for name in ["user-1", "user-0", "user-3", "user-2", "user-5", "user-4"]:
            release[name].set()
            order.append((await anext(results)).id)
        with pytest.raises(StopAsyncIteration):
            await anext(results)
    assert order == ["user-1", "user-0", "user-3", "user-2", "user-5", "user-4"]
    assert peak == 2


async def test_get_many_stays_under_the_configured_rate(mock: Any) -> None:
    clock = ManualClock()
    sent_at: list[float] = []

    def record(url: URL, **kwargs: Any) -> CallbackResult:
        sent_at.append(clock.now())
        return profile_for(url)

    mock.get(ANY_QUERY, callback=record, repeat=True)
    ids = [f"user-{i}" for i in range(30)]
    async with client(clock, rate_limit_per_minute=120) as profiles:  # one every 0.5 s
        results = await drive(clock, collect(profiles.get_many(ids, concurrency=10)))
    assert len(results) == 30 and all(r.ok for r in results)
    gaps = [b - a for a, b in itertools.pairwise(sent_at)]
    assert min(gaps) >= 0.5 - 1e-9
    # In any 60 s window at most 120 (+1 for the window's closed end) would start; here:
    assert sent_at[-1] - sent_at[0] >= 29 * 0.5 - 1e-9


async def test_get_many_pauses_everyone_after_a_429(mock: Any) -> None:
    clock = ManualClock()
    sent_at: list[float] = []

    def record(url: URL, **kwargs: Any) -> CallbackResult:
        sent_at.append(clock.now())
        if len(sent_at) == 1:
            return CallbackResult(status=429, body="slow down", headers={"Retry-After": "5"})
        return profile_for(url)

    mock.get(ANY_QUERY, callback=record, repeat=True)
    async with client(clock, rate_limit_per_minute=600) as profiles:
        results = await drive(clock, collect(profiles.get_many(["a1", "a2", "a3"], concurrency=1)))
    assert isinstance(results[0].error, RateLimited)
    assert [r.ok for r in results] == [False, True, True]
    assert sent_at[1] - sent_at[0] >= 5.0 - 1e-9


async def test_breaking_out_of_get_many_cancels_the_lookups_in_flight(mock: Any) -> None:
    started = asyncio.Event()
    cancelled = 0

    async def hang(url: URL, **_: Any) -> CallbackResult:
        nonlocal cancelled
        if url.query["user_id"] == "fast":
            return CallbackResult(payload={"userData": {"user_id": "fast"}})
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled += 1
            raise
        raise AssertionError("unreachable")

    mock.get(ANY_QUERY, callback=hang, repeat=True)
    async with client(rate_limit_per_minute=None) as profiles:
        results = profiles.get_many(["slow-1", "slow-2", "fast"], concurrency=3)
        first = await anext(results)
        await results.aclose()  # type: ignore[attr-defined]
    assert first.id == "fast"
    assert cancelled == 2


# -- cache ---------------------------------------------------------------------------


async def test_cache_serves_repeats_until_the_ttl_passes(mock: Any) -> None:
    clock = ManualClock()
    mock.get(ANY_QUERY, callback=profile_for, repeat=True)
    async with client(clock, cache_ttl=30.0) as profiles:
        first = await profiles.get("u-1", amp_props=True)
        again = await profiles.get("u-1", amp_props=True)
        other_options = await profiles.get("u-1", cohort_ids=True)
        await clock.advance(30.0)
        expired = await profiles.get("u-1", amp_props=True)
        stats = profiles.statistics()
    assert first is again
    assert expired == first and expired is not first
    assert other_options.user_id == "u-1"
    assert len(requests_made(mock)) == 3
    assert (stats.cache_hits, stats.requests) == (1, 3)


async def test_cache_is_off_by_default_and_errors_are_not_cached(mock: Any) -> None:
    mock.get(ANY_QUERY, callback=profile_for, repeat=True)
    async with client() as profiles:
        await profiles.get("u-1")
        await profiles.get("u-1")
    async with client(cache_ttl=30.0) as cached:
        for _ in range(2):
            with pytest.raises(UserNotFound):
                await cached.get("missing-1")
    assert len(requests_made(mock)) == 4
