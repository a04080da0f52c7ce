"""Fault injection over HTTP: latency, errors, timeouts, lost answers and outages.

Timeouts and lost answers need a real socket (an in-process transport has no client timeout),
so those tests serve the app with uvicorn. Timings are asserted from below only: a loaded
machine may be slower, never faster.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mvno.devstack.servers import serve_app
from mvno.devstack.testing import assert_problem
from mvno.simulators.app import create_app
from mvno.simulators.settings import SimulatorSettings

MakeSettings = Callable[..., SimulatorSettings]


async def put_fault(client: httpx.AsyncClient, target: str, **rule: Any) -> dict[str, Any]:
    response = await client.put(f"/admin/faults/{target}", json=rule)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_outage_answers_503_for_the_partner_only(client: httpx.AsyncClient):
    await put_fault(client, "payments", outage=True)
    down = await client.get("/payments/v1/health")
    assert_problem(down, 503, "partner-outage")
    assert down.headers["retry-after"] == "1"
    declined_too = await client.post(
        "/payments/v1/payments", json={"accountNumber": "1234567890", "amountCents": 1}
    )
    assert declined_too.status_code == 503  # before the body is even looked at
    assert (await client.get("/mno/v1/health")).status_code == 200
    assert (await client.get("/billing/v1/health")).status_code == 200
    assert (await client.get("/admin/faults")).status_code == 200  # admin is never faulted

    assert (await client.delete("/admin/faults/payments")).status_code == 204
    assert (await client.get("/payments/v1/health")).status_code == 200


async def test_an_operation_rule_replaces_the_partner_rule(client: httpx.AsyncClient):
    await put_fault(client, "mno", outage=True)
    await put_fault(client, "mno/check_health")  # all zero: no fault for this operation
    assert (await client.get("/mno/v1/health")).status_code == 200
    assert (await client.get("/mno/v1/sims")).status_code == 503

    table = (await client.get("/admin/faults")).json()
    assert {(r["partner"], r["operation"]) for r in table["rules"]} == {
        ("mno", None),
        ("mno", "check_health"),
    }
    assert "activate_subscription" in table["operations"]["mno"]
    assert "authorise_payment" in table["operations"]["payments"]
    assert (await client.delete("/admin/faults")).status_code == 204
    assert (await client.get("/admin/faults")).json()["rules"] == []


async def test_error_rate_one_answers_the_chosen_5xx(client: httpx.AsyncClient):
    await put_fault(client, "billing/create_account", errorRate=1, errorStatus=502)
    body = {"customerRef": "c1", "name": "A Person"}
    for _ in range(3):
        response = await client.post(
            "/billing/v1/accounts", json=body, headers={"Idempotency-Key": "k"}
        )
        assert_problem(response, 502, "injected-error")
    await client.delete("/admin/faults/billing/create_account")
    # Injected errors happen before the call runs, so nothing was stored under the key.
    created = await client.post("/billing/v1/accounts", json=body, headers={"Idempotency-Key": "k"})
    assert created.status_code == 201
    assert "idempotent-replayed" not in created.headers


async def statuses_under_error_rate(make_settings: MakeSettings, seed: int) -> list[int]:
    app = create_app(make_settings(seed=seed))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://sim") as client,
    ):
        await put_fault(client, "mno/check_health", errorRate=0.5)
        return [(await client.get("/mno/v1/health")).status_code for _ in range(40)]


async def test_error_rate_is_a_share_of_calls_repeatable_with_the_seed(make_settings):
    first = await statuses_under_error_rate(make_settings, seed=7)
    assert set(first) == {200, 500}
    assert 8 <= first.count(500) <= 32
    assert await statuses_under_error_rate(make_settings, seed=7) == first
    assert await statuses_under_error_rate(make_settings, seed=8) != first


async def test_latency_is_added_before_the_answer(client: httpx.AsyncClient):
    await put_fault(client, "mno/check_health", latencyMs=150, jitterMs=50)
    started = time.perf_counter()
    assert (await client.get("/mno/v1/health")).status_code == 200
    assert time.perf_counter() - started >= 0.15
    started = time.perf_counter()
    assert (await client.get("/mno/v1/sims", params={"limit": 1})).status_code == 200
    assert time.perf_counter() - started < 0.15  # other operations are not slowed


@pytest.mark.parametrize(
    ("target", "rule"),
    [
        ("nope", {"outage": True}),
        ("mno/nope", {"outage": True}),
    ],
)
async def test_unknown_partner_or_operation_is_404(client: httpx.AsyncClient, target, rule):
    response = await client.put(f"/admin/faults/{target}", json=rule)
    assert_problem(response, 404, "unknown-operation")


@pytest.mark.parametrize(
    "rule",
    [{"errorRate": 1.5}, {"errorStatus": 404}, {"latencyMs": -1}, {"outrage": True}],
)
async def test_bad_fault_rules_are_refused(client: httpx.AsyncClient, rule):
    response = await client.put("/admin/faults/mno", json=rule)
    assert_problem(response, 422, "validation-error")


async def test_faults_from_settings_apply_from_the_start(make_settings):
    settings = make_settings(
        faults={"payments": {"outage": True}, "mno.reserve_number": {"errorRate": 1}}
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        assert (await client.get("/payments/v1/health")).status_code == 503
        assert (await client.post("/mno/v1/msisdn-reservations")).status_code == 500
        assert (await client.get("/mno/v1/health")).status_code == 200
        await client.delete("/admin/faults")
        assert (await client.get("/payments/v1/health")).status_code == 200
        await client.post("/admin/reset")  # back to the start, configured faults included
        assert (await client.get("/payments/v1/health")).status_code == 503


def test_a_fault_setting_naming_no_operation_stops_the_start(make_settings):
    with pytest.raises(ValueError, match="no operation 'activate'"):
        create_app(make_settings(faults={"mno.activate": {"outage": True}}))


@pytest.fixture
async def served(make_settings: MakeSettings) -> AsyncIterator[tuple[FastAPI, str]]:
    app = create_app(make_settings(fault_timeout_seconds=30))
    async with serve_app(app) as base_url:
        yield app, base_url


async def test_timeout_leaves_the_client_without_an_answer(served: tuple[FastAPI, str]):
    _, base_url = served
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as admin:
        await put_fault(admin, "mno/check_health", timeoutRate=1)
        async with httpx.AsyncClient(base_url=base_url, timeout=0.5) as impatient:
            with pytest.raises(httpx.ReadTimeout):
                await impatient.get("/mno/v1/health")
        # The server holds that call (for 30 s, or until the client leaves) but serves others.
        assert (await admin.get("/mno/v1/sims", params={"limit": 1})).status_code == 200
        await admin.delete("/admin/faults")
        assert (await admin.get("/mno/v1/health")).status_code == 200
    # Leaving the fixture stops the server: it must not wait out the 30 s hold.


async def test_held_call_is_answered_504_when_the_hold_ends(served: tuple[FastAPI, str]):
    _, base_url = served
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        await put_fault(client, "mno/check_health", timeoutRate=1, timeoutSeconds=0.2)
        assert_problem(await client.get("/mno/v1/health"), 504, "timeout")


async def test_lost_answer_then_retry_gets_the_original_result(served: tuple[FastAPI, str]):
    _, base_url = served
    body = {"accountNumber": "1234567890", "amountCents": 5_000, "reference": "order-7"}
    headers = {"Idempotency-Key": "order-7-authorise"}
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        await put_fault(client, "payments/authorise_payment", lostResponseRate=1)
        async with httpx.AsyncClient(base_url=base_url, timeout=0.5) as impatient:
            with pytest.raises(httpx.ReadTimeout):
                await impatient.post("/payments/v1/payments", json=body, headers=headers)
        account = (await client.get("/admin/payments/accounts/1234567890")).json()
        assert account["heldCents"] == 5_000  # it took effect although nobody heard

        await client.delete("/admin/faults")
        retry = await client.post("/payments/v1/payments", json=body, headers=headers)
        assert retry.status_code == 201
        assert retry.headers["idempotent-replayed"] == "true"
        account = (await client.get("/admin/payments/accounts/1234567890")).json()
        assert account["heldCents"] == 5_000  # still held once


async def test_an_outage_covers_every_operation_of_every_partner(
    app: FastAPI, client: httpx.AsyncClient
):
    for partner in ("mno", "payments", "billing"):
        await put_fault(client, partner, outage=True)
    operations = [
        (method.upper(), path.replace("{", "").replace("}", ""))
        for path, methods in app.openapi()["paths"].items()
        if path.split("/")[1] in {"mno", "payments", "billing"}
        for method in methods
    ]
    assert len(operations) == sum(
        len(names) for names in (await client.get("/admin/faults")).json()["operations"].values()
    )
    for method, path in operations:
        response = await client.request(method, path)
        assert response.status_code == 503, (method, path)
