"""Each request's server span and HTTP metrics (ServerTelemetryMiddleware), recorded or not."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import metrics, propagate, trace
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from mvno.common.http_telemetry import ServerTelemetryMiddleware
from mvno.common.problems import install_problem_handlers
from mvno.common.tracing import FASTAPI_OWN_TELEMETRY_OFF, is_health_probe
from mvno.devstack.testing import metric_points

INCOMING = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def _app(tracer_provider: trace.TracerProvider, seen: dict) -> FastAPI:
    app = FastAPI(telemetry=FASTAPI_OWN_TELEMETRY_OFF)
    install_problem_handlers(app)

    @app.get("/lines/{line_id}")
    async def line(line_id: str) -> dict[str, str]:
        seen["current"] = trace.get_current_span().get_span_context()
        return {"id": line_id}

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("boom")

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(
        ServerTelemetryMiddleware,
        tracer_provider=tracer_provider,
        meter_provider=metrics.get_meter_provider(),
        exclude=is_health_probe,
    )
    return app


@pytest.fixture
def recorded():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(id_generator=AwsXRayIdGenerator())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    propagate.set_global_textmap(AwsXRayPropagator())
    return provider, exporter


async def _get(app: FastAPI, path: str, **kwargs) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, **kwargs)


async def test_a_request_gets_a_server_span_continuing_the_callers_trace(recorded):
    provider, exporter = recorded
    seen: dict = {}
    response = await _get(
        _app(provider, seen), "/lines/l-1?sig=secret&x=1", headers={"X-Amzn-Trace-Id": INCOMING}
    )
    assert response.status_code == 200
    [span] = exporter.get_finished_spans()
    assert span.kind == SpanKind.SERVER
    assert span.name == "GET /lines/{line_id}"
    assert f"{span.context.trace_id:032x}" == "5759e988bd862e3fe1be46a994272793"
    assert f"{span.parent.span_id:016x}" == "53995c3f42cd8ad8"
    assert seen["current"].span_id == span.context.span_id  # current while the route ran
    assert span.attributes["http.route"] == "/lines/{line_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["url.path"] == "/lines/l-1"
    assert span.attributes["url.query"] == "sig=REDACTED&x=1"
    assert span.status.status_code != StatusCode.ERROR


async def test_a_failing_request_is_an_error_span(recorded):
    provider, exporter = recorded
    response = await _get(_app(provider, {}), "/broken")
    assert response.status_code == 500
    [span] = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] in ("RuntimeError", "500")
    assert span.name == "GET /broken"


async def test_health_probes_are_neither_traced_nor_measured(recorded, metric_reader):
    provider, exporter = recorded

    def probes_measured() -> int:
        points = metric_points(
            metric_reader, "http.server.request.duration", **{"http.route": "/health/live"}
        )
        return sum(point.count for point in points)

    before = probes_measured()  # (another test's plain FastAPI app may have measured some)
    assert (await _get(_app(provider, {}), "/health/live")).status_code == 200
    assert exporter.get_finished_spans() == ()
    assert probes_measured() == before


async def test_an_unrecorded_request_still_has_trace_ids_and_is_measured(metric_reader):
    provider = TracerProvider(id_generator=AwsXRayIdGenerator(), sampler=ALWAYS_OFF)
    seen: dict = {}
    line = f"l-{uuid.uuid4().hex[:6]}"
    app = _app(provider, seen)
    responses = [await _get(app, f"/lines/{line}") for _ in range(3)]
    assert [r.status_code for r in responses] == [200] * 3
    assert seen["current"].is_valid  # logs and outgoing calls still carry the trace
    [point] = metric_points(
        metric_reader,
        "http.server.request.duration",
        **{"http.route": "/lines/{line_id}", "http.response.status_code": 200},
    )
    assert point.count >= 3
    active = metric_points(
        metric_reader, "http.server.active_requests", **{"http.request.method": "GET"}
    )
    assert sum(p.value for p in active) == 0  # every request that started has ended
