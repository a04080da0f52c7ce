"""OpenTelemetry in AWS X-Ray format: X-Ray trace ids and the X-Ray propagator.

One call per process sets the tracer provider and instruments httpx, asyncpg (under SQLAlchemy)
and aiobotocore; each service app traces its requests through
:class:`~mvno.common.http_telemetry.ServerTelemetryMiddleware`.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import metrics, propagate, trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler, TraceIdRatioBased

from mvno.common.settings import ServiceSettings


def span_processor(settings: ServiceSettings) -> SpanProcessor | None:
    """The processor for the exporter the settings ask for (``none`` gives no processor)."""
    if settings.otel_exporter == "console":
        return SimpleSpanProcessor(ConsoleSpanExporter(service_name=settings.service_name))
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter: SpanExporter = OTLPSpanExporter(
            endpoint=settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        )
        return BatchSpanProcessor(exporter)
    return None


def sampler_for(settings: ServiceSettings) -> Sampler:
    """Record spans only when they go somewhere, and then at the configured ratio.

    Unsampled spans still carry trace ids, so logs and propagation work at every setting, at
    almost no cost.
    """
    if settings.otel_exporter == "none":
        return ALWAYS_OFF
    return ParentBased(TraceIdRatioBased(settings.otel_sample_ratio))


def configure_tracing(settings: ServiceSettings) -> TracerProvider:
    """Install an X-Ray-compatible tracer provider and the client instrumentations, once per process.

    A provider installed earlier (by a test harness, say) is kept; the propagator and the
    instrumentations are installed either way.
    """
    installed = trace.get_tracer_provider()
    if isinstance(installed, TracerProvider):
        provider = installed
    else:
        provider = TracerProvider(
            id_generator=AwsXRayIdGenerator(),
            sampler=sampler_for(settings),
            resource=Resource.create(
                {
                    "service.name": settings.service_name,
                    "deployment.environment": settings.environment,
                }
            ),
        )
        processor = span_processor(settings)
        if processor is not None:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
    propagate.set_global_textmap(AwsXRayPropagator())
    instrumentors = (
        HTTPXClientInstrumentor(),
        AsyncPGInstrumentor(),  # type: ignore[no-untyped-call]  # untyped upstream
        AiobotocoreInstrumentor(),  # type: ignore[no-untyped-call]
    )
    for instrumentor in instrumentors:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)
    return provider


def metric_readers(settings: ServiceSettings) -> list[MetricReader]:
    """Readers for the exporter the settings ask for (``none`` gives none: instruments are no-ops)."""
    if settings.otel_exporter == "console":
        return [
            PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60_000)
        ]
    if settings.otel_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import Histogram
        from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation

        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/metrics"
        # Exponential histograms reach CloudWatch (through the collector's EMF exporter) as
        # distributions that percentiles (the p99 alarms) can be read from; explicit-bucket
        # ones would arrive as min/max/sum/count only.
        exporter = OTLPMetricExporter(
            endpoint=endpoint,
            preferred_aggregation={Histogram: ExponentialBucketHistogramAggregation()},
        )
        return [PeriodicExportingMetricReader(exporter)]
    return []


def configure_metrics(
    settings: ServiceSettings, *, extra_readers: Sequence[MetricReader] = ()
) -> MeterProvider:
    """Install the process's meter provider once (bus and HTTP metrics go through it)."""
    installed = metrics.get_meter_provider()
    if isinstance(installed, MeterProvider):
        return installed
    provider = MeterProvider(
        metric_readers=[*metric_readers(settings), *extra_readers],
        resource=Resource.create(
            {"service.name": settings.service_name, "deployment.environment": settings.environment}
        ),
    )
    metrics.set_meter_provider(provider)
    return provider


FASTAPI_OWN_TELEMETRY_OFF: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}
"""FastAPI's own telemetry, off: :class:`~mvno.common.http_telemetry.ServerTelemetryMiddleware`
makes each request's server span and HTTP metrics instead, for a fraction of the cost."""


def is_health_probe(scope: MutableMapping[str, Any]) -> bool:
    """The kubelet's probes: neither traced nor measured (they would drown the real requests)."""
    return str(scope.get("path", "")).startswith("/health/")


@contextmanager
def client_spans_when_sampled() -> Iterator[None]:
    """Client spans (a database statement's, say) only inside a trace that is recorded.

    The instrumentations make a span for every call even when nobody records the trace, which
    on a hot path is a real share of the request's cost. A
    sampled request still shows its calls; an unsampled one skips making spans nobody keeps.
    """
    if trace.get_current_span().is_recording():
        yield
        return
    with suppress_instrumentation():
        yield
