"""Traces in X-Ray format cross HTTP both ways, and JSON logs carry the trace and request ids."""

import io
import json
import logging
import re

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from purgatory import AsyncCircuitBreakerFactory

from mvno.common.http import create_http_client, create_partner_session
from mvno.common.logs import configure_logging, xray_trace_id
from mvno.common.partners import Partner
from mvno.common.service import create_service_app
from mvno.common.settings import ServiceSettings
from mvno.common.tracing import configure_tracing
from mvno.devstack.servers import serve_app

XRAY_ID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
INCOMING = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture(scope="module")
def spans(finished_spans) -> InMemorySpanExporter:
    configure_tracing(ServiceSettings(service_name="observability-test"))
    return finished_spans


@pytest.fixture
async def echo_upstream():
    seen: list[dict[str, str]] = []
    upstream = FastAPI()

    @upstream.get("/echo")
    async def echo(request_headers: dict[str, str] | None = None) -> dict[str, str]:
        return {}

    @upstream.middleware("http")
    async def record(request, call_next):
        seen.append(dict(request.headers))
        return await call_next(request)

    async with serve_app(upstream) as base:
        yield base, seen


@pytest.fixture
async def service(make_database, aws_endpoint_url, echo_upstream, spans):
    upstream_base, _ = echo_upstream
    router = APIRouter()

    @router.get("/calls-upstream")
    async def calls_upstream() -> dict[str, str]:
        logging.getLogger("test.route").info("calling upstream")
        async with create_http_client(ServiceSettings(), base_url=upstream_base) as client:
            await client.get("/echo")
        return {"trace_id": xray_trace_id(trace.get_current_span().get_span_context().trace_id)}

    @router.get("/calls-partner")
    async def calls_partner() -> dict[str, str]:
        async with create_partner_session(ServiceSettings(), timeout=5) as http:
            partner = Partner("echo", http, upstream_base, AsyncCircuitBreakerFactory())
            await partner.call("GET", "/echo", key="k-1")
        return {"trace_id": xray_trace_id(trace.get_current_span().get_span_context().trace_id)}

    settings = ServiceSettings(
        service_name="observability-test",
        environment="test",
        database_url=make_database("obs"),
        aws_endpoint_url=aws_endpoint_url,
    )
    app: FastAPI = create_service_app(
        settings, title="t", description="t", version="0", routers=[router]
    )
    async with serve_app(app) as base:
        yield base


async def test_incoming_xray_header_continues_the_trace_to_upstream_calls(
    service, echo_upstream, spans
):
    _, seen = echo_upstream
    # The test's own client must not replace the caller's trace header with one of its own.
    with suppress_http_instrumentation():
        async with httpx.AsyncClient(base_url=service) as client:
            response = await client.get("/calls-upstream", headers={"X-Amzn-Trace-Id": INCOMING})
    assert response.status_code == 200
    assert response.json()["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    outgoing = seen[-1]["x-amzn-trace-id"]
    assert outgoing.startswith("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=")
    assert (
        "Parent=53995c3f42cd8ad8" not in outgoing
    )  # the parent is our client span, not the caller's
    server_spans = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert any(
        f"{s.context.trace_id:032x}" == "5759e988bd862e3fe1be46a994272793" for s in server_spans
    )


async def test_partner_calls_carry_the_trace_in_their_own_client_span(
    service, echo_upstream, spans
):
    _, seen = echo_upstream
    with suppress_http_instrumentation():
        async with httpx.AsyncClient(base_url=service) as client:
            response = await client.get("/calls-partner", headers={"X-Amzn-Trace-Id": INCOMING})
    assert response.status_code == 200
    outgoing = seen[-1]
    assert outgoing["idempotency-key"] == "k-1"
    assert outgoing["x-amzn-trace-id"].startswith("Root=1-5759e988-bd862e3fe1be46a994272793;")
    parent = outgoing["x-amzn-trace-id"].split("Parent=")[1].split(";")[0]
    client_spans = [
        s
        for s in spans.get_finished_spans()
        if s.kind == trace.SpanKind.CLIENT
        and f"{s.context.trace_id:032x}" == "5759e988bd862e3fe1be46a994272793"
        and f"{s.context.span_id:016x}" == parent
    ]
    assert len(client_spans) == 1


async def test_new_traces_get_xray_ids(service):
    async with httpx.AsyncClient(base_url=service) as client:
        response = await client.get("/calls-upstream")
    assert XRAY_ID.match(response.json()["trace_id"])


async def test_request_id_is_echoed_and_generated(service):
    async with httpx.AsyncClient(base_url=service) as client:
        given = await client.get(
            "/health/live", headers={"X-Request-ID": "0123456789abcdef0123456789abcdef"}
        )
        generated = await client.get("/health/live")
    assert given.headers["x-request-id"] == "0123456789abcdef0123456789abcdef"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])


async def test_a_request_id_unfit_for_logs_is_replaced(service):
    async with httpx.AsyncClient(base_url=service) as client:
        for unfit in ("short", "x" * 65, "has spaces in it", 'quote"injection"here'):
            response = await client.get("/health/live", headers={"X-Request-ID": unfit})
            assert response.headers["x-request-id"] != unfit
            assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_logs_are_json_lines_with_trace_and_request_ids(spans):
    stream = io.StringIO()
    configure_logging("log-test", "INFO", stream=stream)
    from asgi_correlation_id import correlation_id

    token = correlation_id.set("feedfacefeedfacefeedfacefeedface")
    try:
        with trace.get_tracer("test").start_as_current_span("work") as span:
            logging.getLogger("test.logs").info("order %s accepted", "o-1")
            expected_trace = xray_trace_id(span.get_span_context().trace_id)
    finally:
        correlation_id.reset(token)
    record = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert record["message"] == "order o-1 accepted"
    assert record["level"] == "INFO"
    assert record["service"] == "log-test"
    assert record["request_id"] == "feedfacefeedfacefeedfacefeedface"
    assert record["trace_id"] == expected_trace
    assert "time" in record
