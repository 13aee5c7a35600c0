"""Issue 13, item 3: a 429 holds its identities at least ``min_throttle_hold``, whatever
its Retry-After says. Before the fix ``Retry-After: 0`` released the hold at once: one
operation made 11,464 requests in 5 s."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, ClientConfig, Delivered, Identify, ManualClock

from .hostile import HostileServer

KEY = "hostile-key-000333"


@pytest.mark.parametrize("retry_after", ["0", "0.001", "0.5"])
async def test_retry_after_zero_does_not_cause_a_request_storm(retry_after: str) -> None:
    def answer(number: int, request: web.Request) -> web.Response:
        if number < 3:
            body = {"code": 429, "error": "slow down", "throttled_users": {"user-00001": 40}}
            return web.Response(
                status=429, text=json.dumps(body), headers={"Retry-After": retry_after}
            )
        return web.Response(text="success")

    clock = ManualClock()
    cfg = ClientConfig(flush_interval=0.1)
    async with (
        HostileServer(answer) as server,
        AmplitudeClient(KEY, server_url=server.identify_url, config=cfg, clock=clock) as amp,
    ):
        receipt = await amp.identify(Identify(user_id="user-00001").set("a", 1))
        await clock.advance(0.1)
        for expected in (1, 2, 3, 4):
            await server.wait_for_requests(expected)
            # Real time passes, the clock does not: nothing more may be sent.
            await asyncio.sleep(0.2)
            assert server.requests == expected
            await clock.advance(0.999)
            await asyncio.sleep(0.05)
            assert server.requests == expected  # not yet: the hold is 1 s
            await clock.advance(0.001)
        outcome = await asyncio.wait_for(_await(receipt), 5)
    assert isinstance(outcome, Delivered) and outcome.attempts == 4
    assert server.requests == 4
    assert cfg.min_throttle_hold == 1.0  # the documented default


async def test_the_minimum_hold_is_a_checked_setting() -> None:
    with pytest.raises(aa.ConfigurationError, match="min_throttle_hold"):
        ClientConfig(min_throttle_hold=-1)
    assert ClientConfig(min_throttle_hold=0.25).min_throttle_hold == 0.25


async def _await(receipt: aa.Receipt) -> aa.Outcome:
    return await receipt
