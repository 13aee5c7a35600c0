"""AmplitudeClient against a scripted server on 127.0.0.1: batching, every answer, order."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Delivered, Failed, FailureReason, Identify

from .conftest import Request, ScriptedServer, appended_log, fast_config, op

KEY = "test-api-key-0123456789"


async def settle(receipts: list[aa.Receipt], within: float = 5.0) -> list[aa.Outcome]:
    return await asyncio.wait_for(asyncio.gather(*[_await(r) for r in receipts]), within)


async def _await(receipt: aa.Receipt) -> aa.Outcome:
    return await receipt


def throttle_body(users: list[str] = (), devices: list[str] = ()) -> str:  # type: ignore[assignment]
    return json.dumps(
        {
            "code": 429,
            "error": "Too many requests for some devices and users",
            "eps_threshold": 30,
            "throttled_users": {u: 31 for u in users},
            "throttled_devices": {d: 31 for d in devices},
            "throttled_events": [],
        }
    )


# -- the wire and batching -------------------------------------------------------------------


async def test_sends_one_form_encoded_request_with_the_documented_fields(
    server: ScriptedServer,
) -> None:
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        receipt = await amp.identify(Identify(user_id="user-1").set("plan", "pro").add("n", 1))
        outcome = await receipt
    assert outcome == Delivered(status=200, attempts=1)
    (request,) = server.requests
    assert request.content_type == "application/x-www-form-urlencoded"
    assert request.api_key == KEY
    assert request.identifications == [
        {"user_id": "user-1", "user_properties": {"$set": {"plan": "pro"}, "$add": {"n": 1}}}
    ]


async def test_multipart_encoding_carries_the_same_identifications(server: ScriptedServer) -> None:
    async with AmplitudeClient(
        KEY, server_url=server.url, config=fast_config(encoding="multipart")
    ) as amp:
        outcome = await (await amp.identify(op("user-1", plan="pro")))
    assert outcome.ok
    (request,) = server.requests
    assert request.content_type.startswith("multipart/form-data; boundary=")
    assert request.api_key == KEY
    assert request.identifications == [
        {"user_id": "user-1", "user_properties": {"$set": {"plan": "pro"}}}
    ]


async def test_batches_by_item_count(server: ScriptedServer) -> None:
    cfg = fast_config(batch_max_items=3, flush_interval=5.0)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(op(f"user-{i:03d}", plan=i)) for i in range(7)]
        await amp.flush()
    assert all(r.outcome and r.outcome.ok for r in receipts)
    assert [len(r.identifications) for r in server.requests] == [3, 3, 1]


async def test_batches_by_encoded_bytes(server: ScriptedServer) -> None:
    cfg = fast_config(batch_max_bytes=2048, flush_interval=5.0)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(op(f"user-{i:03d}", text="x" * 300)) for i in range(20)]
        await amp.flush()
    assert all(r.outcome and r.outcome.ok for r in receipts)
    assert len(server.requests) > 3
    assert all(len(r.body) <= 2048 for r in server.requests)
    assert sum(len(r.identifications) for r in server.requests) == 20


async def test_linger_holds_a_partial_batch_until_flush_interval(server: ScriptedServer) -> None:
    clock = aa.ManualClock()
    cfg = fast_config(flush_interval=1.0)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg, clock=clock) as amp:
        receipt = await amp.identify(op("user-1", plan="pro"))
        await asyncio.sleep(0.05)
        assert server.requests == [] and not receipt.done()
        await clock.advance(0.5)
        await asyncio.sleep(0.05)
        assert server.requests == []
        await clock.advance(0.6)
        assert (await asyncio.wait_for(_await(receipt), 2)).ok
    assert len(server.requests) == 1


async def test_full_batch_leaves_without_waiting_for_linger(server: ScriptedServer) -> None:
    clock = aa.ManualClock()
    cfg = fast_config(flush_interval=60.0, batch_max_items=5, coalesce=False)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg, clock=clock) as amp:
        receipts = [await amp.identify(op(f"user-{i:03d}", plan=i)) for i in range(5)]
        outcomes = await settle(receipts)
    assert all(o.ok for o in outcomes)
    assert [len(r.identifications) for r in server.requests] == [5]


# -- 429: only the named identities wait ----------------------------------------------------------


async def test_429_holds_only_the_named_users_and_keeps_their_order(server: ScriptedServer) -> None:
    clock = aa.ManualClock()
    throttled = {"user-hot"}

    def respond(request: Request) -> web.Response:
        if throttled & set(request.users()):
            return web.Response(status=429, text=throttle_body(users=sorted(throttled)))
        return web.Response(text="success")

    server.responder = respond
    cfg = fast_config(throttle_hold=15.0, flush_interval=0.0, coalesce=False)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg, clock=clock) as amp:
        hot = [await amp.identify(op("user-hot", seq=i)) for i in range(3)]
        cold = [await amp.identify(op(f"user-{i:03d}", seq=i)) for i in range(5)]
        cold_outcomes = await settle(cold)
        assert all(o.ok for o in cold_outcomes)
        # The cold users got through while the hot one is held.
        assert not any(r.done() for r in hot)
        assert amp.stats().throttled_identities == 1
        # More for the hot user while held: must come after the held ones.
        hot += [await amp.identify(op("user-hot", seq=i)) for i in range(3, 5)]
        cold2 = [await amp.identify(op("user-new01", seq=0))]
        assert all(o.ok for o in await settle(cold2))
        throttled.clear()
        await clock.advance(15.1)
        hot_outcomes = await settle(hot)
    assert all(isinstance(o, Delivered) and o.attempts >= 1 for o in hot_outcomes)
    assert appended_log(server.delivered, "user-hot") == [0, 1, 2, 3, 4]
    assert amp.stats().throttle_responses >= 1


async def test_429_naming_a_device_holds_operations_of_that_device(server: ScriptedServer) -> None:
    clock = aa.ManualClock()
    state = {"throttle": True}

    def respond(request: Request) -> web.Response:
        devices = {i.get("device_id") for i in request.identifications}
        if state["throttle"] and "device-hot" in devices:
            return web.Response(status=429, text=throttle_body(devices=["device-hot"]))
        return web.Response(text="success")

    server.responder = respond
    cfg = fast_config(throttle_hold=10.0, flush_interval=0.0)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg, clock=clock) as amp:
        held = await amp.identify(Identify(user_id="user-a", device_id="device-hot").set("x", 1))
        free = await amp.identify(Identify(user_id="user-b", device_id="device-ok").set("x", 1))
        assert (await settle([free]))[0].ok
        await asyncio.sleep(0.05)
        assert not held.done()
        state["throttle"] = False
        await clock.advance(10.5)
        assert (await settle([held]))[0].ok


async def test_429_naming_nobody_holds_everybody_in_the_batch(server: ScriptedServer) -> None:
    clock = aa.ManualClock()
    answers = iter([web.Response(status=429, text='{"code":429,"error":"slow down"}')])
    server.responder = lambda request: next(answers, web.Response(text="success"))
    cfg = fast_config(throttle_hold=5.0, flush_interval=0.0)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg, clock=clock) as amp:
        receipt = await amp.identify(op("user-1", plan="a"))
        await asyncio.sleep(0.1)
        assert not receipt.done() and len(server.requests) == 1
        assert amp.stats().throttled_identities == 1
        await clock.advance(5.1)
        assert (await settle([receipt]))[0] == Delivered(200, 2)


async def test_daily_quota_fails_those_identities_with_reason_quota(server: ScriptedServer) -> None:
    body = json.dumps(
        {"code": 429, "error": "quota", "exceeded_daily_quota_users": {"user-over": 1}}
    )
    answers = iter([web.Response(status=429, text=body)])
    server.responder = lambda request: next(answers, web.Response(text="success"))
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        over = await amp.identify(op("user-over", plan="a"))
        fine = await amp.identify(op("user-fine", plan="a"))
        outcomes = await settle([over, fine])
    assert isinstance(outcomes[0], Failed) and outcomes[0].reason is FailureReason.QUOTA
    assert outcomes[1].ok


# -- 413, 400 --------------------------------------------------------------------------------------


async def test_413_splits_and_the_size_limit_recovers(server: ScriptedServer) -> None:
    refuse_large = {"on": True}
    server.responder = lambda request: (
        web.Response(status=413, text='{"code":413,"error":"Payload too large"}')
        if refuse_large["on"] and len(request.body) > 3000
        else web.Response(text="success")
    )
    cfg = fast_config(flush_interval=0.05, coalesce=False)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(op(f"user-{i:03d}", text="y" * 200)) for i in range(40)]
        outcomes = await settle(receipts)
        assert all(o.ok for o in outcomes)
        assert amp.stats().splits >= 1
        # Later successes let the limit grow back: to just under the refused size, and
        # past it after 64 successes in a row.
        refuse_large["on"] = False
        for _ in range(70):
            again = await amp.identify(op("user-again", plan=1))
            await amp.flush()
            assert again.outcome is not None and again.outcome.ok
        first_after = len(server.requests)
        more = [await amp.identify(op(f"user-{i:03d}", text="y" * 200)) for i in range(40)]
        await amp.flush()
        assert all(r.outcome is not None and r.outcome.ok for r in more)
    # Every body sent while the split was fresh stayed under what the server took; once
    # recovered, bodies far larger than that go again.
    assert max(len(r.body) for r in server.requests[first_after:]) > 3000
    assert sorted(
        i["user_id"] for i in server.delivered[: 40 + 70] if i["user_id"] != "user-again"
    ) == [f"user-{i:03d}" for i in range(40)]


async def test_single_identification_too_large_fails_alone(server: ScriptedServer) -> None:
    cfg = fast_config(batch_max_bytes=4096)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        # Escaped to "%26" in the body: too large only once encoded (a plain "z" * 5000
        # is refused at identify(), see test_intake_messages).
        big = await amp.identify(op("user-big", text="&" * 2000))
        small = await amp.identify(op("user-small", plan="x"))
        outcomes = await settle([big, small])
    assert isinstance(outcomes[0], Failed) and outcomes[0].reason is FailureReason.TOO_LARGE
    assert outcomes[1].ok
    assert all(i["user_id"] != "user-big" for i in server.delivered)


async def test_400_without_indices_is_narrowed_by_bisecting(server: ScriptedServer) -> None:
    def respond(request: Request) -> web.Response:
        if any(u and u.startswith("user-bad") for u in request.users()):
            return web.Response(status=400, text="invalid identification")
        return web.Response(text="success")

    server.responder = respond
    cfg = fast_config(flush_interval=0.05, coalesce=False)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        users = [f"user-{i:03d}" for i in range(16)]
        users[5] = "user-bad-1"
        users[11] = "user-bad-2"
        receipts = [await amp.identify(op(u, plan=1)) for u in users]
        outcomes = await settle(receipts)
    for user, outcome in zip(users, outcomes, strict=True):
        if user.startswith("user-bad"):
            assert isinstance(outcome, Failed) and outcome.reason is FailureReason.INVALID
            assert outcome.message == "invalid identification" and outcome.status == 400
        else:
            assert outcome.ok, user
    assert sorted(i["user_id"] for i in server.delivered) == sorted(
        u for u in users if not u.startswith("user-bad")
    )


async def test_400_with_indices_fails_exactly_those_and_resends_the_rest(
    server: ScriptedServer,
) -> None:
    def respond(request: Request) -> web.Response:
        bad = [i for i, u in enumerate(request.users()) if u == "user-bad-1"]
        if bad:
            body = {
                "code": 400,
                "error": "Invalid field values",
                "events_with_invalid_fields": {"user_id": bad},
            }
            return web.Response(status=400, text=json.dumps(body))
        return web.Response(text="success")

    server.responder = respond
    cfg = fast_config(flush_interval=0.05)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(op(u, plan=1)) for u in ("user-a1", "user-bad-1", "user-a2")]
        outcomes = await settle(receipts)
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].message == "Invalid field values"  # type: ignore[union-attr]
    assert len(server.requests) == 2


async def test_invalid_api_key_fails_everything_with_auth_and_stops(server: ScriptedServer) -> None:
    server.responder = lambda request: web.Response(
        status=400, text='{"code":400,"error":"invalid_api_key"}'
    )
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        first = await amp.identify(op("user-1", plan=1))
        outcome = await settle([first])
        later = await amp.identify(op("user-2", plan=1))
        assert later.outcome == Failed(FailureReason.AUTH, "the API key was not accepted")
    assert isinstance(outcome[0], Failed) and outcome[0].reason is FailureReason.AUTH
    assert len(server.requests) == 1


# -- retries ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ambiguous"), [(503, False), (500, True), (502, True), (504, True)]
)
async def test_5xx_is_retried_and_marks_possible_duplicates(
    server: ScriptedServer, status: int, ambiguous: bool
) -> None:
    answers = iter([web.Response(status=status), web.Response(status=status)])
    server.responder = lambda request: next(answers, web.Response(text="success"))
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        outcome = (await settle([await amp.identify(op("user-1", plan=1))]))[0]
        stats = amp.stats()
    assert outcome == Delivered(200, 3, possible_duplicate=ambiguous)
    assert stats.retried == 2 and stats.requests == 3
    assert stats.possible_duplicates == (1 if ambiguous else 0)


async def test_connection_reset_is_retried(server: ScriptedServer) -> None:
    calls = {"n": 0}

    async def respond(request: Request) -> web.StreamResponse:
        calls["n"] += 1
        if calls["n"] == 1:
            assert request.raw.transport is not None
            request.raw.transport.close()
            raise ConnectionResetError
        return web.Response(text="success")

    server.responder = respond
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        outcome = (await settle([await amp.identify(op("user-1", plan=1))]))[0]
    assert isinstance(outcome, Delivered) and outcome.attempts == 2 and outcome.possible_duplicate


async def test_timeout_is_retried(server: ScriptedServer) -> None:
    calls = {"n": 0}

    async def respond(request: Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            await asyncio.sleep(1.0)
        return web.Response(text="success")

    server.responder = respond
    cfg = fast_config(request_timeout=0.2)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        outcome = (await settle([await amp.identify(op("user-1", plan=1))]))[0]
    assert isinstance(outcome, Delivered) and outcome.attempts == 2


async def test_retry_deadline_fails_with_retries_exhausted(server: ScriptedServer) -> None:
    server.responder = lambda request: web.Response(status=503, text="down")
    cfg = fast_config(retry_deadline=0.2)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        outcome = (await settle([await amp.identify(op("user-1", plan=1))]))[0]
    assert isinstance(outcome, Failed) and outcome.reason is FailureReason.RETRIES_EXHAUSTED
    assert outcome.status == 503 and outcome.attempts >= 2 and "down" in outcome.message


async def test_order_per_user_survives_retries_holds_and_splits(server: ScriptedServer) -> None:
    """Random-ish failures; each user's appended sequence arrives in enqueue order."""
    counter = {"n": 0}

    def respond(request: Request) -> web.Response:
        counter["n"] += 1
        n = counter["n"]
        if n % 7 == 0:
            return web.Response(status=503)
        if n % 5 == 0:
            users = sorted({u for u in request.users() if u})[:2]
            return web.Response(status=429, text=throttle_body(users=users))
        if n % 11 == 0 and len(request.identifications) > 1:
            return web.Response(status=413)
        return web.Response(text="success")

    server.responder = respond
    cfg = fast_config(batch_max_items=20, max_in_flight=3, throttle_hold=0.05, flush_interval=0.002)
    users = [f"user-{i:03d}" for i in range(15)]
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = []
        for seq in range(30):
            for user in users:
                receipts.append(await amp.identify(op(user, seq=seq)))
            await asyncio.sleep(0)
        outcomes = await settle(receipts, within=30)
    assert all(o.ok for o in outcomes)
    for user in users:
        assert appended_log(server.delivered, user) == list(range(30)), user


# -- backpressure ----------------------------------------------------------------------------------------


@pytest.fixture
def stalled(server: ScriptedServer) -> asyncio.Event:
    """The server does not answer until the event is set."""
    release = asyncio.Event()

    async def respond(request: Request) -> web.Response:
        await release.wait()
        return web.Response(text="success")

    server.responder = respond
    return release


async def test_on_full_wait_blocks_until_room(
    server: ScriptedServer, stalled: asyncio.Event
) -> None:
    cfg = fast_config(queue_max=5, on_full="wait")
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(op(f"user-{i:03d}", plan=i)) for i in range(5)]
        waiting = asyncio.ensure_future(amp.identify(op("user-later", plan=1)))
        await asyncio.sleep(0.1)
        assert not waiting.done() and amp.stats().queued == 5
        stalled.set()
        later = await asyncio.wait_for(waiting, 5)
        outcomes = await settle([*receipts, later])
    assert all(o.ok for o in outcomes)


async def test_on_full_drop_fails_with_dropped(
    server: ScriptedServer, stalled: asyncio.Event
) -> None:
    cfg = fast_config(queue_max=3, on_full="drop")
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(op(f"user-{i:03d}", plan=i)) for i in range(5)]
        assert [r.done() for r in receipts] == [False, False, False, True, True]
        assert receipts[3].outcome.reason is FailureReason.DROPPED  # type: ignore[union-attr]
        assert amp.stats().dropped == 2
        stalled.set()
        outcomes = await settle(receipts)
    assert [o.ok for o in outcomes] == [True, True, True, False, False]


async def test_on_full_raise_raises_queue_full(
    server: ScriptedServer, stalled: asyncio.Event
) -> None:
    cfg = fast_config(queue_max=2, on_full="raise")
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(op(f"user-{i:03d}", plan=i)) for i in range(2)]
        with pytest.raises(aa.QueueFull):
            await amp.identify(op("user-extra", plan=1))
        with pytest.raises(aa.QueueFull):
            amp.identify_nowait(op("user-extra", plan=1))
        stalled.set()
        assert all(o.ok for o in await settle(receipts))
    assert amp.stats().enqueued == 2


async def test_cancelled_waiter_leaves_nothing_queued(
    server: ScriptedServer, stalled: asyncio.Event
) -> None:
    cfg = fast_config(queue_max=1)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        first = await amp.identify(op("user-first", plan=1))
        waiting = asyncio.ensure_future(amp.identify(op("user-cancelled", plan=1)))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert amp.stats().enqueued == 1
        stalled.set()
        await settle([first])
    assert all(i["user_id"] != "user-cancelled" for i in server.delivered)


# -- lifecycle and shutdown ------------------------------------------------------------------------------


async def test_states_are_explicit_and_closing_twice_is_harmless(server: ScriptedServer) -> None:
    amp = AmplitudeClient(KEY, server_url=server.url, config=fast_config())
    with pytest.raises(aa.ClientNotStarted):
        await amp.identify(op("user-1", plan=1))
    async with amp:
        await amp.identify(op("user-1", plan=1))
    assert amp.closed
    with pytest.raises(aa.ClientClosed):
        await amp.identify(op("user-2", plan=1))
    assert await amp.aclose() == []
    with pytest.raises(aa.ClientStateError):
        async with amp:
            pass


async def test_queued_identify_cannot_be_changed_or_queued_twice(server: ScriptedServer) -> None:
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        identify = op("user-1", plan=1)
        await amp.identify(identify)
        with pytest.raises(aa.ValidationError, match="already"):
            identify.set("other", 2)
        with pytest.raises(aa.ValidationError, match="already queued"):
            await amp.identify(identify)
        with pytest.raises(aa.ValidationError, match="min_id_length"):
            await amp.identify(Identify(user_id="abc").set("x", 1))


async def test_shutdown_with_a_dead_server_resolves_everything_and_spools(tmp_path: Any) -> None:
    spool = tmp_path / "undelivered.jsonl"
    handed: list[list[Identify]] = []
    outcomes_seen: list[aa.Outcome] = []
    cfg = fast_config(
        shutdown_timeout=0.3,
        spool_path=str(spool),
        on_undelivered=handed.append,
        on_outcome=lambda _op, outcome: outcomes_seen.append(outcome),
    )
    # A port nobody listens on.
    amp = AmplitudeClient(KEY, server_url="http://127.0.0.1:9/identify", config=cfg)
    async with amp:
        receipts = [await amp.identify(op(f"user-{i:03d}", seq=i)) for i in range(25)]
    assert all(
        isinstance(r.outcome, Failed) and r.outcome.reason is FailureReason.SHUTDOWN
        for r in receipts
    )
    assert len(outcomes_seen) == 25
    lines = [json.loads(line) for line in spool.read_text().splitlines()]
    assert sorted(line["user_id"] for line in lines) == [f"user-{i:03d}" for i in range(25)]
    assert len(handed) == 1 and len(handed[0]) == 25
    # The wire identification plus the _spool annotation: never sent, so not applied.
    wire = {k: v for k, v in lines[0].items() if k != "_spool"}
    assert Identify.from_dict(lines[0]).to_dict() == wire
    assert all(line["_spool"] == {"maybe_applied": False} for line in lines)


async def test_shutdown_says_which_failed_operations_the_server_may_have_applied(
    server: ScriptedServer, stalled: asyncio.Event
) -> None:
    """At shutdown, operations of a request still in flight may have been applied: their
    Failed(shutdown) says so and counts the attempt; operations never sent say neither."""
    cfg = fast_config(shutdown_timeout=0.2, max_in_flight=1, batch_max_items=10)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(op(f"user-{i:03d}", seq=i)) for i in range(25)]
        for _ in range(200):
            if server.requests:
                break
            await asyncio.sleep(0.01)
        assert len(server.requests) == 1  # the first batch is in flight, unanswered
    sent = {i["user_id"] for i in server.requests[0].identifications}
    assert len(sent) == 10
    for receipt in receipts:
        outcome = receipt.outcome
        assert isinstance(outcome, Failed) and outcome.reason is FailureReason.SHUTDOWN
        if receipt.op.user_id in sent:
            assert (outcome.attempts, outcome.maybe_applied) == (1, True)
        else:
            assert (outcome.attempts, outcome.maybe_applied) == (0, False)


async def test_cancelling_the_owner_task_still_resolves_every_receipt(
    server: ScriptedServer, stalled: asyncio.Event
) -> None:
    receipts: list[aa.Receipt] = []

    async def owner() -> None:
        async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
            for i in range(10):
                receipts.append(await amp.identify(op(f"user-{i:03d}", plan=i)))
            await asyncio.sleep(30)

    task = asyncio.ensure_future(owner())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(receipts) == 10
    assert all(
        isinstance(r.outcome, Failed) and r.outcome.reason is FailureReason.SHUTDOWN
        for r in receipts
    )


async def test_flush_waits_for_outcomes_of_everything_before_it(server: ScriptedServer) -> None:
    cfg = fast_config(flush_interval=30.0)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(op(f"user-{i:03d}", plan=i)) for i in range(50)]
        await asyncio.wait_for(amp.flush(), 5)
        assert all(r.done() for r in receipts)
        await amp.flush()  # nothing pending: returns at once


async def test_identify_threadsafe_from_another_thread(server: ScriptedServer) -> None:
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        results: list[aa.Outcome] = []

        def worker() -> None:
            future = amp.identify_threadsafe(op("user-thread", plan=1), timeout=5)
            results.append(future.result(timeout=5))

        thread = threading.Thread(target=worker)
        thread.start()
        await asyncio.to_thread(thread.join, 10)
        with pytest.raises(aa.ClientStateError, match="own thread"):
            amp.identify_threadsafe(op("user-loop", plan=1))
    assert results == [Delivered(200, 1)]


async def test_every_receipt_resolves_exactly_once_and_counts_add_up(
    server: ScriptedServer,
) -> None:
    seen: dict[int, int] = {}
    answers = iter([web.Response(status=503), web.Response(status=429, text=throttle_body())])
    server.responder = lambda request: next(answers, web.Response(text="success"))
    cfg = fast_config(
        on_outcome=lambda o, _outcome: seen.__setitem__(id(o), seen.get(id(o), 0) + 1)
    )
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(op(f"user-{i % 7:03d}", seq=i)) for i in range(70)]
        await settle(receipts)
        stats = amp.stats()
    assert len(seen) == 70 and set(seen.values()) == {1}
    assert stats.enqueued == stats.delivered + stats.failed_total == 70
    assert stats.queued == 0


async def test_logs_and_errors_never_show_the_api_key(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    answers = iter(
        [
            web.Response(status=503, text="down"),
            web.Response(status=429, text=throttle_body(users=["user-1"])),
            web.Response(status=400, text="bad item"),
        ]
    )
    server.responder = lambda request: next(answers, web.Response(text="success"))
    caplog.set_level(logging.DEBUG, logger="amplitude_async")
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        receipts = [
            await amp.identify(op("user-1", plan=1)),
            await amp.identify(op("user-2", plan=1)),
        ]
        outcomes = await settle(receipts)
        text = repr(amp) + repr(amp.stats()) + "".join(repr(o) for o in outcomes)
    text += caplog.text
    assert "429" in caplog.text and "503" in caplog.text
    assert KEY not in text
