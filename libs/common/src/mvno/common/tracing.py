"""OpenTelemetry in AWS X-Ray format: X-Ray trace ids and the X-Ray propagator.

One call per process sets the tracer provider and instruments httpx, asyncpg (under SQLAlchemy)
and aiobotocore; each service app traces its requests through
:class:`~mvno.common.http_telemetry.ServerTelemetryMiddleware`.

One trace per order: the order id rides in the context as baggage (:func:`order_context`) and
every span started under it carries it as :data:`ORDER_ID` (:class:`OrderIdSpanProcessor`); work
resumed from the database continues the trace whose header was saved with it
(:func:`trace_header`, :func:`continued_span`). A client call outside any trace (a poll of a
table or a queue) is not a trace of its own (:class:`NoClientRoots`).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import baggage, context, metrics, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from mvno.common.settings import ServiceSettings

ORDER_ID = "mvno.order_id"
"""The attribute (and baggage entry) naming the order a span belongs to, on every such span."""

_W3C = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("mvno.tracing")


class NoClientRoots(Sampler):
    """Drops a trace that would start with a client or producer span: a statement, a queue
    receive or a call made outside any trace is background polling (timers, relays, readiness
    checks), which would otherwise be a trace of one span several times a second. Work found by a
    poll opens its own span (a consumer's, a resumed order's), and its calls are recorded in it."""

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if kind in (SpanKind.CLIENT, SpanKind.PRODUCER):
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoClientRoots{{{self._delegate.get_description()}}}"


class OrderIdSpanProcessor(SpanProcessor):
    """Writes the order id in the context's baggage on every recorded span as it starts, so that
    an order's statements, calls and events are found by its id as well as its own spans."""

    def on_start(self, span: Span, parent_context: context.Context | None = None) -> None:
        order_id = baggage.get_baggage(ORDER_ID, parent_context)
        if order_id is not None:
            span.set_attribute(ORDER_ID, str(order_id))

    def on_end(self, span: ReadableSpan) -> None:
        return None


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
    return ParentBased(NoClientRoots(TraceIdRatioBased(settings.otel_sample_ratio)))


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
        provider.add_span_processor(OrderIdSpanProcessor())
        processor = span_processor(settings)
        if processor is not None:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
    # The order id travels as baggage beside the X-Ray header (partners already see it in the
    # calls' Idempotency-Keys), so the simulators' and other services' spans carry it too.
    propagate.set_global_textmap(CompositePropagator([AwsXRayPropagator(), W3CBaggagePropagator()]))
    instrumentors: list[Any] = [
        HTTPXClientInstrumentor(),
        AiobotocoreInstrumentor(),  # type: ignore[no-untyped-call]  # untyped upstream
    ]
    if settings.otel_database_spans:
        instrumentors.append(AsyncPGInstrumentor())  # type: ignore[no-untyped-call]
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


@contextmanager
def order_context(order_id: str | None) -> Iterator[None]:
    """Everything started inside belongs to order ``order_id``: the current span and every span
    started under it carry :data:`ORDER_ID`, and calls to other services pass it on."""
    if not order_id:
        yield
        return
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(ORDER_ID, order_id)
    token = context.attach(baggage.set_baggage(ORDER_ID, order_id))
    try:
        yield
    finally:
        context.detach(token)


def trace_header() -> str | None:
    """The current span's context as a W3C ``traceparent``, to save with work resumed later
    from the database (None outside any trace)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def continued_span(
    name: str,
    header: str | None,
    *,
    order_id: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> Iterator[trace.Span]:
    """A span continuing the trace saved as ``header`` (:func:`trace_header`), as its child, for
    work taken up from the database (a timer, a queued operation): the trace goes on where the
    work was saved, whichever process takes it. Without a header it starts a trace of its own."""
    parent = _W3C.extract({"traceparent": header}) if header else context.Context()
    with (
        _tracer.start_as_current_span(
            name, context=parent, kind=SpanKind.INTERNAL, attributes=attributes
        ) as span,
        order_context(order_id),
    ):
        yield span
