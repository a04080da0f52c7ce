"""Composition root of the third-party simulators (network operator, payments, billing platform).

No database and no bus: the simulators keep their state in memory (and, if configured, in a
file between runs), so the plumbing of ``create_service_app`` that opens those is not used.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from mvno.common.health import health_router
from mvno.common.limits import BodySizeLimitMiddleware
from mvno.common.logs import configure_logging
from mvno.common.problems import install_problem_handlers
from mvno.common.request_ids import RequestIdMiddleware
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
    simulator = Simulator(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await simulator.start()
        try:
            yield
        finally:
            await simulator.stop()

    app = FastAPI(
        title="Third-party simulators",
        description=(
            "Stand-ins for the host network operator (/mno/v1), the bank's payments"
            " (/payments/v1) and the billing platform (/billing/v1), with fault injection"
            " (/admin)."
        ),
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.simulator = simulator
    install_problem_handlers(app)
    app.add_exception_handler(PartnerError, on_partner_error)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health_router({}))
    for router in ROUTERS:
        app.include_router(router)
    simulator.use_operations(operations_of(route for router in ROUTERS for route in router.routes))
    return app
