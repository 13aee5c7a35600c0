"""Bad input everywhere: oversized identifications fail alone, merges never make good
operations fail, and hypothesis-generated values for every public call either raise the
package's errors with a message or are accepted, and never crash the pipeline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, Delivered, Failed, FailureReason, Identify
from amplitude_async.emulator import Emulator

from ..conftest import Request, ScriptedServer, fast_config
from .harness import KEY, SECRET


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_keys=[KEY], secret_key=SECRET, eps_threshold=None) as emulator:
        yield emulator


def notes(emu: Emulator, user: str) -> list[Any]:
    """The "notes" values appended for ``user``, in applied order."""
    out: list[Any] = []
    for entry in emu.applied:
        if entry.user_id != user:
            continue
        value = (entry.identification.get("user_properties") or {}).get("$append", {})
        value = value.get("notes")
        if value is not None:
            out.extend(value if isinstance(value, list) else [value])
    return out


async def outcomes_of(receipts: list[aa.Receipt]) -> list[aa.Outcome]:
    async def one(receipt: aa.Receipt) -> aa.Outcome:
        return await receipt

    return await asyncio.wait_for(asyncio.gather(*(one(r) for r in receipts)), 20)


# -- too large ----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["client", "server"])
async def test_an_oversized_identification_fails_alone_with_too_large(
    emu: Emulator, limit: str
) -> None:
    """Too large for the client's batch_max_bytes, or refused by the server with 413:
    only that operation fails; the same user's operations around it are delivered in
    order."""
    if limit == "server":
        emu.max_body_bytes = 3000
        cfg = fast_config()
    else:
        cfg = fast_config(batch_max_bytes=2048)
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg) as amp:
        receipts = [
            await amp.identify(Identify(user_id="user-00001").append("notes", "before")),
            await amp.identify(Identify(user_id="user-00001").set("big", "x" * 5000)),
            await amp.identify(Identify(user_id="user-00001").append("notes", "after")),
            await amp.identify(Identify(user_id="user-00002").set("small", 1)),
        ]
        outcomes = await outcomes_of(receipts)
    big = outcomes[1]
    assert isinstance(big, Failed) and big.reason is FailureReason.TOO_LARGE and big.message
    assert all(isinstance(o, Delivered) for i, o in enumerate(outcomes) if i != 1)
    assert notes(emu, "user-00001") == ["before", "after"]
    assert emu.user("user-00001") == {"notes": ["before", "after"]}


@pytest.mark.parametrize("limit", ["client", "server"])
async def test_a_merge_too_large_for_one_body_is_sent_unmerged_not_failed(
    emu: Emulator, limit: str
) -> None:
    """60 small operations of one hot user, merged, are larger than a body may be: each
    operation fits alone, so every one must be delivered, in order (they all failed
    with too_large before)."""
    if limit == "server":
        emu.max_body_bytes = 3000
        cfg = fast_config()
    else:
        cfg = fast_config(batch_max_bytes=4096)
    values = [f"{i:04d}-" + "n" * 120 for i in range(60)]
    async with AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg) as amp:
        receipts = [
            await amp.identify(Identify(user_id="user-hot01").append("notes", v)) for v in values
        ]
        outcomes = await outcomes_of(receipts)
        stats = amp.stats()
    failed = [o for o in outcomes if not isinstance(o, Delivered)]
    assert not failed, failed[:3]
    assert notes(emu, "user-hot01") == values
    assert stats.delivered == 60


async def test_a_merged_identification_refused_with_400_fails_only_the_bad_operation(
    server: ScriptedServer,
) -> None:
    """The server refuses any identification carrying "poison" (naming its index, as
    HTTP V2 does). Three operations of one user are merged into one identification;
    only the poisoned one may fail, the other two are delivered in order."""

    def answer(request: Request) -> web.Response:
        bad = [
            i for i, ident in enumerate(request.identifications) if "poison" in json.dumps(ident)
        ]
        if not bad:
            return web.Response(text="success")
        body = {
            "code": 400,
            "error": "Invalid field values",
            "events_with_invalid_fields": {"user_properties": bad},
        }
        return web.json_response(body, status=400)

    server.responder = answer
    cfg = fast_config(flush_interval=0.2)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [
            await amp.identify(Identify(user_id="user-00001").set("a", 1)),
            await amp.identify(Identify(user_id="user-00001").set("b", "poison")),
            await amp.identify(Identify(user_id="user-00001").set("c", 3)),
        ]
        outcomes = await outcomes_of(receipts)
    assert isinstance(outcomes[1], Failed) and outcomes[1].reason is FailureReason.INVALID
    assert outcomes[1].message == "Invalid field values"
    assert isinstance(outcomes[0], Delivered) and isinstance(outcomes[2], Delivered)
    delivered = [
        (name, value)
        for ident in server.delivered
        for name, value in ident["user_properties"]["$set"].items()
    ]
    assert delivered == [("a", 1), ("c", 3)]
