"""The apps the benchmark drives, as uvicorn factories (``bench.apps:bare_app``, ``bench.apps:project_app``).

Both answer the same small JSON and insert the same single row; the bare one has nothing else, the
project one is built by ``create_service_app`` like every service, so the difference is the plumbing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy import text

from mvno.common.service import Infrastructure, create_service_app, get_infrastructure
from mvno.common.settings import ServiceSettings

POOL_SIZE = 16
PAYLOAD: dict[str, Any] = {"status": "ok", "service": "bench", "items": [1, 2, 3]}


class Row(BaseModel):
    payload: str


def bare_app() -> FastAPI:
    """Plain FastAPI and an asyncpg pool; ``BENCH_DSN`` is a libpq-style URL to the bench database.

    The ``bench_row`` table is created by ``bench/run.py``.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dsn = os.environ["BENCH_DSN"]
        async with asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE) as pool:
            app.state.pool = pool
            yield

    app = FastAPI(title="bare", lifespan=lifespan)

    @app.get("/json")
    async def json_document() -> dict[str, Any]:
        return PAYLOAD

    @app.post("/rows", status_code=201)
    async def insert_row(row: Row, request: Request) -> dict[str, int]:
        pool: asyncpg.Pool = request.app.state.pool
        row_id = await pool.fetchval(
            "INSERT INTO bench_row (payload) VALUES ($1) RETURNING id", row.payload
        )
        return {"id": row_id}

    return app


class BenchSettings(ServiceSettings):
    """The project's settings (``MVNO_*``) with the bare app's pool: 16 connections, no overflow."""

    service_name: str = "bench"
    database_pool_size: int = POOL_SIZE
    database_pool_overflow: int = 0


bench_router = APIRouter(prefix="/bench", tags=["bench"])


@bench_router.get("/json")
async def bench_json() -> dict[str, Any]:
    return PAYLOAD


@bench_router.post("/rows", status_code=201)
async def bench_insert(
    row: Row, infrastructure: Infrastructure = Depends(get_infrastructure)
) -> dict[str, int]:
    async with infrastructure.unit_of_work() as uow:
        result = await uow.session.execute(
            text("INSERT INTO bench_row (payload) VALUES (:payload) RETURNING id"),
            {"payload": row.payload},
        )
        row_id: int = result.scalar_one()
        await uow.commit()
    return {"id": row_id}


def project_app() -> FastAPI:
    """The service shape every project service has, with the bench router as its only API."""
    app = create_service_app(
        BenchSettings(),
        title="bench",
        description="The project's service shape with a bench-only router.",
        version="0.0.0",
        routers=[bench_router],
    )
    # configure_logging() routes uvicorn.access to the root handler again, which undoes uvicorn's
    # --no-access-log; turn it off the way uvicorn does, so both apps run without an access log.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    return app
