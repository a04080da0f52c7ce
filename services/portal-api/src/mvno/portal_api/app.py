"""Composition root of the portal-api service."""

from fastapi import FastAPI

from mvno.common.service import create_service_app
from mvno.portal_api import api
from mvno.portal_api.settings import PortalApiSettings


def create_app(settings: PortalApiSettings | None = None) -> FastAPI:
    """Build the portal-api app; settings are read from the environment when not given."""
    return create_service_app(
        settings or PortalApiSettings(),
        title="Portal API",
        description="Backend-for-frontend of the customer self-service portals.",
        version="0.1.0",
        routers=[api.router],
    )
