"""A service's own worker command exports its metrics over OTLP, histograms as exponential ones
(the shape CloudWatch reads percentiles from once the collector turns them into EMF)."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap

from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from mvno.devstack.servers import serve_app

WORKER = textwrap.dedent(
    """
    from pathlib import Path

    from opentelemetry import metrics

    from mvno.common.service import run_cli
    from mvno.common.settings import ServiceSettings


    async def work(settings):
        meter = metrics.get_meter("probe")
        meter.create_counter("mvno.probe.done").add(3, {"step": "one"})
        meter.create_histogram("mvno.probe.duration", unit="s").record(0.25)


    run_cli(
        ["work"],
        service="probe",
        app_factory="unused:app",
        settings_factory=lambda: ServiceSettings(service_name="probe"),
        migrations=Path("."),
        default_port=1,
        commands={"work": ("do the work once", work)},
    )
    """
)


async def test_a_service_command_exports_its_metrics_over_otlp_with_exponential_histograms():
    received: list[ExportMetricsServiceRequest] = []
    collector = FastAPI()

    @collector.post("/v1/metrics")
    async def metrics_in(request: Request) -> Response:
        received.append(ExportMetricsServiceRequest.FromString(await request.body()))
        return Response(status_code=200)

    async with serve_app(collector) as url:
        environment = {
            **os.environ,
            "MVNO_OTEL_EXPORTER": "otlp",
            "MVNO_OTEL_EXPORTER_OTLP_ENDPOINT": url,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WORKER, env=environment, stderr=asyncio.subprocess.PIPE
        )
        _, errors = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, errors.decode()

    metrics = {
        metric.name: metric
        for request in received
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert metrics["mvno.probe.done"].sum.data_points[0].as_int == 3
    histogram = metrics["mvno.probe.duration"]
    assert histogram.WhichOneof("data") == "exponential_histogram"
    assert histogram.exponential_histogram.data_points[0].count == 1
    service = {
        attribute.key: attribute.value.string_value
        for attribute in received[0].resource_metrics[0].resource.attributes
    }
    assert service["service.name"] == "probe"
