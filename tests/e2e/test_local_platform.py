"""The README's platform command, for real: every service up as its own process, then Ctrl-C.

Runs with no DATABASE_URL and no AWS_ENDPOINT_URL, so the command starts the embedded PostgreSQL
and moto's server itself; ports are shifted so it can run beside a developer's own platform.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from mvno.devstack.components import ALL, SERVICES
from mvno.devstack.infrastructure import free_port

pytestmark = pytest.mark.e2e

SERVICE_NAMES = {service.name for service in SERVICES}


def start_platform(data_dir: Path, port_offset: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL"}}
    launcher = Path(sys.executable).with_name("mvno-local")
    return subprocess.Popen(
        [str(launcher), "up", "--data-dir", str(data_dir), "--port-offset", str(port_offset)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for_banner(process: subprocess.Popen[str], timeout: float = 180) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                raise AssertionError("the platform exited early:\n" + "".join(lines))
            continue
        lines.append(line)
        if "Press Ctrl-C to stop" in line:
            return lines
    raise AssertionError("the platform did not come up in time:\n" + "".join(lines))


def interrupt(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    return output


def embedded_socket_url(data_dir: Path, database: str) -> str:
    return f"postgresql://postgres@/{database}?host={data_dir / 'postgres'}"


@pytest.fixture
def port_offset() -> int:
    # An offset whose shifted ports (4566, 8000..8010) are all free right now and stay below the
    # kernel's ephemeral range (32768 and up), where an outgoing connection could take one first.
    for _ in range(50):
        offset = free_port() % 14000 + 10000
        if all(_is_free(port + offset) for port in (4566, *(c.default_port for c in ALL))):
            return offset
    raise RuntimeError("no free port range")


def _is_free(port: int) -> bool:
    from mvno.devstack.infrastructure import port_in_use

    return not port_in_use(port)


async def test_platform_comes_up_healthy_and_ctrl_c_leaves_nothing_behind(tmp_path, port_offset):
    data_dir = tmp_path / "platform-data"
    process = start_platform(data_dir, port_offset)
    try:
        banner = "".join(wait_for_banner(process))
        launcher = psutil.Process(process.pid)
        children = launcher.children(recursive=True)
        postgres_pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        async with httpx.AsyncClient(timeout=10) as client:
            for component in ALL:
                base = f"http://127.0.0.1:{component.default_port + port_offset}"
                assert base in banner
                live = await client.get(f"{base}/health/live")
                assert live.status_code == 200, component.name
                if component.name in SERVICE_NAMES:
                    ready = await client.get(f"{base}/health/ready")
                    checks = ready.json()["checks"]
                    assert checks["database"] == checks["bus"] == "ok", component.name
                    assert set(checks.values()) == {"ok"}, component.name
                    openapi = await client.get(f"{base}/openapi.json")
                    assert openapi.json()["info"]["title"]
                    assert "/health/ready" in openapi.json()["paths"]
            # The demo catalogue is seeded: the banking app has things to sell.
            catalog = f"http://127.0.0.1:{8001 + port_offset}/tmf-api/productCatalogManagement/v4"
            sellable = await client.get(f"{catalog}/productOffering?isSellable=true&channel.id=app")
            assert {"starter-esim", "data-5gb-30d", "airtime-r50"} <= {
                offering["id"] for offering in sellable.json()
            }
        # Leave a mark in a service's database to see it again after a restart.
        connection = await asyncpg.connect(embedded_socket_url(data_dir, "mvno_catalog"))
        await connection.execute(
            "CREATE TABLE restart_mark (note text); INSERT INTO restart_mark VALUES ('kept')"
        )
        await connection.close()
    finally:
        output = interrupt(process)
    assert process.returncode == 0, output
    assert len(children) >= 7  # moto, dev issuer, simulators, four services
    still_running = [
        child.pid
        for child in children
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ]
    assert still_running == [], output
    assert (
        not psutil.pid_exists(postgres_pid)
        or psutil.Process(postgres_pid).status() == psutil.STATUS_ZOMBIE
    )

    again = start_platform(data_dir, port_offset)
    try:
        wait_for_banner(again)
        connection = await asyncpg.connect(embedded_socket_url(data_dir, "mvno_catalog"))
        assert await connection.fetchval("SELECT note FROM restart_mark") == "kept"
        # Seeding again at start-up changed nothing: one price per price slot, as first seeded.
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM offering_prices WHERE valid_to IS NOT NULL"
            )
            == 0
        )
        await connection.close()
    finally:
        interrupt(again)
    assert again.returncode == 0
