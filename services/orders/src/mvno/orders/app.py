"""Composition root of the orders service."""

from fastapi import FastAPI

from mvno.common.service import create_service_app
from mvno.orders import api
from mvno.orders.hub import api as hub_api
from mvno.orders.hub.delivery import DeliveryWorker
from mvno.orders.settings import OrdersSettings


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    """Build the orders app; settings are read from the environment when not given."""
    settings = settings or OrdersSettings()
    return create_service_app(
        settings,
        title="Orders",
        description="Order capture from every channel and the provisioning engine (TMF622/TMF637-aligned).",
        version="0.1.0",
        routers=[api.router, hub_api.router],
        producer="orders",
        background=[DeliveryWorker(settings).run],
    )
