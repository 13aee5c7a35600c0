"""Issue 13, item 5: the shutdown promise holds under any number of cancels at any moment.

"A cancelled owner still resolves every receipt, writes the spool, closes the session"
(docs/guarantees.md). Before the fix: ``asyncio.wait_for(amp.aclose(), T)`` with T just
past ``shutdown_timeout`` left receipts unresolved or nothing spooled, with the client
stuck closing; a second cancel of the owner task left every receipt unresolved, wrote no
spool and never called ``on_undelivered``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import warnings
from pathlib import Path

import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Failed, FailureReason, Identify

from ..conftest import fast_config
from .hostile import HostileServer

KEY = "hostile-key-000555"
OPS = 3000


async def _hang(number: int, request: web.Request) -> web.Response:
    await asyncio.sleep(30)  # never answers in time: requests are in flight at the close
    return web.Response(text="success")


def _check_everything_resolved(
    receipts: list[aa.Receipt], spool: Path, undelivered: list[list[Identify]]
) -> None:
    pending = [r for r in receipts if not r.done()]
    assert not pending, f"{len(pending)} receipt(s) unresolved"
    failed = [r for r in receipts if isinstance(r.outcome, Failed)]
    assert failed and all(
        r.outcome.reason is FailureReason.SHUTDOWN for r in failed if isinstance(r.outcome, Failed)
    )
    lines = spool.read_text().splitlines() if spool.exists() else []
    assert len(lines) == len(failed), "the spool must hold every operation failed at shutdown"
    assert {json.loads(line)["user_id"] for line in lines} == {r.op.user_id for r in failed}
    assert [len(batch) for batch in undelivered] == [len(failed)]


@pytest.mark.parametrize("past", [0.0, 0.005, 0.01, 0.02, 0.04, 0.08])
async def test_aclose_under_a_timeout_just_past_shutdown_timeout(
    tmp_path: Path, past: float
) -> None:
    spool = tmp_path / "spool.jsonl"
    undelivered: list[list[Identify]] = []
    cfg = fast_config(
        shutdown_timeout=0.2,
        request_timeout=10,
        batch_max_items=100,
        spool_path=str(spool),
        on_undelivered=undelivered.append,
    )
    async with HostileServer(_hang) as server:
        amp = AmplitudeClient(KEY, server_url=server.identify_url, config=cfg)
        await amp.__aenter__()
        receipts = [
            amp.identify_nowait(Identify(user_id=f"user-{i:05d}").set("a", i)) for i in range(OPS)
        ]
        await server.wait_for_requests(1)
        # Past the deadline or not, depending on the machine: either way, all is done.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(amp.aclose(), 0.2 + past)
        assert amp.closed
    _check_everything_resolved(receipts, spool, undelivered)


@pytest.mark.parametrize("cancels", [2, 3, 10])
@pytest.mark.parametrize("gap", [0.0, 0.01])
async def test_cancelling_the_owner_again_and_again_still_resolves_and_spools(
    tmp_path: Path, cancels: int, gap: float
) -> None:
    spool = tmp_path / "spool.jsonl"
    undelivered: list[list[Identify]] = []
    receipts: list[aa.Receipt] = []
    cfg = fast_config(
        request_timeout=10,
        batch_max_items=100,
        spool_path=str(spool),
        on_undelivered=undelivered.append,
    )
    async with HostileServer(_hang) as server:
        opened = asyncio.Event()
        amp = AmplitudeClient(KEY, server_url=server.identify_url, config=cfg)

        async def owner() -> None:
            async with amp:
                for i in range(OPS):
                    receipts.append(
                        await amp.identify(Identify(user_id=f"user-{i:05d}").set("a", i))
                    )
                opened.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(owner())
        await opened.wait()
        await server.wait_for_requests(1)
        # A supervisor that retries its cancel: the first lands in the body, the others
        # in the shutdown (waiting for requests, writing the spool, closing the session).
        for _ in range(cancels):
            task.cancel()
            await asyncio.sleep(gap)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert amp.closed
    _check_everything_resolved(receipts, spool, undelivered)


@pytest.mark.parametrize("cancels", [1, 2, 5])
async def test_cancelling_the_opener_again_and_again_still_closes_the_session(
    cancels: int,
) -> None:
    async with HostileServer(_hang) as server:
        amp = AmplitudeClient(KEY, server_url=server.identify_url, config=fast_config())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            opener = asyncio.create_task(amp.__aenter__())
            await asyncio.sleep(0)  # the opener is waiting for the client's task to start
            for _ in range(cancels):
                opener.cancel()
                await asyncio.sleep(0)
            with pytest.raises(asyncio.CancelledError):
                await opener
            del opener, amp
            gc.collect()
    unclosed = [w for w in caught if "Unclosed" in str(w.message)]
    assert not unclosed, [str(w.message) for w in unclosed]
