"""What the client says when it refuses an operation at the call, through the public API."""

from __future__ import annotations

import asyncio

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
