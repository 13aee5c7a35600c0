"""Merged identifications through the client: one receipt per operation, outcomes shared.

On the scripted loopback server (tests/conftest.py), so each answer is exact.
"""

from __future__ import annotations

import json

from aiohttp import web

from amplitude_async import AmplitudeClient, Delivered, Failed, FailureReason, Identify

from .conftest import Request, ScriptedServer, fast_config

KEY = "outcome-key"
BAD = "user-bad01"
GOOD = "user-good1"


async def test_merged_operations_each_resolve_delivered(server: ScriptedServer) -> None:
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        receipts = [await amp.identify(Identify(user_id=GOOD).add("n", 1)) for _ in range(10)]
        await amp.flush()
        outcomes = [await r for r in receipts]
        stats = amp.stats()
    assert all(isinstance(o, Delivered) for o in outcomes)
    assert server.delivered == [{"user_id": GOOD, "user_properties": {"$add": {"n": 10}}}]
    assert (stats.delivered, stats.identifications) == (10, 1)
    assert stats.operations_per_identification == 10.0


async def test_a_rejected_merged_identification_fails_all_its_operations(
    server: ScriptedServer,
) -> None:
    message = "user_properties: invalid for user-bad01"

    def answer(request: Request) -> web.Response:
        bad = [i for i, ident in enumerate(request.identifications) if ident["user_id"] == BAD]
        if not bad:
            return web.Response(text="success")
        body = {"code": 400, "error": message, "events_with_invalid_fields": {"user_id": bad}}
        return web.Response(status=400, text=json.dumps(body), content_type="application/json")

    server.responder = answer
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        bad = [await amp.identify(Identify(user_id=BAD).set(f"p{i}", i)) for i in range(3)]
        good = [await amp.identify(Identify(user_id=GOOD).set(f"p{i}", i)) for i in range(3)]
        await amp.flush()
        bad_outcomes = [await r for r in bad]
        good_outcomes = [await r for r in good]
        stats = amp.stats()
    # The three operations of BAD went out as one identification and fail together,
    # each with the server's message; GOOD's merged identification is delivered.
    assert [ident["user_id"] for ident in server.requests[0].identifications] == [BAD, GOOD]
    assert all(
        isinstance(o, Failed) and o.reason is FailureReason.INVALID and o.status == 400
        for o in bad_outcomes
    )
    assert {o.message for o in bad_outcomes if isinstance(o, Failed)} == {message}
    assert all(isinstance(o, Delivered) for o in good_outcomes)
    assert server.delivered == [
        {"user_id": GOOD, "user_properties": {"$set": {"p0": 0, "p1": 1, "p2": 2}}}
    ]
    assert stats.failed == {"invalid": 3}
    assert stats.delivered == 3


async def test_coalescing_off_sends_one_identification_per_operation(
    server: ScriptedServer,
) -> None:
    config = fast_config(coalesce=False)
    async with AmplitudeClient(KEY, server_url=server.url, config=config) as amp:
        receipts = [await amp.identify(Identify(user_id=GOOD).add("n", 1)) for _ in range(4)]
        await amp.flush()
        outcomes = [await r for r in receipts]
        stats = amp.stats()
    assert all(isinstance(o, Delivered) for o in outcomes)
    assert server.delivered == [{"user_id": GOOD, "user_properties": {"$add": {"n": 1}}}] * 4
    assert (stats.delivered, stats.identifications) == (4, 4)
