"""Composition root of the orders service."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mvno.common.aws import aws_client
from mvno.common.bus.envelope import event_source
from mvno.common.copies import CopyReadiness
from mvno.common.crypto import FieldCipher
from mvno.common.db import StatementPool, asyncpg_dsn
from mvno.common.problems import problem_response
from mvno.common.service import create_service_app
from mvno.orders import api
from mvno.orders.catalogue.cache import CatalogueCopyCache
from mvno.orders.domain.model import CannotCancel, CannotResubmit, OrderRejected
from mvno.orders.handlers import (
    CatalogueNotReceived,
    IntakePaused,
    KeyInFlight,
    KeyReused,
    OrderNotFound,
    OrdersContext,
)
from mvno.orders.hub import api as hub_api
from mvno.orders.hub.delivery import DeliveryWorker
from mvno.orders.hub.directory import HubDirectory
from mvno.orders.intake.repository import OrderIntake
from mvno.orders.settings import OrdersSettings
from mvno.orders.unit_of_work import OrdersUnitOfWork, reads_factory

CATALOGUE_RETRY_AFTER_SECONDS = 5
"""What an order refused before the catalogue copy arrived is told to wait."""


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    """Build the orders app; settings are read from the environment when not given."""
    settings = settings or OrdersSettings()
    context: OrdersContext | None = None
    catalogue = CatalogueCopyCache(asyncpg_dsn(settings.database_url))
    hubs = HubDirectory(asyncpg_dsn(settings.database_url))

    async def open_cipher(stack: AsyncExitStack) -> None:
        kms = await stack.enter_async_context(aws_client(settings, "kms"))
        assert context is not None
        context.cipher = FieldCipher(kms, settings.personal_data_kms_key)

    async def open_intake(stack: AsyncExitStack) -> None:
        pool = await StatementPool.open(
            asyncpg_dsn(settings.database_url), size=settings.database_pool_size
        )
        stack.push_async_callback(pool.close)
        assert context is not None
        context.intake = OrderIntake(pool)

    app = create_service_app(
        settings,
        title="Orders",
        description="Order capture from every channel and the provisioning engine (TMF622/TMF637-aligned).",
        version="0.2.0",
        routers=[api.router, api.inventory_router, hub_api.router],
        producer="orders",
        resources=[open_cipher, open_intake],
        background=[DeliveryWorker(settings).run, catalogue.follow_changes, hubs.follow_changes],
        unit_of_work_kind=OrdersUnitOfWork,
    )
    context = OrdersContext(
        unit_of_work=app.state.infrastructure.units_of_work(OrdersUnitOfWork),
        # Same pool; every statement its own transaction (no BEGIN or COMMIT round trips).
        reads=reads_factory(app.state.infrastructure.engine),
        source=event_source(settings.service_name),
        hubs=hubs,
        catalogue=catalogue,
        start_timeout=timedelta(seconds=settings.provisioning_visibility_seconds),
        intake_paused=settings.intake_paused,
    )
    app.state.orders = context

    async def catalogue_copy_holds_any() -> bool:
        async with context.reads() as reads:
            return await reads.catalogue.holds_any()

    context.catalogue_copy = CopyReadiness(
        "catalogue",
        catalogue_copy_holds_any,
        grace_seconds=settings.catalogue_copy_grace_seconds,
    )
    app.state.infrastructure.readiness["catalogue-copy"] = context.catalogue_copy.check
    app.add_exception_handler(OrderRejected, _order_rejected)
    app.add_exception_handler(KeyReused, _key_reused)
    app.add_exception_handler(KeyInFlight, _key_in_flight)
    app.add_exception_handler(IntakePaused, _intake_paused)
    app.add_exception_handler(OrderNotFound, _not_found)
    app.add_exception_handler(CatalogueNotReceived, _catalogue_not_received)
    app.add_exception_handler(CannotCancel, _cannot_cancel)
    app.add_exception_handler(CannotResubmit, _cannot_resubmit)
    return app


async def _order_rejected(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, OrderRejected)
    return problem_response(
        status=422,
        slug="order-rejected",
        detail=f"The order cannot be placed: {len(error.problems)} problem(s), listed in errors.",
        extensions={
            "errors": [
                {"pointer": "#/body" + problem.pointer, "detail": problem.detail}
                for problem in error.problems
            ]
        },
    )


async def _key_reused(request: Request, error: Exception) -> JSONResponse:
    return problem_response(
        status=422,
        slug="idempotency-key-reused",
        detail="This Idempotency-Key was used with a different request; use a new key.",
    )


async def _intake_paused(request: Request, error: Exception) -> JSONResponse:
    return problem_response(
        status=503,
        slug="intake-paused",
        detail="New orders are paused while the platform team restores a partner or the "
        "platform; orders already placed go on. Try again later.",
        headers={"Retry-After": "300"},
    )


async def _key_in_flight(request: Request, error: Exception) -> JSONResponse:
    return problem_response(
        status=409,
        slug="idempotency-key-in-flight",
        detail="A request with this Idempotency-Key is still being processed; retry shortly.",
        headers={"Retry-After": "1"},
    )


async def _catalogue_not_received(request: Request, error: Exception) -> JSONResponse:
    return problem_response(
        status=503,
        slug="catalogue-not-received",
        detail="The catalogue has not reached this service yet; retry shortly.",
        headers={"Retry-After": str(CATALOGUE_RETRY_AFTER_SECONDS)},
    )


async def _not_found(request: Request, error: Exception) -> JSONResponse:
    return problem_response(status=404, slug="not-found", detail=f"there is no order {error}")


async def _cannot_cancel(request: Request, error: Exception) -> JSONResponse:
    return problem_response(status=409, slug="cannot-cancel", detail=str(error))


async def _cannot_resubmit(request: Request, error: Exception) -> JSONResponse:
    return problem_response(status=409, slug="not-pending", detail=str(error))
