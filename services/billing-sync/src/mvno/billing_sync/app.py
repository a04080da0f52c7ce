"""Composition root of the billing-sync service."""

from fastapi import FastAPI

from mvno.billing_sync import api
from mvno.billing_sync.settings import BillingSyncSettings
from mvno.billing_sync.unit_of_work import BillingUnitOfWork
from mvno.common.service import create_service_app


def create_app(settings: BillingSyncSettings | None = None) -> FastAPI:
    """Build the billing-sync app; settings are read from the environment when not given."""
    return create_service_app(
        settings or BillingSyncSettings(),
        title="Billing sync",
        description="Keeps the billing platform in step with subscriptions and ingests usage and balances.",
        version="0.1.0",
        routers=[api.balance_router, api.usage_router],
        producer="billing",
        unit_of_work_kind=BillingUnitOfWork,
    )
