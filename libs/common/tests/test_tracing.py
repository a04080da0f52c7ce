"""The span exporter follows the settings."""

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased

from mvno.common.settings import ServiceSettings
from mvno.common.tracing import client_spans_when_sampled, sampler_for, span_processor


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
