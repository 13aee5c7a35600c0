"""Every log record carries the same extra= fields, so JSON formatters get fields, not prose."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp import web

from amplitude_async import AmplitudeClient, ProfileClient
from amplitude_async._logfields import LOG_FIELDS

from .conftest import Request, ScriptedServer, fast_config, local_app, op
from .test_client_pipeline import throttle_body

KEY = "structured-log-api-key-0123"


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    mine = [r for r in caplog.records if r.name.startswith("amplitude_async")]
    for record in mine:
        missing = [f for f in LOG_FIELDS if not hasattr(record, f)]
        assert not missing, f"{record.getMessage()!r} lacks {missing}"
        assert isinstance(record.__dict__["event"], str)
        # The fields never carry a secret; the message stays readable prose.
        assert KEY not in repr([record.__dict__[f] for f in LOG_FIELDS])
        assert KEY not in record.getMessage()
    return mine


def by_event(caplog: pytest.LogCaptureFixture) -> dict[str, dict[str, Any]]:
    return {
        r.__dict__["event"]: {f: r.__dict__[f] for f in LOG_FIELDS} | {"message": r.getMessage()}
        for r in records(caplog)
    }


async def test_client_records_carry_event_count_reason_status_attempt_delay(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="amplitude_async")

    def respond(request: Request) -> web.Response:
        users = request.users()
        if "user-held-01" in users:
            return web.Response(status=429, text=throttle_body(users=["user-held-01"]))
        if request.number == 0:
            return web.Response(status=503, text="unavailable")
        if "user-bad-001" in users:
            return web.Response(status=400, text="invalid user_id")
        return web.Response(text="success")

    server.responder = respond
    config = fast_config(throttle_hold=60.0, shutdown_timeout=0.2, max_in_flight=1)
    async with AmplitudeClient(KEY, server_url=server.url, config=config) as amp:
        await amp.identify(op("user-good-01", 1))
        await amp.flush()  # a 503, then delivered
        await amp.identify(op("user-bad-001", 1))
        await amp.identify(op("user-good-02", 1))
        await amp.flush()  # a 400, bisected
        await amp.identify(op("user-held-01", 1))
    # Closing fails the held operation with "shutdown".
    events = by_event(caplog)

    retry = events["identify.retry"]
    assert retry["status"] == 503 and retry["count"] == 1 and retry["attempt"] == 2
    assert isinstance(retry["delay"], float) and retry["delay"] >= 0
    assert "HTTP 503" in retry["message"] and "retrying 1 operation(s)" in retry["message"]

    invalid = events["identify.invalid"]
    assert invalid == invalid | {"count": 1, "reason": "invalid", "status": 400}

    throttled = events["identify.throttled"]
    assert throttled["status"] == 429 and throttled["count"] == 1 and throttled["delay"] == 60.0
    assert "user-held-01" in throttled["message"]  # the prose names whom it holds

    undelivered = events["identify.undelivered"]
    assert undelivered == undelivered | {"count": 1, "reason": "shutdown"}


async def test_drops_and_failures_carry_their_reason(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="amplitude_async")
    server.responder = lambda request: web.Response(status=503)
    config = fast_config(on_full="drop", queue_max=1, retry_deadline=0.0)
    async with AmplitudeClient(KEY, server_url=server.url, config=config) as amp:
        first = await amp.identify(op("user-one-001", 1))
        await amp.identify(op("user-two-002", 1))  # intake full: dropped
        await first
    events = by_event(caplog)
    assert events["identify.dropped"] == events["identify.dropped"] | {
        "count": 1,
        "reason": "dropped",
    }
    failed = events["identify.failed"]
    assert failed == failed | {"count": 1, "reason": "retries_exhausted", "status": 503}
    assert "failed with reason retries_exhausted" in failed["message"]


async def test_profile_retry_records_carry_their_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="amplitude_async")
    answers = [web.Response(status=503, text="busy")]

    async def handle(request: web.Request) -> web.Response:
        if answers:
            return answers.pop()
        return web.json_response({"userData": {"user_id": "user-0001"}})

    app = web.Application()
    app.router.add_get("/v1/userprofile", handle)
    async with (
        local_app(app) as url,
        ProfileClient(
            "structured-secret-key",
            server_url=f"{url}/v1/userprofile",
            retry_base=0.001,
            retry_cap=0.001,
        ) as profiles,
    ):
        await profiles.get("user-0001")
    retry = by_event(caplog)["profile.retry"]
    assert retry == retry | {"reason": "ServerError", "status": 503, "attempt": 1}
    assert isinstance(retry["delay"], float)
    assert "retry 1" in retry["message"]
