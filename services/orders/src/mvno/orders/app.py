"""Composition root of the orders service."""

from fastapi import FastAPI

from mvno.common.service import create_service_app
from mvno.orders import api
from mvno.orders.settings import OrdersSettings


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    """Build the orders app; settings are read from the environment when not given."""
    return create_service_app(
        settings or OrdersSettings(),
        title="Orders",
        description="Order capture from every channel and the provisioning engine (TMF622/TMF637-aligned).",
        version="0.1.0",
        routers=[api.router],
        producer="orders",
    )
