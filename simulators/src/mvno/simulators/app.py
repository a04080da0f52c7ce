"""Composition root of the third-party simulators (network operator, payments, billing platform).

No database and no bus: the simulators keep their state in memory (and, if configured, in a
file between runs), so the plumbing of ``create_service_app`` that opens those is not used.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.metrics import NoOpMeterProvider

from mvno.common.health import health_router
from mvno.common.http_telemetry import ServerTelemetryMiddleware
from mvno.common.limits import BodySizeLimitMiddleware
from mvno.common.logs import configure_logging
from mvno.common.problems import install_problem_handlers
from mvno.common.request_ids import RequestIdMiddleware
from mvno.common.tracing import FASTAPI_OWN_TELEMETRY_OFF, configure_tracing, is_health_probe
from mvno.simulators.api import ROUTERS
from mvno.simulators.dependencies import operations_of
from mvno.simulators.errors import PartnerError
from mvno.simulators.problems import on_partner_error
from mvno.simulators.settings import SimulatorSettings
from mvno.simulators.simulator import Simulator


def create_app(settings: SimulatorSettings | None = None) -> FastAPI:
    """Build the simulators app from ``settings`` (read from the environment when not given)."""
    settings = settings or SimulatorSettings()
    configure_logging(settings.service_name, settings.log_level, access_log=settings.access_log)
    # The partners' side of every call is traced (``MVNO_SIM_OTEL_*``): a service's call and
    # the simulator's handling of it show in the same trace, under the service name
    # ``simulators``.
    provider = configure_tracing(settings)
    simulator = Simulator(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await simulator.start()
        try:
            yield
        finally:
            await simulator.stop()
            provider.force_flush(timeout_millis=2000)

    app = FastAPI(
        title="Third-party simulators",
        description=(
            "Stand-ins for the host network operator (/mno/v1), the bank's payments"
            " (/payments/v1) and the billing platform (/billing/v1), with fault injection"
            " (/admin)."
        ),
        version="1.0.0",
        lifespan=lifespan,
        telemetry=FASTAPI_OWN_TELEMETRY_OFF,
    )
    app.state.settings = settings
    app.state.simulator = simulator
    install_problem_handlers(app)
    app.add_exception_handler(PartnerError, on_partner_error)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(
        ServerTelemetryMiddleware,
        tracer_provider=provider,
        meter_provider=NoOpMeterProvider(),
        exclude=is_health_probe,
    )
    app.include_router(health_router({}))
    for router in ROUTERS:
        app.include_router(router)
    simulator.use_operations(operations_of(route for router in ROUTERS for route in router.routes))
    return app
