"""The canary on the local platform, for real: ``mvno-local up`` runs it continuously, so an
outage injected at a partner reaches the customer's buy screen as a notice and leaves it on
recovery; ``mvno-local canary`` probes once with the same options and says what failed."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mvno.devstack.components import ALL
from mvno.devstack.infrastructure import free_port, port_in_use

pytestmark = pytest.mark.e2e

LAUNCHER = Path(sys.executable).with_name("mvno-local")


def platform_environment() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL"} and not k.startswith("MVNO_")
    }


@pytest.fixture
def port_offset() -> int:
    # Shifted ports all free now, below the kernel's ephemeral range.
    for _ in range(50):
        offset = free_port() % 14000 + 10000
        if all(not port_in_use(port + offset) for port in (4566, *(c.default_port for c in ALL))):
            return offset
    raise RuntimeError("no free port range")


def start_platform(data_dir: Path, port_offset: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(LAUNCHER), "up", "--data-dir", str(data_dir), "--port-offset", str(port_offset)],
        env=platform_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for_banner(process: subprocess.Popen[str], timeout: float = 180) -> None:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            raise AssertionError("the platform exited early:\n" + "".join(lines))
        lines.append(line)
        if "Press Ctrl-C to stop" in line:
            return
    raise AssertionError("the platform did not come up in time:\n" + "".join(lines))


async def canary_once(data_dir: Path, port_offset: int) -> tuple[int, dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        str(LAUNCHER),
        "canary",
        "--data-dir",
        str(data_dir),
        "--port-offset",
        str(port_offset),
        "--json",
        env=platform_environment(),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, json.loads(out)


async def eventually(read: Any, check: Any, *, within: float = 60) -> Any:
    deadline = time.monotonic() + within
    value = await read()
    while not check(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"never came true; last seen: {value}")
        await asyncio.sleep(0.5)
        value = await read()
    return value


@pytest.mark.xfail(
    strict=False,
    reason="flaky in the full suite once: a server closed a connection without an answer "
    "(RemoteProtocolError); not yet understood",
)
async def test_an_outage_reaches_the_buy_screen_and_mvno_local_canary_reports_it(
    tmp_path: Path, port_offset: int
) -> None:
    data_dir = tmp_path / "platform-data"
    process = start_platform(data_dir, port_offset)
    simulators = f"http://127.0.0.1:{8010 + port_offset}"
    portal = f"http://127.0.0.1:{8000 + port_offset}/portal/v1"
    try:
        wait_for_banner(process)
        status, report = await canary_once(data_dir, port_offset)
        assert status == 0, report
        assert {p["probe"].split(".")[0] for p in report["probes"]} == {
            "network-operator",
            "payments",
            "billing-platform",
            "portal",
        }

        async with httpx.AsyncClient(timeout=10) as client:
            session = await client.post(
                f"{portal}/demo/session", json={"customerId": "e2e-canary-watcher"}
            )
            headers = {"Authorization": f"Bearer {session.json()['accessToken']}"}

            async def notices() -> list[dict[str, Any]]:
                answer = await client.get(f"{portal}/offers", headers=headers)
                assert answer.status_code == 200
                return list(answer.json()["partnerNotices"])

            assert await notices() == []
            down = await client.put(f"{simulators}/admin/faults/payments", json={"outage": True})
            down.raise_for_status()

            status, report = await canary_once(data_dir, port_offset)
            assert status == 1
            assert {p["probe"] for p in report["probes"] if p["result"] == "failure"} == {
                "payments.health",
                "payments.authorise_void",
            }
            # The platform's own canary tells the portal through the bus.
            shown = await eventually(notices, lambda found: len(found) == 1)
            assert shown[0]["partner"] == "payments"
            assert shown[0]["status"] == "unavailable"

            (await client.delete(f"{simulators}/admin/faults")).raise_for_status()
            await eventually(notices, lambda found: found == [])

            # Nothing held at the bank by the canary's authorise-and-void probes (between two of
            # its probes: one may be in flight when read).
            async def held() -> int:
                account = await client.get(f"{simulators}/admin/payments/accounts/4000000099")
                return int(account.json()["heldCents"])

            await eventually(held, lambda cents: cents == 0)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert (data_dir / "logs" / "canary.log").exists()
