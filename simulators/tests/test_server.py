"""The simulators as the local platform runs them: their own process, configured by environment."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mvno.devstack.infrastructure import free_port
from mvno.devstack.processes import ProcessGroup, wait_until_ready


def test_serves_the_partners_configured_from_the_environment(process_group: ProcessGroup, tmp_path):
    port = free_port()
    state_file = tmp_path / "state.pickle"
    env = {key: value for key, value in os.environ.items() if not key.startswith("MVNO_")}
    env |= {
        "MVNO_SIM_ENVIRONMENT": "test",
        "MVNO_SIM_SEED": "7",
        "MVNO_SIM_NUMBER_POOL_SIZE": "100",
        "MVNO_SIM_STATE_FILE": str(state_file),
        "MVNO_SIM_FAULTS": json.dumps({"billing": {"outage": True}}),
        "MVNO_SIM_BLOCKED_ACCOUNTS": json.dumps(["5550001111"]),
    }
    child = process_group.start(
        f"simulators-{port}",
        [sys.executable, "-m", "mvno.simulators", "serve", "--port", str(port)],
        env,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_ready(child, f"{base}/health/ready", timeout=60)
    with httpx.Client(base_url=base, timeout=10) as api:
        assert api.get("/health/live").json() == {"status": "live"}
        openapi = api.get("/openapi.json").json()
        assert api.get("/billing/v1/health").status_code == 503
        assert len(api.get("/mno/v1/msisdns", params={"limit": 500}).json()["items"]) == 100
        blocked = api.post(
            "/payments/v1/payments",
            json={"accountNumber": "5550001111", "amountCents": 100, "reference": "r"},
        )
        assert blocked.json()["type"] == "urn:mvno:problem:account-blocked"
        reservation = api.post("/mno/v1/msisdn-reservations").json()
        missing = api.get("/no/such/route")
    for path in ("/mno/v1/subscriptions", "/payments/v1/payments", "/billing/v1/accounts"):
        assert path in openapi["paths"]
    assert "/admin/faults/{partner}/{operation}" in openapi["paths"]
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

    process_group.stop(child)  # SIGTERM: the state is saved on the way out
    assert state_file.exists()
    child = process_group.start(
        f"simulators-{port}-again",
        [sys.executable, "-m", "mvno.simulators", "serve", "--port", str(port)],
        env,
    )
    wait_until_ready(child, f"{base}/health/ready", timeout=60)
    with httpx.Client(base_url=base, timeout=10) as api:
        kept = api.get(f"/mno/v1/msisdn-reservations/{reservation['id']}")
    assert kept.json() == reservation
    process_group.stop(child)


def _operations_with_bodies(openapi: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, operations in openapi["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]


@pytest.mark.parametrize("content", [b"{", b"[]", b'{"unexpected": true}', b'"text"', b"\xff\xfe"])
async def test_bad_bodies_get_a_4xx_problem_on_every_write(
    app: FastAPI, client: httpx.AsyncClient, content: bytes
):
    operations = _operations_with_bodies(app.openapi())
    assert len(operations) > 15
    for method, path in operations:
        url = path.replace("{partner}", "mno").replace("{operation}", "check_health")
        url = url.replace("{account_number}", "1234567890")
        url = url.replace("{", "").replace("}", "")
        response = await client.request(
            method, url, content=content, headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (method, url, response.text)
        assert response.headers["content-type"] == "application/problem+json", (method, url)
