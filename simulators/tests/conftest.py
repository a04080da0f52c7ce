"""Fixtures: the simulators app in the test's event loop, with its lifespan, and a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mvno.simulators.app import create_app
from mvno.simulators.settings import SimulatorSettings


def small_settings(**overrides: Any) -> SimulatorSettings:
    """Small pools keep each test's fresh state cheap to build."""
    values: dict[str, Any] = {
        "environment": "test",
        "number_pool_size": 200,
        "physical_sim_stock": 50,
        **overrides,
    }
    return SimulatorSettings(**values)


@pytest.fixture
def make_settings() -> Callable[..., SimulatorSettings]:
    """Settings for an app a test builds itself (``small_settings`` with overrides)."""
    return small_settings


@pytest.fixture
def settings() -> SimulatorSettings:
    return small_settings()


@pytest.fixture
async def app(settings: SimulatorSettings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://simulators") as client:
        yield client


@pytest.fixture
def person() -> dict[str, Any]:
    """What RICA needs to know of a South African citizen (a valid ID number)."""
    return {
        "idNumber": "8001015009087",
        "fullName": "Thandi Mokoena",
        "residentialAddress": {
            "line1": "12 Long Street",
            "city": "Cape Town",
            "postalCode": "8001",
        },
    }


@pytest.fixture
def registered_number(
    client: httpx.AsyncClient, person: dict[str, Any]
) -> Callable[[], Awaitable[str]]:
    """Reserve a number and register its user under RICA: ready to activate."""

    async def make() -> str:
        reservation = await client.post("/mno/v1/msisdn-reservations")
        assert reservation.status_code == 201, reservation.text
        msisdn: str = reservation.json()["msisdn"]
        registration = await client.post(
            "/mno/v1/rica-registrations",
            json={"msisdn": msisdn, **person},
        )
        assert registration.status_code == 201, registration.text
        return msisdn

    return make


@pytest.fixture
def available_sim(client: httpx.AsyncClient) -> Callable[[], Awaitable[str]]:
    async def take() -> str:
        sims = await client.get("/mno/v1/sims", params={"status": "available", "limit": 1})
        iccid: str = sims.json()["items"][0]["iccid"]
        return iccid

    return take


@pytest.fixture
def activate(
    client: httpx.AsyncClient,
    registered_number: Callable[[], Awaitable[str]],
    available_sim: Callable[[], Awaitable[str]],
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Activate a subscription on a fresh number and SIM; return its body."""

    async def make(**extra: Any) -> dict[str, Any]:
        body = {
            "msisdn": await registered_number(),
            "iccid": await available_sim(),
            "tariffCode": "PREPAID_1GB",
            **extra,
        }
        response = await client.post("/mno/v1/subscriptions", json=body)
        assert response.status_code in (201, 202), response.text
        subscription: dict[str, Any] = response.json()
        return subscription

    return make
