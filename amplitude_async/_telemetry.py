"""OpenTelemetry metrics and traces of both clients, behind one narrow interface.

The clients never import OpenTelemetry themselves; they call a :class:`Telemetry`:

- ``with telemetry.request(batch_size) as req: ...; req.status = response.status`` around
  one HTTP request: one span, one ``requests`` count, one ``request.duration`` point and
  (identify) one ``batch.size`` point;
- ``telemetry.sync_outcomes(delivered_total, failed_totals)``: the client's running
  totals; only what changed since the last call is added to the ``operations`` counter,
  so outcomes are recorded in bulk (per request, at close), never per operation;
- ``telemetry.watch(queued, throttled)`` / ``unwatch()``: callables read by the
  observable gauges at collection time, nowhere else.

Without ``opentelemetry-api`` (the ``otel`` extra) every one of these is a no-op that
allocates nothing. With it, the global MeterProvider and TracerProvider are used unless
the client was given its own (``meter_provider=`` / ``tracer_provider=``).

Attributes never carry a key, a user id, a device id or a URL query: only the status,
the error class, the HTTP method and the configured server's scheme, host, port and path.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from ._version import __version__

try:
    from opentelemetry import context as _otel_context
    from opentelemetry import metrics as _otel_metrics
    from opentelemetry import trace as _otel_trace
except ImportError:  # the otel extra is not installed: everything below is a no-op
    _otel_context = None  # type: ignore[assignment]
    _otel_metrics = None  # type: ignore[assignment]
    _otel_trace = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["OTEL_AVAILABLE", "RequestScope", "Telemetry"]

#: Whether opentelemetry-api can be imported.
OTEL_AVAILABLE: Final = _otel_metrics is not None

Kind = Literal["identify", "profile"]
_SCOPE: Final = "amplitude_async"
# Request durations: loopback answers take well under a millisecond, Amplitude's tens to
# hundreds of milliseconds, a timed-out request request_timeout (10 s by default).
_DURATION_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0,
)  # fmt: skip
# Identifications per request: up to batch_max_items (1000 by default, 2000 at most).
_BATCH_BUCKETS: Final = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000)


class RequestScope:
    """What ``with telemetry.request(...)`` hands back: set ``status`` once answered."""

    __slots__ = ("status",)

    def __init__(self) -> None:
        #: The HTTP status of the answer; left None when there was none (an error).
        self.status: int | None = None

    def __enter__(self) -> RequestScope:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


# Shared by every disabled request: its status is written and never read.
_NO_REQUEST: Final = RequestScope()


class Telemetry:
    """The instruments and tracer of one client. ``Telemetry.disabled()`` does nothing."""

    __slots__ = ()

    @staticmethod
    def create(
        kind: Kind,
        url: str,
        *,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> Telemetry:
        """Telemetry for a client of ``kind`` sending to ``url``: a no-op when
        opentelemetry-api is absent, else instruments of the given (or global) providers."""
        if not OTEL_AVAILABLE:
            if meter_provider is not None or tracer_provider is not None:
                from ._errors import ConfigurationError

                raise ConfigurationError(
                    "meter_provider/tracer_provider need opentelemetry-api "
                    "(pip install 'amplitude-async[otel]')"
                )
            return _DISABLED
        return _OtelTelemetry(kind, url, meter_provider, tracer_provider)

    @staticmethod
    def disabled() -> Telemetry:
        return _DISABLED

    def request(self, batch_size: int = 0, *, resend_count: int = 0) -> RequestScope:
        """A scope around one HTTP request (see the module docstring)."""
        return _NO_REQUEST

    def sync_outcomes(self, delivered_total: int, failed_totals: Mapping[str, int]) -> None:
        """Record the outcomes resolved since the last call, from the running totals."""

    def watch(self, queued: Callable[[], int], throttled: Callable[[], int]) -> None:
        """Report these as the queue-depth and held-identities gauges until unwatch()."""

    def unwatch(self) -> None:
        """Stop reporting this client's gauges (it closed)."""


_DISABLED: Final = Telemetry()


class _GaugeSource:
    """One open client's gauge readers; held by its Telemetry, seen weakly by _Gauges."""

    __slots__ = ("__weakref__", "queued", "throttled")

    def __init__(self, queued: Callable[[], int], throttled: Callable[[], int]) -> None:
        self.queued = queued
        self.throttled = throttled


class _Instruments:
    """The instruments of one kind on one MeterProvider, shared by every client there.

    OpenTelemetry keeps the first callbacks of an observable instrument registered twice
    under one name, so the gauges read every open client of that provider from here.
    """

    def __init__(self, meter: Meter, kind: Kind) -> None:
        prefix = f"amplitude.{kind}"
        self.requests = meter.create_counter(
            f"{prefix}.requests",
            unit="{request}",
            description=f"HTTP requests the {kind} client sent, by status or error type",
        )
        self.duration = meter.create_histogram(
            f"{prefix}.request.duration",
            unit="s",
            description=f"Duration of the {kind} client's HTTP requests",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.sources: weakref.WeakSet[_GaugeSource] = weakref.WeakSet()
        self._lock = threading.Lock()
        if kind != "identify":
            return
        self.operations = meter.create_counter(
            f"{prefix}.operations",
            unit="{operation}",
            description="Identify operations that got their outcome, by outcome and reason",
        )
        self.batch_size = meter.create_histogram(
            f"{prefix}.batch.size",
            unit="{identification}",
            description="Identifications in one /identify request",
            explicit_bucket_boundaries_advisory=_BATCH_BUCKETS,
        )
        meter.create_observable_gauge(
            f"{prefix}.queued",
            callbacks=[self._observe_queued],
            unit="{operation}",
            description="Operations accepted and still without an outcome",
        )
        meter.create_observable_gauge(
            f"{prefix}.throttled_identities",
            callbacks=[self._observe_throttled],
            unit="{identity}",
            description="Users and devices held back after a 429",
        )

    def add_source(self, source: _GaugeSource) -> None:
        with self._lock:
            self.sources.add(source)

    def remove_source(self, source: _GaugeSource) -> None:
        with self._lock:
            self.sources.discard(source)

    def _read(self, pick: Callable[[_GaugeSource], Callable[[], int]]) -> int:
        with self._lock:
            sources = list(self.sources)
        # Read on the collecting thread: plain int reads of the client, no locking needed.
        return sum(pick(source)() for source in sources)

    def _observe_queued(self, options: CallbackOptions) -> Iterable[Observation]:
        assert _otel_metrics is not None
        return [_otel_metrics.Observation(self._read(lambda s: s.queued))]

    def _observe_throttled(self, options: CallbackOptions) -> Iterable[Observation]:
        assert _otel_metrics is not None
        return [_otel_metrics.Observation(self._read(lambda s: s.throttled))]


# Instruments per MeterProvider and kind. Weak keys: a provider a test made and dropped
# takes its instruments with it.
_registry: weakref.WeakKeyDictionary[Any, dict[Kind, _Instruments]] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def _instruments(provider: Any, kind: Kind) -> _Instruments:
    with _registry_lock:
        per_kind = _registry.get(provider)
        if per_kind is None:
            per_kind = _registry[provider] = {}
        found = per_kind.get(kind)
        if found is None:
            meter = provider.get_meter(_SCOPE, __version__)
            found = per_kind[kind] = _Instruments(meter, kind)
        return found


class _OtelTelemetry(Telemetry):
    __slots__ = (
        "_delivered",
        "_failed",
        "_failed_attrs",
        "_instruments",
        "_kind",
        "_root",
        "_source",
        "_span_attributes",
        "_span_name",
        "_status_attrs",
        "_tracer",
    )

    def __init__(
        self,
        kind: Kind,
        url: str,
        meter_provider: MeterProvider | None,
        tracer_provider: TracerProvider | None,
    ) -> None:
        assert _otel_metrics is not None and _otel_trace is not None
        mp = meter_provider if meter_provider is not None else _otel_metrics.get_meter_provider()
        tp = tracer_provider if tracer_provider is not None else _otel_trace.get_tracer_provider()
        for name, provider, method in (
            ("meter_provider", mp, "get_meter"),
            ("tracer_provider", tp, "get_tracer"),
        ):
            if not callable(getattr(provider, method, None)):
                from ._errors import ConfigurationError

                raise ConfigurationError(
                    f"{name} must be an OpenTelemetry {name.replace('_', ' ').title()}, "
                    f"got {type(provider).__name__}"
                )
        self._kind = kind
        self._instruments = _instruments(mp, kind)
        self._tracer = tp.get_tracer(_SCOPE, __version__)
        parts = urlsplit(url)
        # Never the query (a profile lookup's ids travel there) nor any user:password.
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        clean = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._span_name = "POST" if kind == "identify" else "GET"
        self._span_attributes: dict[str, Any] = {
            "http.request.method": self._span_name,
            "server.address": parts.hostname or "",
            "server.port": port,
            "url.full": clean,
        }
        # An identify request batches many callers' operations: it is its own trace, not
        # a child of whatever span was current when the client was opened. A profile
        # lookup runs in its caller's task and is a child of the caller's span.
        self._root = kind == "identify"
        self._status_attrs: dict[int, dict[str, Any]] = {}
        self._failed_attrs: dict[str, dict[str, Any]] = {}
        self._delivered = 0
        self._failed: dict[str, int] = {}
        self._source: _GaugeSource | None = None

    def request(self, batch_size: int = 0, *, resend_count: int = 0) -> RequestScope:
        return _OtelRequest(self, batch_size, resend_count)

    def _start_span(self, batch_size: int, resend_count: int) -> Span:
        assert _otel_trace is not None and _otel_context is not None
        attributes = dict(self._span_attributes)
        if batch_size:
            attributes["amplitude.identify.batch.size"] = batch_size
        if resend_count:
            attributes["http.request.resend_count"] = resend_count
        return self._tracer.start_span(
            self._span_name,
            context=_otel_context.Context() if self._root else None,
            kind=_otel_trace.SpanKind.CLIENT,
            attributes=attributes,
        )

    def _finish(
        self,
        span: Span,
        started: float,
        batch_size: int,
        status: int | None,
        exc_type: type[BaseException] | None,
    ) -> None:
        assert _otel_trace is not None
        duration = time.perf_counter() - started
        instruments = self._instruments
        if status is not None:
            attrs = self._status_attrs.get(status)
            if attrs is None:
                attrs = self._status_attrs.setdefault(status, {"http.response.status_code": status})
            span.set_attribute("http.response.status_code", status)
            error_type = str(status) if status >= 400 else None
        else:
            error_type = _error_type(exc_type)
            attrs = {"error.type": error_type}
        instruments.requests.add(1, attrs)
        instruments.duration.record(duration, attrs)
        if batch_size and self._kind == "identify":
            instruments.batch_size.record(batch_size)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            span.set_status(_otel_trace.StatusCode.ERROR)
        span.end()

    def sync_outcomes(self, delivered_total: int, failed_totals: Mapping[str, int]) -> None:
        operations = self._instruments.operations
        delivered = delivered_total - self._delivered
        if delivered:
            operations.add(delivered, _DELIVERED_ATTRS)
            self._delivered = delivered_total
        seen = self._failed
        if failed_totals == seen:
            return
        for reason, total in failed_totals.items():
            delta = total - seen.get(reason, 0)
            if delta:
                attrs = self._failed_attrs.get(reason)
                if attrs is None:
                    attrs = self._failed_attrs.setdefault(
                        reason, {"outcome": "failed", "reason": reason}
                    )
                operations.add(delta, attrs)
        self._failed = dict(failed_totals)

    def watch(self, queued: Callable[[], int], throttled: Callable[[], int]) -> None:
        self.unwatch()
        self._source = _GaugeSource(queued, throttled)
        self._instruments.add_source(self._source)

    def unwatch(self) -> None:
        if self._source is not None:
            self._instruments.remove_source(self._source)
            self._source = None


_DELIVERED_ATTRS: Final = {"outcome": "delivered"}


class _OtelRequest(RequestScope):
    __slots__ = ("_batch_size", "_resend_count", "_span", "_started", "_telemetry")

    def __init__(self, telemetry: _OtelTelemetry, batch_size: int, resend_count: int) -> None:
        super().__init__()
        self._telemetry = telemetry
        self._batch_size = batch_size
        self._resend_count = resend_count

    def __enter__(self) -> RequestScope:
        self._span = self._telemetry._start_span(self._batch_size, self._resend_count)
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._telemetry._finish(self._span, self._started, self._batch_size, self.status, exc_type)


def _error_type(exc_type: type[BaseException] | None) -> str:
    """A low-cardinality name for a request that got no answer: the error's class."""
    if exc_type is None:
        return "_OTHER"
    if issubclass(exc_type, asyncio.CancelledError):
        return "cancelled"
    return exc_type.__name__
