"""``mvno-local up`` is usable when it says so, and heals as the cluster does: a process that dies
is restarted with backoff, ``--stop-on-crash`` stops the platform instead, and Ctrl-C leaves
nothing behind, even while a restart is waiting."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from itertools import pairwise
from pathlib import Path

import httpx
import psutil
import pytest

from mvno.devstack.components import ALL
from mvno.devstack.infrastructure import free_port, port_in_use

pytestmark = pytest.mark.e2e

WORKER = "orders-provision"
CUSTOMER = {
    "idType": "sa_id",
    "idNumber": "8001015009087",
    "fullName": "Thabo Mokoena",
    "address": {"line1": "3 Long Street", "city": "Cape Town", "postalCode": "8001"},
}
ORDERS = "/tmf-api/productOrderingManagement/v4/productOrder"


def _offset() -> int:
    for _ in range(50):
        offset = free_port() % 14000 + 10000
        if not any(port_in_use(p + offset) for p in (4566, *(c.default_port for c in ALL))):
            return offset
    raise RuntimeError("no free port range")


class Platform:
    """``mvno-local up`` as a developer runs it, its console read line by line."""

    def __init__(self, data_dir: Path, *options: str) -> None:
        self.offset = _offset()
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL"}}
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("mvno-local")), "up", "--data-dir", str(data_dir),
             "--port-offset", str(self.offset), *options],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.console: list[str] = []
        self.url = {c.name: f"http://127.0.0.1:{c.default_port + self.offset}" for c in ALL}

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match[str]:
        """The next console line matching ``pattern``."""
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            self.console.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(self.console))

    def processes(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def worker_pid(self) -> int:
        [pid] = [
            p.pid
            for p in self.processes()
            if p.cmdline()[-3:] == ["-m", "mvno.orders", "provision"]
        ]
        return pid

    def interrupt(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        output, _ = self.process.communicate(timeout=90)
        return "".join(self.console) + output


def left_running(processes: list[psutil.Process]) -> list[int]:
    return [p.pid for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


async def place_order(client: httpx.AsyncClient, platform: Platform) -> httpx.Response:
    token = (
        await client.post(
            platform.url["dev-issuer"] + "/token",
            data={"grant_type": "client_credentials", "client_id": "bank-app",
                  "scope": "orders:write", "subject": "bank-app"},
        )
    ).json()["access_token"]  # fmt: skip
    return await client.post(
        platform.url["orders"] + ORDERS,
        json={
            "channel": [{"id": "app"}], "relatedParty": [{"id": "cust-heal"}],
            "payment": [{"id": "1002003004"}], "customer": CUSTOMER,
            "productOrderItem": [{"id": "1", "action": "add",
                                  "productOffering": {"id": "starter-esim"}, "simKind": "eSIM"}],
        },
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip


async def order_state(client: httpx.AsyncClient, platform: Platform, order_id: str) -> str:
    token = (
        await client.post(
            platform.url["dev-issuer"] + "/token",
            data={"grant_type": "client_credentials", "client_id": "bank-app",
                  "scope": "orders:write", "subject": "bank-app"},
        )
    ).json()["access_token"]  # fmt: skip
    deadline, state = time.monotonic() + 120, "unread"
    while time.monotonic() < deadline:
        order = await client.get(
            f"{platform.url['orders']}{ORDERS}/{order_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
        if (state := order.json()["state"]) in {"completed", "failed", "cancelled"}:
            return str(state)
        await asyncio.sleep(0.5)
    raise AssertionError(f"order {order_id} still {state}")


async def test_up_sells_at_once_and_a_killed_worker_is_restarted_with_backoff(tmp_path):
    platform = Platform(tmp_path / "data")
    try:
        platform.wait_for("Press Ctrl-C to stop")
        async with httpx.AsyncClient(timeout=30) as client:
            # Up means a customer can buy: no retry while the catalogue is on its way.
            first = await place_order(client, platform)
            assert first.status_code == 201, first.text

            killed = platform.worker_pid()
            os.kill(killed, signal.SIGKILL)
            platform.wait_for(rf"{WORKER} exited \(-9\); restarting it in 1 s \(crash 1 in a row\)")
            restarted = int(platform.wait_for(rf"{WORKER} restarted \(pid (\d+)\)").group(1))
            assert restarted != killed
            assert platform.worker_pid() == restarted
            # The restarted worker provisions: the order placed before the kill completes, and
            # so does one placed after it.
            assert await order_state(client, platform, first.json()["id"]) == "completed"
            second = await place_order(client, platform)
            assert second.status_code == 201, second.text
            assert await order_state(client, platform, second.json()["id"]) == "completed"

            # Crashing again soon after each restart waits twice as long each time.
            restarts, delays = 1, []
            while not delays or delays[-1] < 4:
                os.kill(platform.worker_pid(), signal.SIGKILL)
                found = platform.wait_for(rf"{WORKER} exited \(-9\); restarting it in (\d+) s")
                delays.append(int(found.group(1)))
                if delays[-1] < 4:
                    platform.wait_for(rf"{WORKER} restarted")
                    restarts += 1
            assert all(later == 2 * earlier for earlier, later in pairwise(delays)), delays
        # Ctrl-C while that restart waits: nothing is started, nothing is left.
        processes = platform.processes()
    finally:
        output = platform.interrupt()
    assert platform.process.returncode == 0, output
    assert output.count(f"{WORKER} restarted") == restarts, output
    assert left_running(processes) == [], output


async def test_stop_on_crash_stops_the_platform_when_a_worker_dies(tmp_path):
    platform = Platform(tmp_path / "data", "--stop-on-crash")
    try:
        platform.wait_for("Press Ctrl-C to stop")
        processes = platform.processes()
        os.kill(platform.worker_pid(), signal.SIGKILL)
        platform.wait_for(rf"{WORKER} exited \(-9\); stopping the platform")
        platform.process.wait(timeout=90)
    finally:
        output = platform.interrupt()
    assert platform.process.returncode == 1, output
    assert "restarted" not in output
    assert left_running(processes) == [], output
