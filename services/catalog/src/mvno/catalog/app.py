"""Composition root of the catalog service."""

from fastapi import FastAPI

from mvno.catalog import api
from mvno.catalog.settings import CatalogSettings
from mvno.common.service import create_service_app


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    """Build the catalog app; settings are read from the environment when not given."""
    return create_service_app(
        settings or CatalogSettings(),
        title="Catalog",
        description="The product catalogue every channel sells from (TMF620-aligned).",
        version="0.1.0",
        routers=[api.router],
        producer="catalog",
    )
