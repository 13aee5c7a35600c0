"""examples/fastapi_app.py and examples/worker.py, run against the emulator."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from amplitude_async import AmplitudeClient, ClientConfig
from amplitude_async.emulator import EmulatorThread
from examples.fastapi_app import Settings, create_app
from examples.worker import Pipeline, Update

KEY = "example-api-key"
SECRET = "example-secret-key"
WORKER = Path(__file__).resolve().parent.parent / "examples" / "worker.py"
pytestmark = pytest.mark.amplitude_emulator(
    api_keys=[KEY], secret_key=SECRET, min_id_length=8, eps_threshold=None
)


async def wait_until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Poll a condition (not a fixed sleep) until it holds or the deadline passes."""
    with anyio.fail_after(within):
        while True:
            if condition():
                return
            await anyio.sleep(0.01)


# -- the FastAPI app ------------------------------------------------------------------


@asynccontextmanager
async def running_app(emu: EmulatorThread) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its own lifespan run: its clients open here and close (draining) on exit.

    A context manager in the test's own task, not a fixture: the AmplitudeClient's task
    group must be entered and left by the same task.
    """
    emu.define_cohort("pro-users", {"plan": "pro"})
    app = create_app(Settings(KEY, SECRET, emu.identify_url, emu.profile_url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client,
    ):
        yield client


async def test_a_plan_change_is_accepted_before_it_is_delivered(
    amplitude_emulator: EmulatorThread,
) -> None:
    async with running_app(amplitude_emulator) as http:
        amplitude_emulator.pause()  # nothing can be delivered now
        answer = await http.post("/users/user-000001/plan", json={"plan": "pro"})
        assert answer.status_code == 202 and answer.json() == {"queued": True}
        assert amplitude_emulator.user("user-000001") is None
        amplitude_emulator.resume()
        await wait_until(lambda: amplitude_emulator.user("user-000001") == {"plan": "pro"})


async def test_signup_answers_once_amplitude_has_it(amplitude_emulator: EmulatorThread) -> None:
    async with running_app(amplitude_emulator) as http:
        answer = await http.post(
            "/users/user-000002/signup", json={"email_domain": "example.com", "referrer": "ads"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"delivered": True, "attempts": 1}
        # Confirmed means applied: no waiting needed.
        assert amplitude_emulator.user("user-000002") == {
            "plan": "free",
            "email_domain": "example.com",
            "referrer": "ads",
        }


async def test_signup_reports_a_refusal(amplitude_emulator: EmulatorThread) -> None:
    async with running_app(amplitude_emulator) as http:
        # 7 characters: the client accepts it, this emulator (min_id_length=8) does not.
        answer = await http.post("/users/user-12/signup", json={"email_domain": "example.com"})
        assert answer.status_code == 502
        assert answer.json()["reason"] == "invalid"


async def test_an_invalid_user_id_is_a_422(amplitude_emulator: EmulatorThread) -> None:
    async with running_app(amplitude_emulator) as http:
        answer = await http.post("/users/null/plan", json={"plan": "pro"})
        assert answer.status_code == 422
        assert "placeholder" in answer.json()["detail"]
        assert amplitude_emulator.stats().requests == 0


async def test_the_profile_is_read_back(amplitude_emulator: EmulatorThread) -> None:
    async with running_app(amplitude_emulator) as http:
        signed_up = await http.post("/users/user-000003/signup", json={"email_domain": "a.io"})
        assert signed_up.status_code == 200
        await http.post("/users/user-000003/plan", json={"plan": "pro"})
        # The plan change was not confirmed; wait for the app's client to deliver it.
        await wait_until_delivered(http)
        answer = await http.get("/users/user-000003/profile")
        assert answer.status_code == 200
        assert answer.json() == {
            "user_id": "user-000003",
            "properties": {"plan": "pro", "email_domain": "a.io"},
            "cohorts": ["pro-users"],
        }
        missing = await http.get("/users/user-999999/profile")
        assert missing.status_code == 404


async def wait_until_delivered(http: httpx.AsyncClient) -> None:
    with anyio.fail_after(10):
        while True:
            if not (await http.get("/healthz")).json()["queued"]:
                return
            await anyio.sleep(0.01)


async def test_closing_the_app_delivers_what_is_queued(
    amplitude_emulator: EmulatorThread,
) -> None:
    app = create_app(Settings(KEY, SECRET, amplitude_emulator.identify_url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as http,
    ):
        for n in range(20):
            answer = await http.post(f"/users/user-{n:06d}/plan", json={"plan": "team"})
            assert answer.status_code == 202
    # The lifespan's exit closed the client, which delivered everything first.
    assert amplitude_emulator.users() == {f"user-{n:06d}": {"plan": "team"} for n in range(20)}


# -- the worker -----------------------------------------------------------------------


def counters(users: dict[str, dict[str, Any]]) -> int:
    """Updates applied: each one adds 1 to exactly one of these counters."""
    return sum(p.get("logins", 0) + p.get("purchases", 0) for p in users.values())


async def test_the_worker_applies_backpressure_to_its_source(
    amplitude_emulator: EmulatorThread,
) -> None:
    sequence = iter(range(1_000_000))

    async def endless() -> list[Update]:
        await anyio.lowlevel.checkpoint()
        return [Update(f"user-{next(sequence) % 50:06d}", "login") for _ in range(10)]

    config = ClientConfig(queue_max=100, flush_interval=0.01)
    amplitude_emulator.pause()  # Amplitude stops answering: everything must back up
    async with AmplitudeClient(
        KEY, server_url=amplitude_emulator.identify_url, config=config
    ) as amp:
        pipeline = Pipeline(amp, endless, buffer=20)
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                await pipeline.run(stop)

            tg.start_soon(run)
            # Blocked: the client is full, the stream is full, and the puller waits.
            await wait_until(lambda: pipeline.send.statistics().tasks_waiting_send == 1)
            assert amp.stats().queued == 100
            # Bounded: what was fetched is the client's queue, the stream's buffer, the
            # update the consumer holds, and at most one batch in the puller's hands.
            assert pipeline.report.taken <= 100 + 20 + 1 + 10
            amplitude_emulator.resume()
            stop.set()
        await amp.flush()
    assert pipeline.report.consumed == pipeline.report.taken
    assert counters(amplitude_emulator.users()) == pipeline.report.taken


def test_the_worker_stops_on_sigterm_and_loses_nothing(
    amplitude_emulator: EmulatorThread, tmp_path: Path
) -> None:
    env = {
        "AMPLITUDE_API_KEY": KEY,
        "AMPLITUDE_SERVER_URL": amplitude_emulator.identify_url,
        "WORKER_SPOOL": str(tmp_path / "spool.jsonl"),
    }
    process = subprocess.Popen(
        [sys.executable, str(WORKER)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        assert "worker running" in process.stderr.readline()  # signal handlers are set
        deadline = time.monotonic() + 20
        while amplitude_emulator.stats().applied < 200:
            assert time.monotonic() < deadline, "the worker delivered nothing"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["taken"] > 0
    assert report["taken"] == report["consumed"] == report["delivered"]
    assert report["failed"] == report["spooled"] == 0
    # Every update taken from the source reached Amplitude exactly once.
    assert counters(amplitude_emulator.users()) == report["taken"]


def prometheus_samples(text: str) -> dict[str, float]:
    """``name{label="value",...}`` -> value, for our metrics, without the scope labels."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("amplitude_"):
                continue
            labels = ",".join(
                f'{k}="{v}"' for k, v in sorted(sample.labels.items()) if not k.startswith("otel_")
            )
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


async def test_metrics_are_served_for_prometheus(amplitude_emulator: EmulatorThread) -> None:
    async with running_app(amplitude_emulator) as http:
        for n in range(3):
            await http.post(f"/users/user-{n:06d}/plan", json={"plan": "pro"})
        await wait_until_delivered(http)
        assert (await http.get("/users/user-000001/profile")).status_code == 200
        answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = prometheus_samples(answer.text)
    assert samples['amplitude_identify_operations_total{outcome="delivered"}'] == 3
    requests = samples['amplitude_identify_requests_total{http_response_status_code="200"}']
    assert requests >= 1
    assert (
        samples[
            'amplitude_identify_request_duration_seconds_count{http_response_status_code="200"}'
        ]
        == requests
    )
    assert samples["amplitude_identify_batch_size_count"] == requests
    assert samples["amplitude_identify_queued"] == 0
    assert samples["amplitude_identify_throttled_identities"] == 0
    assert samples['amplitude_profile_requests_total{http_response_status_code="200"}'] == 1
    # Never a key or a user id in what Prometheus scrapes.
    assert KEY not in answer.text and SECRET not in answer.text and "user-0000" not in answer.text
