"""The fault matrix: thousands of operations over hundreds of identities per fault kind,
small batches so there are hundreds of requests, every promise checked after each run
(see harness.check)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

import amplitude_async as aa
from amplitude_async import AmplitudeClient, ClientConfig, FailureReason, Identify
from amplitude_async.emulator import Emulator, Fault, Faults

from ..conftest import Request, ScriptedServer, fast_config
from .harness import (
    KEY,
    SECRET,
    Checked,
    Expect,
    Run,
    Workload,
    applied_seqs,
    assert_no_secrets,
    check,
    drive,
    texts_produced,
    wait_until,
)

Summary = Callable[[str, str], None]


class Servers:
    """The emulator of a run, and those it was replaced by (a restart keeps the port)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.dead: list[Emulator] = []
        self.current: Emulator | None = None
        self.port = 0

    async def start(self) -> Emulator:
        emu = Emulator(api_keys=[KEY], secret_key=SECRET, port=self.port, **self.kwargs)
        await emu.start()
        self.port = emu.port
        self.current = emu
        return emu

    async def stop(self) -> None:
        if self.current is not None:
            await self.current.close()
            self.dead.append(self.current)
            self.current = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/identify"

    def all(self) -> list[Emulator]:
        return [*self.dead, *([self.current] if self.current else [])]

    def applied(self) -> list[tuple[int, str, list[int]]]:
        # Requests are numbered per emulator: offset each emulator's numbers.
        out: list[tuple[int, str, list[int]]] = []
        offset = 0
        for emu in self.all():
            out.extend((offset + r, key, seqs) for r, key, seqs in applied_seqs(emu.applied))
            offset += emu.stats().requests + 1
        return out

    def faults(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for emu in self.all():
            for label, count in emu.stats().faults.items():
                total[label] = total.get(label, 0) + count
        return total

    def requests(self) -> int:
        return sum(emu.stats().requests for emu in self.all())


def matrix_config(**changes: Any) -> ClientConfig:
    base: dict[str, Any] = dict(
        batch_max_items=16,
        max_in_flight=4,
        retry_deadline=60.0,
        request_timeout=2.0,
        min_id_length=3,
    )
    base.update(changes)
    return fast_config(**base)


@dataclass
class Scenario:
    name: str
    expect: Expect
    workload: Workload = field(default_factory=Workload)
    config: dict[str, Any] = field(default_factory=dict)
    emulator: dict[str, Any] = field(default_factory=dict)
    faults: Faults | None = None
    script: list[Fault] = field(default_factory=list)
    during: Callable[[Servers, AmplitudeClient], Awaitable[None]] | None = None
    #: Extra assertions on the run.
    after: Callable[[Servers, Run, Checked], None] | None = None


def _every(n: int, fault: Fault, count: int) -> list[Fault]:
    """A script of ``count`` requests: ``fault`` on every ``n``-th, normal otherwise."""
    return [fault if i % n == 0 else Fault.ok() for i in range(count)]


async def _throttle_storm(servers: Servers, amp: AmplitudeClient) -> None:
    """Hold the hot users by name for a while, then let them go."""
    emu = servers.current
    assert emu is not None
    hot = [f"user-{i:04d}" for i in range(10)] + [f"both-{i:04d}" for i in range(10)]
    emu.throttle(users=hot)
    await wait_until(lambda: emu.stats().throttled_requests >= 40)
    emu.unthrottle()


async def _restart(servers: Servers, amp: AmplitudeClient) -> None:
    """Kill the server mid-run (in-flight requests are cut) and start a new one."""
    emu = servers.current
    assert emu is not None
    await wait_until(lambda: emu.stats().requests >= 60)
    emu.set_faults(Faults(latency=0.02))  # have requests in flight when it dies
    await servers.stop()
    await wait_until(lambda: amp.stats().retried >= 20)
    await servers.start()


async def _outage(servers: Servers, amp: AmplitudeClient) -> None:
    """Down for longer than retry_deadline, then back."""
    emu = servers.current
    assert emu is not None
    await wait_until(lambda: emu.stats().requests >= 40)
    await servers.stop()
    await wait_until(lambda: amp.stats().failed.get("retries_exhausted", 0) >= 200)
    await servers.start()


def _outage_after(servers: Servers, run: Run, checked: Checked) -> None:
    assert checked.failed["retries_exhausted"] >= 200
    assert checked.delivered >= 200


def _restart_after(servers: Servers, run: Run, checked: Checked) -> None:
    first, second = servers.all()
    assert first.stats().applied > 0 and second.stats().applied > 0


def _quota_after(servers: Servers, run: Run, checked: Checked) -> None:
    assert checked.failed["quota"] > 100 and checked.delivered > 1000


def _auth_after(servers: Servers, run: Run, checked: Checked) -> None:
    emu = servers.all()[0].stats()
    assert checked.failed["auth"] > 1000 and checked.delivered > 0
    # Nothing was sent after the refusal but what was already in flight.
    stats = run.stats
    assert stats is not None and emu.requests <= 61 + 4 * 2


def _split_after(servers: Servers, run: Run, checked: Checked) -> None:
    stats = run.stats
    assert stats is not None and stats.splits > 0
    emu = servers.all()[0].stats()
    refused = emu.by_status.get(413, 0)
    # Split, and the limits learn: 413s are a small share of the requests, no storm.
    assert 0 < refused < emu.requests // 4, emu.by_status


def _throttle_after(servers: Servers, run: Run, checked: Checked) -> None:
    stats = run.stats
    assert stats is not None and stats.throttle_responses >= 40


def _invalid_after(servers: Servers, run: Run, checked: Checked) -> None:
    assert checked.failed["invalid"] > 0
    assert servers.all()[0].stats().rejected_items > 0


SCENARIOS = [
    Scenario(
        "503_before_apply",
        Expect(must_deliver_all=True),
        faults=Faults(rate_503=0.3),
    ),
    Scenario(
        "5xx_after_apply",
        Expect(must_deliver_all=True, duplicates=True, exact_duplicates=True),
        faults=Faults(rate_5xx_after=0.25),
    ),
    Scenario(
        "reset_before_apply",
        Expect(must_deliver_all=True),
        faults=Faults(rate_reset=0.2),
    ),
    Scenario(
        "reset_after_apply",
        Expect(must_deliver_all=True, duplicates=True),
        script=_every(4, Fault.reset(apply=True), 400),
    ),
    Scenario(
        "hang_past_timeout",
        Expect(must_deliver_all=True),
        faults=Faults(rate_hang=0.08, hang_seconds=3.0),
        # The timeout must stay well above an ordinary request's time on a loaded
        # machine: at 0.2 s, slow-but-answered requests were retried and applied twice,
        # which this scenario (hangs apply nothing) counts as a failure.
        config=dict(request_timeout=0.75, max_in_flight=8),
    ),
    Scenario(
        # Answered (and applied) after the client gave up: the late application can
        # land after a newer operation of the same identity.
        "slow_past_timeout",
        Expect(must_deliver_all=True, duplicates=True, late_apply=True),
        script=_every(5, Fault.delay(0.5), 300),
        config=dict(request_timeout=0.15, max_in_flight=8),
    ),
    Scenario(
        "429_storm_hot_users",
        Expect(must_deliver_all=True),
        workload=Workload(hot=10, hot_share=0.5, both_share=0.0, device_share=0.0),
        emulator=dict(eps_threshold=6),
        config=dict(throttle_hold=0.1),
        during=_throttle_storm,
        after=_throttle_after,
    ),
    Scenario(
        # Hot users whose operations do not merge: one request may carry more of one
        # user's identifications than the per-user rate allows. Such a request used to
        # be refused with 429 forever.
        "429_hot_users_unmerged",
        Expect(must_deliver_all=True),
        workload=Workload(hot=4, hot_share=0.05),
        emulator=dict(eps_threshold=20),
        config=dict(coalesce=False, throttle_hold=0.05, batch_max_items=64),
        after=_throttle_after,
    ),
    Scenario(
        "413_large_batches",
        Expect(must_deliver_all=True),
        workload=Workload(pad=120),
        emulator=dict(max_items=7, max_body_bytes=5000),
        config=dict(batch_max_items=40, batch_max_bytes=60_000),
        after=_split_after,
    ),
    Scenario(
        # Small bodies refused for their number of items (under the client's byte floor
        # for a shrunk limit): used to loop on 413 forever, with no backoff.
        "413_item_count",
        Expect(must_deliver_all=True),
        emulator=dict(max_items=3),
        config=dict(batch_max_items=16),
        after=_split_after,
    ),
    Scenario(
        "400_some_items",
        Expect(
            reasons=frozenset((FailureReason.INVALID,)),
            invalid_keys=frozenset(f"b-{i:02d}" for i in range(25)),
        ),
        workload=Workload(bad=25),
        # Silenced devices: a refusal the client cannot foresee. (Short ids no longer
        # are one: the client sends its min_id_length, which the server honours.)
        emulator=dict(silenced_devices=[f"b-{i:02d}" for i in range(25)]),
        after=_invalid_after,
    ),
    Scenario(
        # Everything at once: random 503s, applied 5xx, resets, hangs, per-user 429s
        # from the emulator's rate limit, 413s, hot users, coalescing.
        "mixed_everything",
        Expect(must_deliver_all=True, duplicates=True),
        workload=Workload(hot=15, hot_share=0.3, pad=40),
        emulator=dict(eps_threshold=10, max_items=12, max_body_bytes=8000),
        faults=Faults(
            rate_503=0.08, rate_5xx_after=0.08, rate_reset=0.05, rate_hang=0.02, hang_seconds=2.0
        ),
        config=dict(request_timeout=0.2, throttle_hold=0.1, batch_max_items=24, max_in_flight=6),
    ),
    Scenario(
        # Amplitude's daily quota: the 429 names the users over it; they fail with
        # reason quota, never applied; everyone else in those requests goes through.
        "daily_quota",
        Expect(reasons=frozenset((FailureReason.QUOTA,))),
        workload=Workload(hot=10, hot_share=0.5),
        emulator=dict(daily_quota=25),
        config=dict(coalesce=False),
        after=_quota_after,
    ),
    Scenario(
        # The key is refused mid-run: everything not yet delivered fails with auth and
        # nothing more is sent.
        "auth_refused_mid_run",
        Expect(reasons=frozenset((FailureReason.AUTH,))),
        script=[Fault.ok()] * 60
        + [Fault.http(400, body={"code": 400, "error": "invalid_api_key"})],
        after=_auth_after,
    ),
    Scenario(
        "server_restart",
        Expect(must_deliver_all=True, duplicates=True),
        during=_restart,
        after=_restart_after,
    ),
    Scenario(
        "outage_past_retry_deadline",
        Expect(reasons=frozenset((FailureReason.RETRIES_EXHAUSTED,))),
        config=dict(retry_deadline=0.4),
        during=_outage,
        after=_outage_after,
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_fault_matrix(
    scenario: Scenario, summary: Summary, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything logged at any level is checked for the keys below (security).
    caplog.set_level(logging.DEBUG)
    emulator: dict[str, Any] = {"eps_threshold": None, **scenario.emulator}
    servers = Servers(**emulator)
    emu = await servers.start()
    try:
        if scenario.faults is not None:
            emu.set_faults(scenario.faults)
        if scenario.script:
            emu.script(*scenario.script)
        during = scenario.during

        async def in_run(amp: AmplitudeClient) -> None:
            if during is not None:
                await during(servers, amp)

        run = await drive(
            scenario.name,
            servers.url,
            matrix_config(**scenario.config),
            scenario.workload,
            during=in_run,
        )
        consumed = scenario.script[: len(scenario.script) - emu.plan.pending("identify")]
    finally:
        await servers.stop()
    checked = check(run, servers.applied(), scenario.expect)
    if scenario.after is not None:
        scenario.after(servers, run, checked)
    faults = servers.faults()
    if scenario.script:
        # Fault.ok() placeholders are counted as "delay" (of zero seconds): count the
        # real delays from the script instead.
        faults.pop("delay", None)
        delays = sum(1 for f in consumed if f.kind == "delay" and f != Fault.ok())
        if delays:
            faults["delay"] = delays
    texts = texts_produced(run, caplog.records)
    texts.append(repr(servers.all()[0]))
    checked_texts = assert_no_secrets(texts)
    summary(
        scenario.name,
        checked.line(run, faults, servers.requests()) + f" texts_without_keys={checked_texts}",
    )
    if scenario.faults is not None or scenario.script:
        assert sum(faults.values()) > 0, "no fault was injected"


async def test_every_failure_reason_reaches_the_log(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing fails silently: each reason an operation can fail with shows up in a
    warning (or error) that names it, besides the receipt, the callback and the counters."""
    caplog.set_level(logging.WARNING, logger="amplitude_async")

    def answer(request: Request) -> web.Response:
        users = request.users()
        if "user-invalid" in users:
            bad = [i for i, u in enumerate(users) if u == "user-invalid"]
            body = {"code": 400, "error": "bad", "events_with_invalid_fields": {"user_id": bad}}
            return web.json_response(body, status=400)
        if "user-quota1" in users:
            body = {"code": 429, "exceeded_daily_quota_users": {"user-quota1": 9}}
            return web.json_response(body, status=429)
        if "user-retry1" in users:
            return web.Response(status=503, text="busy")
        if any(len(json.dumps(i)) > 3000 for i in request.identifications):
            return web.Response(status=413, text="too large")
        return web.Response(text="success")

    server.responder = answer
    reasons: set[str] = set()

    def record(_op: Identify, outcome: aa.Outcome) -> None:
        if isinstance(outcome, aa.Failed):
            reasons.add(outcome.reason.value)

    cfg = fast_config(retry_deadline=0.2, batch_max_bytes=20_000, on_outcome=record)
    async with AmplitudeClient(KEY, server_url=server.url, config=cfg) as amp:
        for user in ("user-invalid", "user-quota1", "user-retry1", "user-fine1"):
            await amp.identify(Identify(user_id=user).set("a", 1))
        await amp.identify(Identify(user_id="user-big01").set("big", "x" * 4000))  # 413 alone
        # > max once encoded ("&" is sent as %26); plain letters would be refused at the call.
        await amp.identify(Identify(user_id="user-huge1").set("big", "&" * 10_000))
        await asyncio.wait_for(amp.flush(), 10)
    server.responder = lambda _r: web.json_response({"error": "invalid_api_key"}, status=400)
    drop = fast_config(queue_max=1, on_full="drop", on_outcome=record, shutdown_timeout=0.05)
    async with AmplitudeClient(KEY, server_url=server.url, config=drop) as amp:
        await amp.identify(Identify(user_id="user-auth1").set("a", 1))  # auth
        await amp.identify(Identify(user_id="user-drop1").set("a", 1))  # dropped
    stalled = asyncio.Event()

    async def stall(_r: Request) -> web.Response:
        await stalled.wait()
        return web.Response(text="success")

    server.responder = stall
    async with AmplitudeClient(KEY, server_url=server.url, config=drop) as amp:
        await amp.identify(Identify(user_id="user-shut1").set("a", 1))  # shutdown
    stalled.set()
    expected = {reason.value for reason in FailureReason}
    assert reasons == expected
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    missing = sorted(reason for reason in expected if f"reason {reason}" not in logged)
    assert not missing, f"failure reasons never logged: {missing}\n{logged}"
