"""Composition root of the billing-sync service."""

from fastapi import FastAPI

from mvno.billing_sync import api
from mvno.billing_sync.settings import BillingSyncSettings
from mvno.billing_sync.unit_of_work import BillingUnitOfWork
from mvno.common.copies import CopyReadiness
from mvno.common.service import create_service_app


def create_app(settings: BillingSyncSettings | None = None) -> FastAPI:
    """Build the billing-sync app; settings are read from the environment when not given."""
    settings = settings or BillingSyncSettings()
    app = create_service_app(
        settings,
        title="Billing sync",
        description="Keeps the billing platform in step with subscriptions and ingests usage and balances.",
        version="0.1.0",
        routers=[api.balance_router, api.usage_router],
        producer="billing",
        unit_of_work_kind=BillingUnitOfWork,
    )
    units_of_work = app.state.infrastructure.units_of_work(BillingUnitOfWork)

    async def catalogue_copy_holds_any() -> bool:
        async with units_of_work() as uow:
            return bool(await uow.catalogue.holds_any())

    copy = CopyReadiness(
        "catalogue", catalogue_copy_holds_any, grace_seconds=settings.catalogue_copy_grace_seconds
    )
    app.state.infrastructure.readiness["catalogue-copy"] = copy.check
    return app
