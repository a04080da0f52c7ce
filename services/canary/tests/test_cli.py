"""``mvno-canary run --once`` as an operator runs it: a real process against the simulators."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

PARTNER_PROBES = ("network-operator", "payments", "billing-platform")


async def run_once(partners_url: str, *arguments: str) -> tuple[int, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MVNO_")},
        "MVNO_ENVIRONMENT": "test",
        "MVNO_NETWORK_OPERATOR_URL": partners_url + "/mno/v1",
        "MVNO_PAYMENTS_URL": partners_url + "/payments/v1",
        "MVNO_BILLING_PLATFORM_URL": partners_url + "/billing/v1",
        "MVNO_CANARY_PROBES": json.dumps(PARTNER_PROBES),
        "MVNO_CANARY_TIMEOUT_SECONDS": "5",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mvno.canary",
        "run",
        "--once",
        *arguments,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_once_prints_a_table_and_exits_zero_when_every_probe_passed(partners: Any) -> None:
    status, out = await run_once(partners.url)
    lines = out.strip().splitlines()
    assert status == 0, out
    assert lines[0].split() == ["probe", "result", "latency", "reason"]
    assert {line.split()[0] for line in lines[1:-1]} == {
        "network-operator.health",
        "network-operator.numbers",
        "payments.health",
        "payments.authorise_void",
        "billing-platform.health",
        "billing-platform.accounts",
    }
    assert all(line.split()[1] == "success" for line in lines[1:-1])
    assert lines[-1] == "6 passed, 0 failed"


async def test_once_exits_non_zero_and_says_why_when_a_partner_is_down(partners: Any) -> None:
    await partners.fault("payments", {"outage": True})
    status, out = await run_once(partners.url, "--json")
    assert status == 1
    report = json.loads(out)
    assert report["ok"] is False
    failed = {p["probe"]: p for p in report["probes"] if p["result"] == "failure"}
    assert set(failed) == {"payments.health", "payments.authorise_void"}
    assert "503 (partner-outage)" in failed["payments.health"]["reason"]
    assert all(p["latency_seconds"] >= 0 for p in report["probes"])


async def test_an_unknown_probe_is_refused_before_anything_is_called(partners: Any) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MVNO_")},
        "MVNO_ENVIRONMENT": "test",
        "MVNO_CANARY_PROBES": json.dumps(["payments", "telepathy"]),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mvno.canary",
        "run",
        "--once",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert out == b""
    assert b"unknown canary probes ['telepathy']" in err
