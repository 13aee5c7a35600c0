"""The OpenTelemetry SDK's providers for a benchmark run (needs opentelemetry-sdk): the
client's instruments and spans then cost what they cost in a service with a collector."""

from __future__ import annotations

from typing import Any


def install_otel(*, traces: bool) -> Any:
    """The SDK's providers, set globally: the client uses them without being told.
    Returns the metric reader."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    if not traces:
        return reader
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    return reader


def recorded_requests(reader: Any) -> int:
    """What the SDK counted in amplitude.identify.requests: proof the instruments ran."""
    data = reader.get_metrics_data()
    return int(
        sum(
            point.value
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "amplitude.identify.requests"
            for point in metric.data.data_points
        )
    )
