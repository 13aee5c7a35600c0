"""OpenTelemetry metrics and spans, read back with the SDK's in-memory reader and exporter.

Every test gives the client its own MeterProvider and TracerProvider (the global ones
are left alone), runs real requests against a server on 127.0.0.1, and compares what
was recorded with what the server saw.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from aiohttp import web
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from amplitude_async import AmplitudeClient, AuthenticationError, ConnectError, ProfileClient

from .conftest import Request, ScriptedServer, fast_config, local_app, op
from .test_client_pipeline import throttle_body

SECRET = "telemetry-secret-key-0123"


@dataclass
class Otel:
    meter_provider: MeterProvider
    tracer_provider: TracerProvider
    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter

    def points(self, name: str) -> list[Any]:
        """Data points of the metric ``name`` collected now (empty if never recorded)."""
        data = self.reader.get_metrics_data()
        out: list[Any] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        out.extend(metric.data.data_points)
        return out

    def by(self, name: str, key: Callable[[dict[str, Any]], Any]) -> Counter[Any]:
        """Counter values (or histogram counts) of ``name``, keyed by ``key(attributes)``."""
        counts: Counter[Any] = Counter()
        for point in self.points(name):
            value = point.count if hasattr(point, "count") else point.value
            counts[key(dict(point.attributes))] += value
        return counts

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def otel() -> Otel:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Otel(MeterProvider(metric_readers=[reader]), tracer_provider, reader, exporter)


def status_of(attributes: dict[str, Any]) -> Any:
    return attributes.get("http.response.status_code")


def span_texts(span: ReadableSpan) -> str:
    return " ".join(f"{k}={v}" for k, v in (span.attributes or {}).items()) + " " + span.name


# -- the profile client ----------------------------------------------------------------


@pytest.fixture
async def profile_server() -> AsyncIterator[tuple[str, list[int]]]:
    """A User Profile API on 127.0.0.1: "user-retry-1" gets a 503 first, "user-wrong-key"
    a 401; everyone else a profile. Yields its URL and the statuses it answered."""
    statuses: list[int] = []
    seen: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.Response:
        user = request.query.get("user_id", "")
        seen[user] += 1
        if user == "user-retry-1" and seen[user] == 1:
            answer = web.Response(status=503, text="busy")
        elif user == "user-wrong-key":
            answer = web.Response(status=401, text="Invalid Api-Key")
        else:
            answer = web.json_response({"userData": {"user_id": user, "amp_props": {"a": 1}}})
        statuses.append(answer.status)
        return answer

    app = web.Application()
    app.router.add_get("/v1/userprofile", handle)
    async with local_app(app) as url:
        yield f"{url}/v1/userprofile", statuses


async def test_profile_requests_are_counted_timed_and_traced(
    otel: Otel, profile_server: tuple[str, list[int]]
) -> None:
    url, statuses = profile_server
    tracer = otel.tracer_provider.get_tracer("test")
    async with ProfileClient(
        SECRET,
        server_url=url,
        retry_base=0.001,
        retry_cap=0.01,
        meter_provider=otel.meter_provider,
        tracer_provider=otel.tracer_provider,
    ) as profiles:
        with tracer.start_as_current_span("caller") as caller:
            assert (await profiles.get("user-retry-1")).user_id == "user-retry-1"
            assert (await profiles.get("user-found-2")).amp_props == {"a": 1}
            with pytest.raises(AuthenticationError):
                await profiles.get("user-wrong-key")
    assert statuses == [503, 200, 200, 401]
    assert otel.by("amplitude.profile.requests", status_of) == Counter(statuses)
    # One duration point per request, with the same attributes.
    assert otel.by("amplitude.profile.request.duration", status_of) == Counter(statuses)
    (duration,) = [p for p in otel.points("amplitude.profile.request.duration") if p.count == 2]
    assert 0 < duration.sum < 5

    spans = [s for s in otel.spans() if s.name != "caller"]
    assert [s.attributes["http.response.status_code"] for s in spans] == statuses  # type: ignore[index]
    for span in spans:
        assert span.name == "GET" and span.kind is SpanKind.CLIENT
        # A child of the caller's span: the lookup ran in the caller's task.
        assert span.parent is not None
        assert span.parent.span_id == caller.get_span_context().span_id
        attributes = span.attributes or {}
        assert attributes["http.request.method"] == "GET"
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["url.full"] == url  # no query: the ids travel there
        # Never the key, never a user id.
        assert SECRET not in span_texts(span) and "user-" not in span_texts(span)
    assert spans[0].status.status_code is StatusCode.ERROR
    assert spans[0].attributes["error.type"] == "503"  # type: ignore[index]
    assert spans[1].attributes["http.request.resend_count"] == 1  # type: ignore[index]
    assert spans[2].status.status_code is StatusCode.UNSET
    assert spans[3].attributes["error.type"] == "401"  # type: ignore[index]


async def test_a_profile_request_without_an_answer_counts_its_error_type(otel: Otel) -> None:
    # A port nobody listens on: bind one, note it, close it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ProfileClient(
        SECRET,
        server_url=f"http://127.0.0.1:{port}/v1/userprofile",
        retry_base=0.001,
        retry_cap=0.001,
        retry_deadline=0.05,
        meter_provider=otel.meter_provider,
        tracer_provider=otel.tracer_provider,
    ) as profiles:
        with pytest.raises(ConnectError):
            await profiles.get("user-nobody-1")
        attempts = profiles.statistics().requests
    assert attempts >= 1
    errors = otel.by("amplitude.profile.requests", lambda a: a.get("error.type"))
    assert errors == Counter({"ConnectError": attempts})
    assert all(s.attributes["error.type"] == "ConnectError" for s in otel.spans())  # type: ignore[index]
    assert len(otel.spans()) == attempts


def test_without_opentelemetry_the_clients_work_and_providers_are_refused() -> None:
    # A fresh interpreter in which opentelemetry cannot be imported.
    script = """
import sys
sys.modules["opentelemetry"] = None
import amplitude_async
from amplitude_async import ConfigurationError, ProfileClient
from amplitude_async._telemetry import OTEL_AVAILABLE, Telemetry
assert not OTEL_AVAILABLE
ProfileClient("secret-key-1")
try:
    ProfileClient("secret-key-1", meter_provider=object())
except ConfigurationError as exc:
    assert "opentelemetry-api" in str(exc), exc
else:
    raise AssertionError("accepted a meter_provider without opentelemetry")
telemetry = Telemetry.create("identify", "http://127.0.0.1:1/identify")
with telemetry.request(10) as request:
    request.status = 200
telemetry.sync_outcomes(3, {"invalid": 1})
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_provider_of_the_wrong_type_is_refused() -> None:
    from amplitude_async import ConfigurationError

    with pytest.raises(ConfigurationError, match="meter_provider"):
        ProfileClient(SECRET, meter_provider="prometheus")  # type: ignore[arg-type]


# -- the identify client -----------------------------------------------------------------

KEY = "telemetry-api-key-0123456789"
HUNG = 2  # the request number the server answers too late


async def test_a_run_with_429s_5xx_a_400_and_a_timeout_is_counted_exactly(
    otel: Otel, server: ScriptedServer
) -> None:
    async def respond(request: Request) -> web.Response:
        if request.number == 0:
            return web.Response(status=429, text=throttle_body(users=[request.users()[0] or ""]))
        if request.number == 1:
            return web.Response(status=503, text="unavailable")
        if request.number == HUNG:
            await asyncio.sleep(0.6)  # past request_timeout: no answer, as far as we know
            return web.Response(text="success")
        if "user-bad-01" in request.users():
            return web.Response(status=400, text="invalid user_id")
        return web.Response(text="success")

    server.responder = respond
    config = fast_config(
        batch_max_items=8, max_in_flight=1, throttle_hold=0.05, request_timeout=0.3
    )
    async with AmplitudeClient(
        KEY,
        server_url=server.url,
        config=config,
        meter_provider=otel.meter_provider,
        tracer_provider=otel.tracer_provider,
    ) as amp:
        for n in range(40):
            await amp.identify(op(f"user-{n % 20:05d}", n))
        await amp.identify(op("user-bad-01", 99))
        await amp.flush()
        stats = amp.stats()
    assert stats.enqueued == 41 and stats.failed == {"invalid": 1}
    assert stats.throttle_responses == 1

    operations = otel.by("amplitude.identify.operations", lambda a: (a["outcome"], a.get("reason")))
    assert operations == Counter({("delivered", None): stats.delivered, ("failed", "invalid"): 1})
    assert sum(operations.values()) == stats.enqueued

    answered = Counter(r.status for r in server.requests if r.number != HUNG)
    assert answered[429] == 1 and answered[503] == 1 and answered[400] >= 1
    expected = Counter({("status", s): n for s, n in answered.items()})
    expected[("error", "RequestTimeout")] = 1

    def status_or_error(attributes: dict[str, Any]) -> Any:
        if "error.type" in attributes:
            return ("error", attributes["error.type"])
        return ("status", attributes["http.response.status_code"])

    assert otel.by("amplitude.identify.requests", status_or_error) == expected
    # One duration point and one batch size point per request.
    assert otel.by("amplitude.identify.request.duration", status_or_error) == expected
    assert sum(expected.values()) == stats.requests == len(server.requests)
    (sizes,) = otel.points("amplitude.identify.batch.size")
    assert sizes.count == stats.requests and sizes.sum == stats.identifications

    spans = otel.spans()
    assert len(spans) == stats.requests
    # A span has the status when there was one, and error.type for every failure.
    span_statuses = Counter(
        ("status", a["http.response.status_code"])
        if "http.response.status_code" in a
        else ("error", a["error.type"])
        for a in (dict(s.attributes or {}) for s in spans)
    )
    assert span_statuses == expected
    for span in spans:
        assert span.name == "POST" and span.kind is SpanKind.CLIENT
        assert span.parent is None  # a batch of many callers' operations: its own trace
        assert (span.attributes or {})["url.full"] == server.url
        assert KEY not in span_texts(span) and "user-" not in span_texts(span)
        ok = (span.attributes or {}).get("http.response.status_code") == 200
        assert (span.status.status_code is StatusCode.ERROR) is not ok


async def test_gauges_read_queue_depth_and_held_identities(
    otel: Otel, server: ScriptedServer
) -> None:
    server.responder = lambda request: web.Response(
        status=429, text=throttle_body(users=["user-held-1"])
    )

    def gauge(name: str) -> int:
        points = otel.points(name)
        return sum(p.value for p in points)

    config = fast_config(throttle_hold=60.0, shutdown_timeout=0.05)
    amp = AmplitudeClient(
        KEY,
        server_url=server.url,
        config=config,
        meter_provider=otel.meter_provider,
        tracer_provider=otel.tracer_provider,
    )
    async with amp:
        await amp.identify(op("user-held-1", 1))
        await amp.identify(op("user-held-1", 2))
        with anyio.fail_after(5):
            while True:
                if amp.stats().throttled_identities:
                    break
                await anyio.sleep(0.01)
        assert gauge("amplitude.identify.queued") == 2
        assert gauge("amplitude.identify.throttled_identities") == 1
        # A second client on the same provider adds its own.
        async with AmplitudeClient(
            KEY, server_url=server.url, config=config, meter_provider=otel.meter_provider
        ) as other:
            server.responder = lambda request: web.Response(status=503)
            await other.identify(op("user-other-2", 1))
            assert gauge("amplitude.identify.queued") == 3
    # Closed: the held operations failed with "shutdown", and nothing is reported any more.
    assert gauge("amplitude.identify.queued") == 0
    assert gauge("amplitude.identify.throttled_identities") == 0
    operations = otel.by("amplitude.identify.operations", lambda a: a.get("reason"))
    assert operations == Counter({"shutdown": 3})
