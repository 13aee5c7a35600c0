"""The transport seam: ``AmplitudeClient(transport=...)``, ``testing.MockTransport`` and the
default ``AiohttpTransport`` (against a real server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Delivered, Failed, FailureReason, Identify
from amplitude_async.testing import (
    HttpRequest,
    HttpResponse,
    ManualClock,
    MockTransport,
    identifications,
    response,
)

from .conftest import ScriptedServer, fast_config

KEY = "test-api-key-0123456789"
URL = "http://127.0.0.1:9/identify"


async def test_a_mock_transport_sees_the_request_and_its_answer_is_the_outcome() -> None:
    transport = MockTransport(lambda request: response(200))
    async with AmplitudeClient(
        KEY, server_url=URL, config=fast_config(), transport=transport
    ) as amp:
        receipt = await amp.identify(Identify(user_id="user-1").set("plan", "pro"))
        assert await receipt == Delivered(200, 1)
    (request,) = transport.requests
    assert (request.method, request.url) == ("POST", URL)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert identifications(request) == [
        {"user_id": "user-1", "user_properties": {"$set": {"plan": "pro"}}}
    ]
    assert KEY not in repr(request)
    # The client closes the transport it was given, as httpx does.
    assert transport.closed


async def test_an_async_handler_and_a_429_hold_on_a_manual_clock() -> None:
    clock = ManualClock()
    hot = {"user-hot"}

    async def handler(request: HttpRequest) -> HttpResponse:
        users = {i["user_id"] for i in identifications(request)}
        if users & hot:
            return response(429, json={"code": 429, "throttled_users": {"user-hot": 31}})
        return response(200)

    transport = MockTransport(handler)
    cfg = fast_config(throttle_hold=15.0, flush_interval=0.0)
    async with AmplitudeClient(
        KEY, server_url=URL, config=cfg, clock=clock, transport=transport
    ) as amp:
        held = await amp.identify(Identify(user_id="user-hot").set("a", 1))
        free = await amp.identify(Identify(user_id="user-cold").set("a", 1))
        assert (await asyncio.wait_for(_await(free), 5)).ok
        assert not held.done() and amp.stats().throttled_identities == 1
        hot.clear()
        await clock.advance(15.1)
        assert await asyncio.wait_for(_await(held), 5) == Delivered(200, 2)


async def test_a_transport_error_is_retried_and_a_connect_error_is_no_duplicate() -> None:
    answers: list[Any] = [aa.ConnectError("refused", maybe_applied=False), response(200)]

    def handler(request: HttpRequest) -> HttpResponse:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    async with AmplitudeClient(
        KEY, server_url=URL, config=fast_config(), transport=MockTransport(handler)
    ) as amp:
        outcome = await (await amp.identify(Identify(user_id="user-1").set("a", 1)))
    assert outcome == Delivered(200, 2, possible_duplicate=False)


async def test_a_timeout_from_the_transport_fails_after_the_retry_deadline() -> None:
    def handler(request: HttpRequest) -> HttpResponse:
        raise aa.RequestTimeout("no answer in time")

    cfg = fast_config(retry_deadline=0.05)
    async with AmplitudeClient(
        KEY, server_url=URL, config=cfg, transport=MockTransport(handler)
    ) as amp:
        outcome = await asyncio.wait_for(
            _await(await amp.identify(Identify(user_id="user-1").set("a", 1))), 5
        )
    assert isinstance(outcome, Failed) and outcome.reason is FailureReason.RETRIES_EXHAUSTED
    assert outcome.maybe_applied


def test_a_transport_that_is_not_one_is_refused_at_the_call() -> None:
    with pytest.raises(aa.ConfigurationError, match="AsyncTransport"):
        AmplitudeClient(KEY, transport=object())  # type: ignore[arg-type]


async def test_the_aiohttp_transport_owns_its_session(server: ScriptedServer) -> None:
    transport = aa.AiohttpTransport(max_connections=2, timeout=2.0)
    answer = await transport.handle_async_request(
        HttpRequest(
            "POST",
            server.url,
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"api_key=k&identification=%5B%5D",
        )
    )
    assert answer.status == 200 and answer.body == b"success"
    session = transport.session
    await transport.aclose()
    assert session.closed
    await transport.aclose()  # twice is harmless


async def test_the_aiohttp_transport_translates_a_refused_connection() -> None:
    transport = aa.AiohttpTransport(timeout=2.0)
    try:
        with pytest.raises(aa.ConnectError) as info:
            await transport.handle_async_request(HttpRequest("POST", URL, {}, b""))
        assert info.value.maybe_applied is False
    finally:
        await transport.aclose()


async def test_the_default_transport_talks_to_a_real_server(server: ScriptedServer) -> None:
    server.responder = lambda request: web.Response(text="success")
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        assert (await (await amp.identify(Identify(user_id="user-1").set("a", 1)))).ok
    assert len(server.requests) == 1


async def _await(receipt: aa.Receipt) -> aa.Outcome:
    return await receipt
