"""The span exporter follows the settings."""

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind

from mvno.common.settings import ServiceSettings
from mvno.common.tracing import (
    ORDER_ID,
    client_spans_when_sampled,
    continued_span,
    order_context,
    sampler_for,
    span_processor,
    trace_header,
)


def test_no_exporter_by_default():
    assert span_processor(ServiceSettings()) is None


def test_console_exporter():
    processor = span_processor(ServiceSettings(otel_exporter="console"))
    assert isinstance(processor, SimpleSpanProcessor)
    assert isinstance(processor.span_exporter, ConsoleSpanExporter)


def test_otlp_exporter_posts_to_the_collector_traces_path():
    processor = span_processor(
        ServiceSettings(otel_exporter="otlp", otel_exporter_otlp_endpoint="http://collector:4318/")
    )
    assert isinstance(processor, BatchSpanProcessor)
    exporter = processor._batch_processor._exporter
    assert isinstance(exporter, OTLPSpanExporter)
    assert exporter._endpoint == "http://collector:4318/v1/traces"
    processor.shutdown()


def test_spans_are_recorded_only_when_exported_and_then_by_ratio():
    assert sampler_for(ServiceSettings()) is ALWAYS_OFF
    sampler = sampler_for(ServiceSettings(otel_exporter="otlp", otel_sample_ratio=0.25))
    assert isinstance(sampler, ParentBased)
    assert "0.25" in sampler.get_description()


def test_client_spans_are_made_only_inside_a_recorded_trace():
    recorded = TracerProvider(sampler=ALWAYS_ON).get_tracer("test")
    unrecorded = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")

    with client_spans_when_sampled():
        assert not is_instrumentation_enabled()  # no trace at all
    with unrecorded.start_as_current_span("request"), client_spans_when_sampled():
        assert not is_instrumentation_enabled()
    with recorded.start_as_current_span("request"), client_spans_when_sampled():
        assert is_instrumentation_enabled()
    assert is_instrumentation_enabled()


def test_a_client_call_outside_any_trace_is_no_trace_of_its_own():
    exported = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler_for(ServiceSettings(otel_exporter="otlp")))
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = provider.get_tracer("test")

    with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as poll:
        assert not poll.is_recording()  # a poll of a table: dropped
    with tracer.start_as_current_span("SNS PublishBatch", kind=SpanKind.PRODUCER) as relay:
        assert not relay.is_recording()
    with tracer.start_as_current_span("work found", kind=SpanKind.INTERNAL) as work:
        assert work.is_recording()
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as statement:
            assert statement.is_recording()  # the work's own statements are in its trace
    assert [span.name for span in exported.get_finished_spans()] == ["SELECT", "work found"]


def test_the_order_id_rides_on_every_span_under_it_and_across_calls(finished_spans):
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /productOrder") as request:
        with order_context("order-1"), tracer.start_as_current_span("INSERT"):
            carrier: dict[str, str] = {}
            CompositePropagator([AwsXRayPropagator(), W3CBaggagePropagator()]).inject(carrier)
        with tracer.start_as_current_span("after"):
            pass
    spans = {span.name: span for span in finished_spans.get_finished_spans()[-3:]}
    assert spans["POST /productOrder"].attributes[ORDER_ID] == "order-1"
    assert spans["INSERT"].attributes[ORDER_ID] == "order-1"
    assert ORDER_ID not in spans["after"].attributes
    assert carrier["baggage"] == "mvno.order_id=order-1"
    assert request.get_span_context().trace_id


def test_work_resumed_from_a_saved_header_continues_that_trace(finished_spans):
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /productOrder") as request:
        header = trace_header()
    assert header is not None
    with (
        trace.use_span(trace.INVALID_SPAN),  # another process, later: no current trace
        continued_span("resume", header, order_id="order-2") as resumed,
        tracer.start_as_current_span("step"),
    ):
        pass
    step, resumed_span = finished_spans.get_finished_spans()[-2:]
    context = request.get_span_context()
    assert resumed.get_span_context().trace_id == context.trace_id
    assert resumed_span.parent is not None
    assert resumed_span.parent.span_id == context.span_id
    assert step.parent is not None
    assert step.parent.span_id == resumed.get_span_context().span_id
    assert resumed_span.attributes[ORDER_ID] == "order-2"
    assert step.attributes[ORDER_ID] == "order-2"


def test_without_a_saved_header_resumed_work_starts_its_own_trace(finished_spans):
    with continued_span("resume", None, order_id="order-3") as resumed:
        assert resumed.is_recording()
    assert finished_spans.get_finished_spans()[-1].parent is None


def test_a_span_per_sql_statement_only_when_asked():
    """Statement spans cost most of a traced order's spans: off unless the settings ask."""
    import subprocess
    import sys

    probe = (
        "from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor\n"
        "from mvno.common.settings import ServiceSettings\n"
        "from mvno.common.tracing import configure_tracing\n"
        "import sys\n"
        "configure_tracing(ServiceSettings(otel_database_spans=sys.argv[1] == 'on'))\n"
        "print(AsyncPGInstrumentor().is_instrumented_by_opentelemetry)\n"
    )
    answers = {
        setting: subprocess.run(
            [sys.executable, "-c", probe, setting], capture_output=True, text=True, check=True
        ).stdout.strip()
        for setting in ("on", "off")
    }
    assert answers == {"on": "True", "off": "False"}
    assert ServiceSettings().otel_database_spans is False
