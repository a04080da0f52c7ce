"""Composition root of the portal-api service."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import limits
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from mvno.common.db import asyncpg_dsn
from mvno.common.problems import problem_response
from mvno.common.service import create_service_app
from mvno.portal_api import api
from mvno.portal_api.clients import UpstreamRefused, Upstreams, UpstreamUnavailable
from mvno.portal_api.domain.model import NotAllowed, NotFound, PortalError
from mvno.portal_api.live import Announcements
from mvno.portal_api.protection import CustomerLimits, PortalEdge, RateLimits
from mvno.portal_api.repository import PortalUnitOfWork, ReadModelQueries
from mvno.portal_api.screens import Context, LinesAnswers, renew_seconds
from mvno.portal_api.settings import PortalApiSettings
from mvno.portal_api.shortcut import Shortcut

WEB = Path(__file__).parent / "web"


def create_app(settings: PortalApiSettings | None = None) -> FastAPI:
    """Build the portal-api app; settings are read from the environment when not given."""
    settings = settings or PortalApiSettings()
    upstreams = Upstreams.open(settings)
    answers = LinesAnswers(
        max_entries=settings.lines_answers_kept, renew_seconds=renew_seconds(settings)
    )

    def trust_answers(listening: bool) -> None:
        answers.trusted = listening

    announcements = Announcements(
        on_catalogue_changed=upstreams.catalogue_changed,
        on_customer_changed=answers.changed,
        on_listening=trust_answers,
    )
    dsn = asyncpg_dsn(settings.database_url)

    async def listen(stop: asyncio.Event) -> None:
        await announcements.listen(dsn, stop)

    async def open_resources(stack: AsyncExitStack) -> None:
        stack.push_async_callback(upstreams.aclose)
        context.tokens = app.state.token_validator  # made by the service's lifespan before this
        context.queries = await ReadModelQueries.open(dsn, size=settings.database_pool_size)
        stack.push_async_callback(context.queries.close)

    app = create_service_app(
        settings,
        title="Portal API",
        description="Backend-for-frontend of the customer self-service portals: my lines and "
        "balances, usage, orders and their live progress, offers, buying, eSIM codes.",
        version="0.2.0",
        routers=[api.router],
        background=[listen],
        resources=[open_resources],
        unit_of_work_kind=PortalUnitOfWork,
    )
    rate_limits = RateLimits()
    app.state.portal = context = Context(
        settings=settings,
        unit_of_work=app.state.infrastructure.units_of_work(PortalUnitOfWork),
        upstreams=upstreams,
        announcements=announcements,
        answers=answers,
        limits=CustomerLimits(
            counters=rate_limits,
            views=limits.parse(settings.rate_limit_per_customer),
            orders=limits.parse(settings.rate_limit_orders_per_customer),
        ),
    )
    app.add_middleware(Shortcut, routes=api.router.routes)
    app.add_middleware(
        PortalEdge,
        rate_limits=rate_limits,
        limit_per_address=settings.rate_limit_per_ip,
        hsts_seconds=settings.hsts_seconds,
    )
    app.add_exception_handler(PortalError, _portal_error)
    app.add_exception_handler(UpstreamUnavailable, _upstream_unavailable)
    app.add_exception_handler(UpstreamRefused, _upstream_refused)
    app.mount("/web", StaticFiles(directory=WEB, html=True), name="web")

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/web/")

    return app


async def _portal_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, PortalError)
    if isinstance(error, NotFound):
        return problem_response(
            status=404, slug="not-found", detail=error.message, instance=request.url.path
        )
    if isinstance(error, NotAllowed):
        return problem_response(
            status=409, slug="conflict", detail=error.message, instance=request.url.path
        )
    return problem_response(
        status=422, slug="validation-error", detail=error.message, instance=request.url.path
    )


async def _upstream_unavailable(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, UpstreamUnavailable)
    return problem_response(
        status=503,
        slug="service-unavailable",
        detail=f"We cannot reach {error.upstream} right now; try again shortly.",
        instance=request.url.path,
        headers={"Retry-After": "5"},
    )


async def _upstream_refused(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, UpstreamRefused)
    status = error.status if error.status in (400, 404, 409, 422) else 422
    extensions = {}
    if isinstance(error.problem.get("errors"), list):
        extensions["errors"] = error.problem["errors"]
    return problem_response(
        status=status,
        slug="order-refused",
        title="The order was refused",
        detail=str(error.problem.get("detail") or "The order cannot be placed as asked."),
        instance=request.url.path,
        extensions=extensions,
    )
