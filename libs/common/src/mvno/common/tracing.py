"""OpenTelemetry in AWS X-Ray format: X-Ray trace ids and the X-Ray propagator.

One call per process sets the tracer provider and instruments httpx, asyncpg (under SQLAlchemy)
and aiobotocore; each FastAPI app is instrumented on its own with :func:`instrument_app`.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from opentelemetry import metrics, propagate, trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
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

from mvno.common.settings import ServiceSettings

HEALTH_URLS = "health/live,health/ready"


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


def configure_tracing(settings: ServiceSettings) -> TracerProvider:
    """Install an X-Ray-compatible tracer provider and the client instrumentations, once per process.

    Spans are always created (so logs carry trace ids and context propagates); they are only
    exported when ``otel_exporter`` is not ``none``. A second call returns the installed provider.
    """
    installed = trace.get_tracer_provider()
    if isinstance(installed, TracerProvider):
        return installed
    provider = TracerProvider(
        id_generator=AwsXRayIdGenerator(),
        resource=Resource.create(
            {"service.name": settings.service_name, "deployment.environment": settings.environment}
        ),
    )
    processor = span_processor(settings)
    if processor is not None:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(AwsXRayPropagator())
    for instrumentor in (
        HTTPXClientInstrumentor(),
        AsyncPGInstrumentor(),  # type: ignore[no-untyped-call]  # untyped upstream
        AiobotocoreInstrumentor(),  # type: ignore[no-untyped-call]
    ):
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

        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/metrics"
        return [PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint))]
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


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    """Trace every request of ``app`` except the health probes."""
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=HEALTH_URLS)
