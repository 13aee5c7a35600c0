"""Issue 13, item 2: answers are read up to a bound, and never decompressed past it.

Before the fix a 400 with a 100 MB body was read whole (438 MB RSS for 4 operations)
and a gzip bomb (about 200 KB expanding to 200 MB) was inflated whole, blocking the
loop for about a second. Both clients (identify and profile) are checked: the server
counts what it managed to send before the client hung up, and tracemalloc shows the
client's peak.
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Failed, FailureReason, Identify

from ..conftest import fast_config
from .hostile import HostileServer

KEY = "hostile-key-000222"
MB = 1024 * 1024
#: 200 MB of zeros, gzip-compressed once for the module (about 200 KB).
BOMB = gzip.compress(b"\0" * (200 * MB), compresslevel=9)


def streaming(
    status: int, total: int, sent: list[int]
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """An answer of ``total`` bytes, written in 1 MB pieces; ``sent`` counts what got out."""

    async def answer(number: int, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=status)
        response.content_length = total
        await response.prepare(request)
        piece = b"x" * MB
        try:
            for _ in range(total // MB):
                await response.write(piece)
                sent[0] += len(piece)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: what we wanted
        return response

    return answer


def bomb(status: int) -> Callable[[int, web.Request], web.Response]:
    def answer(number: int, request: web.Request) -> web.Response:
        return web.Response(
            status=status,
            body=BOMB,
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
        )

    return answer


@pytest.fixture
def traced() -> AsyncIterator[None]:
    tracemalloc.start()
    try:
        yield None
    finally:
        tracemalloc.stop()


def _peak_mb() -> float:
    return tracemalloc.get_traced_memory()[1] / MB


async def _run_identify(url: str, ops: int) -> list[aa.Outcome]:
    cfg = fast_config(batch_max_items=1, max_in_flight=4, retry_deadline=0.5)
    async with AmplitudeClient(KEY, server_url=url, config=cfg) as amp:
        receipts = [
            await amp.identify(Identify(user_id=f"user-{i:05d}").set("a", i)) for i in range(ops)
        ]
        return [await asyncio.wait_for(_await(r), 20) for r in receipts]


async def test_a_huge_error_body_is_read_only_up_to_the_bound(traced: None) -> None:
    sent = [0]
    async with HostileServer(streaming(400, 100 * MB, sent)) as server:
        tracemalloc.reset_peak()
        outcomes = await _run_identify(server.identify_url, 4)
        peak = _peak_mb()
    assert all(isinstance(o, Failed) and o.reason is FailureReason.INVALID for o in outcomes)
    assert all(len(o.message) <= 300 for o in outcomes if isinstance(o, Failed))
    # 4 answers of 100 MB each were offered; the client took a little of each.
    assert sent[0] < 4 * 20 * MB, sent
    assert peak < 30, f"peak {peak:.1f} MB"


@pytest.mark.parametrize("status", [400, 503])
async def test_a_gzip_bomb_is_not_inflated_past_the_bound(traced: None, status: int) -> None:
    async with HostileServer(bomb(status)) as server:
        tracemalloc.reset_peak()
        outcomes = await _run_identify(server.identify_url, 2)
        peak = _peak_mb()
    expected = FailureReason.INVALID if status == 400 else FailureReason.RETRIES_EXHAUSTED
    assert all(isinstance(o, Failed) and o.reason is expected for o in outcomes)
    assert peak < 30, f"peak {peak:.1f} MB"


async def test_the_profile_client_bounds_bodies_and_bombs_too(traced: None) -> None:
    sent = [0]
    huge = streaming(200, 100 * MB, sent)
    inflate = bomb(200)

    async def answer(number: int, request: web.Request) -> web.StreamResponse:
        if request.query["user_id"].startswith("huge"):
            return await huge(number, request)
        return inflate(number, request)

    async with (
        HostileServer(answer) as server,
        aa.ProfileClient("hostile-secret-2", server_url=server.profile_url) as prof,
    ):
        tracemalloc.reset_peak()
        with pytest.raises(aa.APIStatusError, match="bytes"):
            await prof.get("huge-user-1")
        with pytest.raises(aa.APIStatusError, match="bytes"):
            await prof.get("bomb-user-1")
        results = [r async for r in prof.get_many(["huge-user-2", "bomb-user-2"])]
        peak = _peak_mb()
    assert len(results) == 2 and not any(r.ok for r in results)
    assert sent[0] < 2 * 40 * MB, sent
    assert peak < 40, f"peak {peak:.1f} MB"


async def _await(receipt: aa.Receipt) -> aa.Outcome:
    return await receipt
