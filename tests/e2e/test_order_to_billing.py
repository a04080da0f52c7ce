"""An order's line billed for real: the local platform (``mvno-local up``) with billing-sync's
consumer and worker, no stand-in. The provisioning saga waits for billing-sync's
``billing.account.created``; a bundle and airtime bought afterwards show in billing-sync's reads."""

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from mvno.devstack.components import ALL
from mvno.devstack.infrastructure import free_port, port_in_use
from mvno.devstack.testing import wait_for_banner

pytestmark = pytest.mark.e2e

CUSTOMER = {
    "idType": "sa_id",
    "idNumber": "8001015009087",
    "fullName": "Thabo Mokoena",
    "address": {"line1": "3 Long Street", "city": "Cape Town", "postalCode": "8001"},
}


def _offset() -> int:
    for _ in range(50):
        offset = free_port() % 14000 + 10000
        if not any(port_in_use(p + offset) for p in (4566, *(c.default_port for c in ALL))):
            return offset
    raise RuntimeError("no free port range")


def _start(data_dir: Path, offset: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL"}}
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("mvno-local")), "up", "--data-dir", str(data_dir),
         "--port-offset", str(offset)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


async def test_an_ordered_line_is_billed_and_its_purchases_show_as_buckets(tmp_path):
    offset = _offset()
    process = _start(tmp_path / "data", offset)
    try:
        wait_for_banner(process)
        url = {c.name: f"http://127.0.0.1:{c.default_port + offset}" for c in ALL}
        async with httpx.AsyncClient(timeout=30) as client:
            token = (
                await client.post(
                    url["dev-issuer"] + "/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": "bank-app",
                        "scope": "orders:write billing:read",
                        "subject": "bank-app",
                    },
                )
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            orders = url["orders"] + "/tmf-api/productOrderingManagement/v4/productOrder"

            async def order(body: dict[str, Any]) -> dict[str, Any]:
                placed = await client.post(
                    orders,
                    json={"channel": [{"id": "app"}], "relatedParty": [{"id": "cust-e2e"}],
                          "payment": [{"id": "1002003004"}], **body},
                    headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
                )  # fmt: skip
                assert placed.status_code == 201, placed.text
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    now = (await client.get(f"{orders}/{placed.json()['id']}", headers=auth)).json()
                    if now["state"] in {"completed", "failed", "cancelled"}:
                        return dict(now)
                    await asyncio.sleep(0.5)
                raise AssertionError(f"order still {now['state']}")

            new_line = await order({"customer": CUSTOMER, "productOrderItem": [
                {"id": "1", "action": "add", "productOffering": {"id": "starter-psim"},
                 "simKind": "pSIM"},
            ]})  # fmt: skip
            assert new_line["state"] == "completed", new_line
            subscription_id = new_line["productOrderItem"][0]["product"]["id"]
            for offering, change in (("data-1gb-30d", "bundle"), ("airtime-r50", "airtime")):
                bought = await order({"productOrderItem": [
                    {"id": "1", "action": "modify", "change": change,
                     "product": {"id": subscription_id}, "productOffering": {"id": offering}},
                ]})  # fmt: skip
                assert bought["state"] == "completed", bought

            buckets_url = url["billing-sync"] + "/tmf-api/balanceManagement/v4/bucket"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                buckets = (
                    await client.get(buckets_url, params={"product.id": subscription_id},
                                     headers=auth)
                ).json()  # fmt: skip
                if len(buckets) == 2:
                    break
                await asyncio.sleep(0.5)
            assert {b["usageType"]: b["remainingValue"] for b in buckets} == {
                "airtime": {"amount": 50.0, "units": "ZAR"},
                "data": {"amount": 1024.0, "units": "MB"},
            }
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
