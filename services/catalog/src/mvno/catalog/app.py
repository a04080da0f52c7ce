"""Composition root of the catalog service."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware import Middleware

from mvno.catalog import api
from mvno.catalog.domain.model import (
    CatalogError,
    Conflict,
    InvalidTransition,
    NotEditable,
    NotFound,
    PriceConflict,
)
from mvno.catalog.handlers import FeedRejected
from mvno.catalog.queries import CatalogQueries
from mvno.catalog.reads import CachedReadsMiddleware, ReadCache, Reader
from mvno.catalog.settings import CatalogSettings
from mvno.catalog.unit_of_work import CatalogUnitOfWork
from mvno.common.db import asyncpg_dsn
from mvno.common.problems import problem_response
from mvno.common.service import create_service_app

_CONFLICT_SLUGS: dict[type[Conflict], str] = {
    InvalidTransition: "invalid-transition",
    NotEditable: "not-editable",
    PriceConflict: "price-conflict",
}


def create_app(settings: CatalogSettings | None = None) -> FastAPI:
    """Build the catalog app; settings are read from the environment when not given."""
    settings = settings or CatalogSettings()
    cache = ReadCache(ttl_seconds=settings.read_cache_seconds)
    dsn = asyncpg_dsn(settings.database_url)

    async def follow_changes(stop: asyncio.Event) -> None:
        await cache.follow_changes(dsn, stop)

    app = create_service_app(
        settings,
        title="Catalog",
        description="The product catalogue every channel sells from (TMF620-aligned).",
        version="0.2.0",
        routers=[api.router],
        producer="catalog",
        unit_of_work_kind=CatalogUnitOfWork,
        background=[follow_changes] if settings.read_cache_seconds > 0 else [],
    )
    reader = Reader(cache, max_age=settings.client_cache_seconds)
    app.state.catalog = api.Catalog(
        queries=CatalogQueries(app.state.infrastructure.engine), reader=reader
    )
    # Innermost of the middleware (add_middleware would put it outermost, before request ids).
    app.user_middleware.append(Middleware(CachedReadsMiddleware, reader=reader))
    app.add_exception_handler(CatalogError, _catalog_error)
    app.add_exception_handler(FeedRejected, _feed_rejected)
    return app


async def _catalog_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CatalogError)
    if isinstance(error, NotFound):
        return problem_response(status=404, slug="not-found", detail=error.message)
    if isinstance(error, Conflict):
        slug = _CONFLICT_SLUGS.get(type(error), "conflict")
        return problem_response(status=409, slug=slug, detail=error.message)
    return problem_response(
        status=422,
        slug="validation-error",
        detail=error.message,
        extensions={
            "errors": [{"pointer": "#/body" + (error.pointer or ""), "detail": error.message}]
        },
    )


async def _feed_rejected(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, FeedRejected)
    return problem_response(
        status=422,
        slug="invalid-feed",
        detail=f"The feed was not applied: {len(error.problems)} problem(s), listed in errors.",
        extensions={
            "errors": [
                {"pointer": "#/body" + pointer, "detail": detail}
                for pointer, detail in error.problems
            ]
        },
    )
