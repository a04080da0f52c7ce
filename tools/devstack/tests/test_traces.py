"""The local trace store: OTLP/HTTP in (protobuf from the real exporter, and JSON), an order's
trace out, as JSON and as a waterfall."""

import io
import json
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from mvno.devstack import traces
from mvno.devstack.infrastructure import free_port

ORDER = "6d7c1c38-0000-4000-8000-000000000001"


@pytest.fixture
def receiver(tmp_path: Path):
    store = traces.TraceStore(traces.store_path(tmp_path))
    port = free_port()
    with traces.receiving(store, "127.0.0.1", port):
        yield f"http://127.0.0.1:{port}", store
    store.close()


def _provider(endpoint: str, service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint + "/v1/traces"))
    )
    return provider


def test_spans_exported_by_two_services_make_the_orders_trace(receiver):
    url, store = receiver
    orders = _provider(url, "orders").get_tracer("t")
    simulators = _provider(url, "simulators").get_tracer("t")
    with orders.start_as_current_span(
        "POST /productOrder", kind=SpanKind.SERVER, attributes={"mvno.order_id": ORDER}
    ) as root:
        with orders.start_as_current_span(
            "step authorise_payment", attributes={"mvno.order_id": ORDER, "mvno.step.try": 1}
        ) as failed:
            failed.set_status(StatusCode.ERROR, "payments answered 503")
        with (
            orders.start_as_current_span(
                "step authorise_payment", attributes={"mvno.order_id": ORDER, "mvno.step.try": 2}
            ),
            simulators.start_as_current_span("POST /payments/v1/authorisations"),
        ):
            pass
    with orders.start_as_current_span("another order", attributes={"mvno.order_id": "other"}):
        pass

    spans = store.spans_of_order(ORDER)
    assert {span.trace_id for span in spans} == {format(root.get_span_context().trace_id, "032x")}
    assert [(s.service, s.name) for s in spans] == [
        ("orders", "POST /productOrder"),
        ("orders", "step authorise_payment"),
        ("orders", "step authorise_payment"),
        ("simulators", "POST /payments/v1/authorisations"),
    ]
    # The simulators' span names no order but is in the order's trace, under its parent.
    assert spans[3].parent_span_id == spans[2].span_id
    assert spans[1].status == "error"
    assert spans[1].status_message == "payments answered 503"
    assert spans[0].kind == "server"

    text = traces.waterfall(spans)
    lines = text.splitlines()
    assert lines[0].startswith(f"trace {spans[0].trace_id}: 4 spans")
    assert "error" in lines[3]
    assert "! payments answered 503" in lines[3]
    assert "step authorise_payment (try 2)" in lines[4]
    # Children are indented under their parents.
    assert lines[5].endswith("simulators           " + "    POST /payments/v1/authorisations")
    assert lines[2].split("orders", 1)[1].strip() == "POST /productOrder"


def test_json_exports_with_hex_ids_are_stored_too(receiver):
    url, store = receiver
    export = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "portal-api"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "eee19b7ec3c1b173",
                                "name": "orders.order.state_changed.v1 process",
                                "kind": 5,
                                "startTimeUnixNano": "1000000000",
                                "endTimeUnixNano": "1005000000",
                                "attributes": [
                                    {"key": "mvno.order_id", "value": {"stringValue": ORDER}},
                                    {"key": "retries", "value": {"intValue": "2"}},
                                ],
                                "status": {"code": 1},
                            }
                        ]
                    }
                ],
            }
        ]
    }
    answer = httpx.post(url + "/v1/traces", json=export)
    assert answer.status_code == 200
    (span,) = store.spans_of_order(ORDER)
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert (span.service, span.kind, span.status) == ("portal-api", "consumer", "ok")
    assert span.attributes == {"mvno.order_id": ORDER, "retries": 2}
    assert span.end_ns - span.start_ns == 5_000_000


def test_a_malformed_export_is_refused_and_metrics_are_accepted_unkept(receiver):
    url, _ = receiver
    refused = httpx.post(
        url + "/v1/traces", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert refused.status_code == 400
    kept = httpx.post(
        url + "/v1/metrics", content=b"", headers={"content-type": "application/x-protobuf"}
    )
    assert kept.status_code == 200


def test_the_trace_command_reads_the_store_of_a_stopped_platform(tmp_path):
    store = traces.TraceStore(traces.store_path(tmp_path))
    store.add(
        [
            traces.StoredSpan(
                "a" * 32, "b" * 16, None, "orders", "POST /productOrder", "server",
                1_000, 2_000_000, "ok", None, {"mvno.order_id": ORDER},
            ),
            traces.StoredSpan(
                "a" * 32, "c" * 16, "b" * 16, "orders", "SELECT", "client",
                2_000, 3_000, "unset", None, {},
            ),
            traces.StoredSpan(
                "a" * 32, "e" * 16, "d" * 16, "orders", "step activate", "internal",
                5_000, 6_000, "unset", None, {"mvno.order_id": ORDER},
            ),
        ]
    )  # fmt: skip
    store.close()
    offset = free_port() % 1000 + 20000  # nothing listens at 4318 + offset
    out = io.StringIO()
    status = traces.print_trace(ORDER, data_dir=tmp_path, port_offset=offset, as_json=True, out=out)
    assert status == 0
    printed = json.loads(out.getvalue())
    assert [(s["span_id"], s["parent_span_id"], s["service"], s["name"]) for s in printed] == [
        ("b" * 16, None, "orders", "POST /productOrder"),
        ("c" * 16, "b" * 16, "orders", "SELECT"),
        ("e" * 16, "d" * 16, "orders", "step activate"),
    ]
    assert printed[0]["trace_id"] == "a" * 32
    assert printed[0]["attributes"] == {"mvno.order_id": ORDER}

    shown = io.StringIO()
    traces.print_trace(ORDER, data_dir=tmp_path, port_offset=offset, as_json=False, out=shown)
    lines = shown.getvalue().splitlines()
    assert lines[2].endswith("orders               POST /productOrder")
    assert lines[3].endswith("orders                 SELECT")
    # A span whose parent died with its process before exporting it is shown, and said so.
    assert lines[4].endswith("orders               step activate  (parent span not received)")

    missing = io.StringIO()
    status = traces.print_trace(
        "nope", data_dir=tmp_path, port_offset=offset, as_json=False, out=missing
    )
    assert status == 1
    assert "no spans of order nope" in missing.getvalue()
