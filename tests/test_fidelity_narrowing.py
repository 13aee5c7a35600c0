"""The clients follow Amplitude's documentation (issue 14, item 9).

Sources are named per test; docs/emulator.md, "Fidelity", lists them all.
"""

from __future__ import annotations

import json

from aiohttp import web

from amplitude_async import (
    AmplitudeClient,
    Failed,
    FailureReason,
    Identify,
)
from amplitude_async._http import HttpResponse
from amplitude_async._response import VerdictKind, classify
from amplitude_async.emulator import Emulator

from .conftest import Request, ScriptedServer, fast_config

KEY = "test-api-key-0123456789"


# -- 9. a 400 naming items by id length or silencing is narrowed by those indices ------------


def _answer(status: int, body: bytes) -> HttpResponse:
    return HttpResponse(status=status, body=body, headers={})


def test_classify_reads_invalid_id_lengths_and_silenced_events() -> None:
    # The fields every official SDK reads (Amplitude-Python invalid_or_silenced_index,
    # analytics-go invalidOrSilencedEventIndexes, analytics-core handleInvalidResponse).
    body = {
        "code": 400,
        "error": "Invalid id length for user_id or device_id",
        "events_with_invalid_id_lengths": {"user_id": [1], "device_id": [3]},
        "silenced_events": [4],
    }
    verdict = classify(_answer(400, json.dumps(body).encode()))
    assert verdict.kind is VerdictKind.INVALID
    assert verdict.indices == frozenset({1, 3, 4})


async def test_a_400_naming_id_lengths_fails_those_and_delivers_the_rest_in_two_requests(
    server: ScriptedServer,
) -> None:
    def respond(request: Request) -> web.Response:
        short = [i for i, u in enumerate(request.users()) if u == "user-short"]
        if short:
            body = {
                "code": 400,
                "error": "Invalid id length for user_id or device_id",
                "events_with_invalid_id_lengths": {"user_id": short},
            }
            return web.Response(status=400, text=json.dumps(body))
        return web.Response(text="success")

    server.responder = respond
    users = ["user-a1", "user-a2", "user-short", "user-a3", "user-a4", "user-a5"]
    cfg = fast_config(flush_interval=0.05)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        receipts = [await amp.identify(Identify(user_id=u).set("n", 1)) for u in users]
        outcomes = [await r for r in receipts]
    assert [o.ok for o in outcomes] == [True, True, False, True, True, True]
    failed = outcomes[2]
    assert isinstance(failed, Failed) and failed.reason is FailureReason.INVALID
    # Narrowed by the indices: one refused request and one resend, no bisecting.
    assert len(server.requests) == 2


async def test_silenced_devices_from_the_emulator_fail_alone() -> None:
    async with Emulator(api_keys=[KEY]) as emu:
        emu.silence(["device-silenced"])
        cfg = fast_config(flush_interval=0.05)
        async with AmplitudeClient(KEY, server_url=emu.identify_url, config=cfg) as amp:
            devices = ["device-ok-1", "device-silenced", "device-ok-2"]
            receipts = [await amp.identify(Identify(device_id=d).set("n", 1)) for d in devices]
            outcomes = [await r for r in receipts]
        assert [o.ok for o in outcomes] == [True, False, True]
        assert emu.stats().by_endpoint["identify"] == 2
