"""Composition root of the third-party simulators (network operator, payments, billing platform)."""

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI

from mvno.common.logs import configure_logging
from mvno.common.problems import install_problem_handlers
from mvno.common.service import REQUEST_ID_HEADER
from mvno.simulators import api
from mvno.simulators.settings import SimulatorSettings


def create_app(settings: SimulatorSettings | None = None) -> FastAPI:
    """Build the simulators app; it holds its state in memory and needs no database."""
    settings = settings or SimulatorSettings()
    configure_logging(settings.service_name, settings.log_level)
    app = FastAPI(
        title="Third-party simulators",
        description="Stand-ins for the host network operator, bank payments and billing platform.",
        version="0.1.0",
    )
    app.state.settings = settings
    install_problem_handlers(app)
    app.add_middleware(CorrelationIdMiddleware, header_name=REQUEST_ID_HEADER)
    app.include_router(api.router)
    return app
