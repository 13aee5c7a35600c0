"""What the client says when it refuses an operation at the call, through the public API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

import amplitude_async as aa
from tests.conftest import Request, ScriptedServer, fast_config

KEY = "intake-test-key"


@pytest.fixture
def stalled(server: ScriptedServer) -> asyncio.Event:
    """The server does not answer until the event is set."""
    release = asyncio.Event()

    async def respond(request: Request) -> web.Response:
        await release.wait()
        return web.Response(text="success")

    server.responder = respond
    return release


async def test_queue_full_names_queue_max_and_on_full(
    server: ScriptedServer, stalled: asyncio.Event
) -> None:
    cfg = fast_config(queue_max=2, on_full="raise")
    async with aa.AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(aa.Identify(f"user-{i:03d}").set("n", i)) for i in range(2)]
        with pytest.raises(aa.QueueFull) as raised:
            await amp.identify(aa.Identify("user-extra").set("n", 1))
        message = str(raised.value)
        assert "queue_max=2" in message
        assert "on_full='raise'" in message
        # ... and what to do about it.
        assert "on_full='wait'" in message and "on_full='drop'" in message
        stalled.set()
        await asyncio.wait_for(asyncio.gather(*receipts), 5)


async def test_identify_nowait_under_on_full_wait_says_it_cannot_wait(
    server: ScriptedServer, stalled: asyncio.Event
) -> None:
    cfg = fast_config(queue_max=1)  # on_full="wait", the default
    async with aa.AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        first = await amp.identify(aa.Identify("user-first").set("n", 1))
        with pytest.raises(aa.QueueFull) as raised:
            amp.identify_nowait(aa.Identify("user-extra").set("n", 1))
        message = str(raised.value)
        assert "queue_max=1" in message
        assert "identify_nowait()" in message and "await identify()" in message
        stalled.set()
        await asyncio.wait_for(first, 5)


@pytest.mark.parametrize(
    "build",
    [
        lambda: aa.Identify("user-big").set("notes", "x" * 5000),
        lambda: aa.Identify("user-big").append("tags", [f"tag-{i:04d}" for i in range(600)]),
        lambda: aa.Identify("user-big").set("doc", {f"k{i}": "v" * 50 for i in range(100)}),
    ],
    ids=["string", "list", "object"],
)
async def test_an_operation_too_large_for_any_request_is_refused_at_the_call(
    server: ScriptedServer, build: Any
) -> None:
    cfg = fast_config(batch_max_bytes=4096)
    async with aa.AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        with pytest.raises(aa.ValidationError, match=r"batch_max_bytes=4,096") as raised:
            await amp.identify(build())
        assert "too large" in str(raised.value)
        with pytest.raises(aa.ValidationError, match="too large"):
            amp.identify_nowait(build())
        # Nothing was queued, and the client goes on.
        assert amp.stats().enqueued == 0
        small = await amp.identify(aa.Identify("user-small").set("plan", "pro"))
        outcome = await asyncio.wait_for(small, 5)
    assert outcome.ok
    assert [i["user_id"] for i in server.delivered] == ["user-small"]


async def test_an_operation_just_under_the_limit_is_not_refused(server: ScriptedServer) -> None:
    # The bound is a floor: what could fit is queued, and sent.
    cfg = fast_config(batch_max_bytes=4096)
    async with aa.AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipt = await amp.identify(aa.Identify("user-edge").set("notes", "x" * 3800))
        outcome = await asyncio.wait_for(receipt, 5)
    assert outcome.ok
