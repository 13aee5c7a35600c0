"""Receipt.add_done_callback: once, at once if resolved, and a raising callback is contained."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Delivered, Failed, FailureReason

from .conftest import ScriptedServer, fast_config, op

KEY = "test-api-key-0123456789"


async def test_callback_gets_the_outcome_once_after_delivery(server: ScriptedServer) -> None:
    seen: list[aa.Outcome] = []
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        receipt = await amp.identify(op("user-0001", 1))
        receipt.add_done_callback(seen.append)
        assert seen == []  # not resolved yet: nothing called
        await amp.flush()
        assert seen == [Delivered(status=200, attempts=1)]
    assert seen == [Delivered(status=200, attempts=1)]  # closing calls nothing again


async def test_callback_added_after_resolution_runs_right_away(server: ScriptedServer) -> None:
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        receipt = await amp.identify(op("user-0001", 1))
        await amp.flush()
        seen: list[aa.Outcome] = []
        receipt.add_done_callback(seen.append)
        assert seen == [receipt.outcome]


async def test_callbacks_run_in_order_added(server: ScriptedServer) -> None:
    order: list[str] = []
    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        receipt = await amp.identify(op("user-0001", 1))
        receipt.add_done_callback(lambda _: order.append("first"))
        receipt.add_done_callback(lambda _: order.append("second"))
        await amp.flush()
    assert order == ["first", "second"]


async def test_a_raising_callback_is_logged_and_breaks_nothing(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    after: list[aa.Outcome] = []

    def broken(outcome: aa.Outcome) -> None:
        raise ValueError("callback bug")

    async with AmplitudeClient(KEY, server_url=server.url, config=fast_config()) as amp:
        receipts = [await amp.identify(op(f"user-{i:04d}", i)) for i in range(3)]
        receipts[0].add_done_callback(broken)
        receipts[0].add_done_callback(after.append)
        with caplog.at_level(logging.ERROR, logger="amplitude_async"):
            await asyncio.wait_for(amp.flush(), 5)
        # A resolved receipt calls at once: the raise is contained there too.
        receipts[1].add_done_callback(broken)
        later = await amp.identify(op("user-0009", 9))
        await asyncio.wait_for(amp.flush(), 5)
    assert [r.outcome for r in receipts] == [Delivered(status=200, attempts=1)] * 3
    assert later.outcome == Delivered(status=200, attempts=1)
    assert after == [Delivered(status=200, attempts=1)]
    raised = [r for r in caplog.records if "done callback raised" in r.getMessage()]
    assert raised and raised[0].exc_info is not None


async def test_callback_reports_a_failure_at_shutdown(server: ScriptedServer) -> None:
    server.responder = lambda request: web.Response(status=503, text="busy")
    seen: list[aa.Outcome] = []
    cfg = fast_config(shutdown_timeout=0.2)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipt = await amp.identify(op("user-0001", 1))
        receipt.add_done_callback(seen.append)
    assert len(seen) == 1
    assert isinstance(seen[0], Failed) and seen[0].reason is FailureReason.SHUTDOWN
