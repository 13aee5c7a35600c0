"""Issue 13, item 1: an answer nested thousands deep is undecodable input, not a crash.

msgspec raises RecursionError for such a body (neither a decode nor a validation
error); before the fix it escaped classify() and killed the client's background task,
and escaped ProfileClient.get() / stopped get_many().
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Delivered, Failed, FailureReason, Identify

from ..conftest import fast_config
from .hostile import HostileServer, deep_json

KEY = "hostile-key-000111"
DEEP = deep_json(5000)


@pytest.mark.parametrize("status", [429, 400, 503])
async def test_a_deeply_nested_error_body_does_not_kill_the_client(status: int) -> None:
    def answer(number: int, request: web.Request) -> web.Response:
        if number == 0:
            return web.Response(status=status, body=DEEP, content_type="application/json")
        return web.Response(text="success")

    async with HostileServer(answer) as server:
        amp = AmplitudeClient(KEY, server_url=server.identify_url, config=fast_config())
        async with amp:
            first = await amp.identify(Identify(user_id="user-00001").set("a", 1))
            outcome = await asyncio.wait_for(_await(first), 10)
            # The client still works after the hostile answer.
            second = await amp.identify(Identify(user_id="user-00002").set("a", 2))
            assert await asyncio.wait_for(_await(second), 10) == Delivered(200, 1)
        # Leaving `async with` raised nothing (no ExceptionGroup from a dead task).
    if status == 400:
        assert isinstance(outcome, Failed) and outcome.reason is FailureReason.INVALID
    else:
        assert isinstance(outcome, Delivered) and outcome.attempts == 2
    assert amp.stats().delivered + amp.stats().failed_total == 2


async def test_a_deeply_nested_profile_answer_is_an_error_not_a_crash() -> None:
    def answer(number: int, request: web.Request) -> web.Response:
        kind = request.query.get("user_id", "")
        if kind.startswith("ok"):
            body = b'{"userData":{"user_id":"' + kind.encode() + b'","amp_props":{"a":1}}}'
            return web.Response(body=body, content_type="application/json")
        status = 400 if kind.startswith("bad") else 200
        deep = b'{"userData":{"amp_props":{"x":' + b"[" * 5000 + b"]" * 5000 + b"}}}"
        return web.Response(status=status, body=deep, content_type="application/json")

    async with (
        HostileServer(answer) as server,
        aa.ProfileClient("hostile-secret-1", server_url=server.profile_url) as prof,
    ):
        with pytest.raises(aa.BadRequest):
            await prof.get("bad-user-1")
        with pytest.raises(aa.APIStatusError, match="not a profile"):
            await prof.get("deep-user-1")
        ids = ["ok-user-1", "deep-user-2", "bad-user-2", "ok-user-2"]
        results = {r.id: r async for r in prof.get_many(ids, amp_props=True)}
    assert set(results) == set(ids)
    assert results["ok-user-1"].unwrap().amp_props == {"a": 1}
    assert results["ok-user-2"].ok
    assert isinstance(results["deep-user-2"].error, aa.APIStatusError)
    assert isinstance(results["bad-user-2"].error, aa.BadRequest)


async def _await(receipt: aa.Receipt) -> aa.Outcome:
    return await receipt
