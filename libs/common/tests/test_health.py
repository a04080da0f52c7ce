"""Readiness reflects the real database and bus endpoint; liveness only the process."""

import gc

import httpx
import pytest

from mvno.common.db import ensure_database
from mvno.common.problems import PROBLEM_CONTENT_TYPE
from mvno.common.service import YOUNG_COLLECTION_THRESHOLD, create_service_app
from mvno.common.settings import ServiceSettings
from mvno.devstack.infrastructure import free_port
from mvno.devstack.servers import serve_app


def app_with(database_url: str, aws_endpoint_url: str):
    settings = ServiceSettings(
        service_name="health-test",
        environment="test",
        database_url=database_url,
        aws_endpoint_url=aws_endpoint_url,
    )
    return create_service_app(settings, title="t", description="t", version="0", routers=[])


@pytest.fixture
async def database_url(make_database):
    url = make_database("health")
    await ensure_database(url)
    return url


async def test_ready_when_database_and_bus_answer(database_url, aws_endpoint_url):
    async with (
        serve_app(app_with(database_url, aws_endpoint_url)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    assert live.status_code == 200
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "bus": "ok"}}


async def test_not_ready_names_the_unreachable_database(aws_endpoint_url):
    dead_database = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    async with (
        serve_app(app_with(dead_database, aws_endpoint_url)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = ready.json()
    assert body["type"] == "urn:mvno:problem:not-ready"
    assert body["checks"]["bus"] == "ok"
    assert body["checks"]["database"] != "ok"


async def test_not_ready_names_the_unreachable_bus(database_url):
    dead_bus = f"http://127.0.0.1:{free_port()}"
    async with (
        serve_app(app_with(database_url, dead_bus)) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        ready = await client.get("/health/ready", timeout=30)
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == "ok"
    assert ready.json()["checks"]["bus"] != "ok"


async def test_young_collections_are_rarer_while_serving_and_as_before_after(
    database_url, aws_endpoint_url
):
    before = gc.get_threshold()
    async with serve_app(app_with(database_url, aws_endpoint_url)):
        serving = gc.get_threshold()
    assert serving == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
    assert gc.get_threshold() == before
