"""PostgreSQL and the AWS-compatible endpoint for local runs and tests.

Each is either one that already runs (named by an environment variable) or one started here:
PostgreSQL from the ``pgserver`` wheel (or Testcontainers where a Docker engine answers), and
moto's server for SNS, SQS, S3 and KMS.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy.engine import make_url

from mvno.devstack.processes import ProcessGroup, wait_until_ready

_log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.3)
        return probe.connect_ex((host, port)) == 0


def to_asyncpg_url(url: str) -> str:
    """Any PostgreSQL URL (libpq style or SQLAlchemy's) as a ``postgresql+asyncpg`` URL."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def with_database(server_url: str, database: str) -> str:
    """The server URL pointed at another database on the same server."""
    return (
        make_url(to_asyncpg_url(server_url))
        .set(database=database)
        .render_as_string(hide_password=False)
    )


EMBEDDED_MAX_CONNECTIONS = 400
"""Every service's pools, workers and relays of a local platform under load, with room to spare."""


def _max_connections(server: Any) -> int:
    shown = re.search(r"^\s*(\d+)\s*$", server.psql("SHOW max_connections;"), re.MULTILINE)
    return int(shown.group(1)) if shown else 0


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, *, keep_running: bool = False) -> Iterator[str]:
    """PostgreSQL from the ``pgserver`` wheel with its data in ``data_dir`` (kept across runs).

    Yields a ``postgresql+asyncpg`` URL to its ``postgres`` database over a Unix socket.
    """
    from pgserver.postgres_server import get_server

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop")
    if _max_connections(server) < EMBEDDED_MAX_CONNECTIONS:
        # A new data folder has PostgreSQL's default of 100, which the whole platform's pools
        # exhaust under load ("too many clients"). The
        # setting needs a restart; the data folder keeps it, so this happens once per folder.
        server.psql(f"ALTER SYSTEM SET max_connections = {EMBEDDED_MAX_CONNECTIONS};")
        server.cleanup()
        server = get_server(data_dir, cleanup_mode="stop")
    if keep_running:
        server.cleanup_mode = None
    uri = server.get_uri("postgres")  # postgresql://postgres:@/postgres?host=<socket dir>
    socket_dir = make_url(uri).query["host"]
    url = f"postgresql+asyncpg://postgres@/postgres?host={quote(str(socket_dir))}"
    try:
        yield url
    finally:
        if not keep_running:
            server.cleanup()


def docker_engine_answers() -> bool:
    """True when a Docker engine answers within two seconds (Testcontainers needs one)."""
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:  # no engine, no socket, no permission: all mean "not here"
        return False
    return True


@contextlib.contextmanager
def postgres_for_tests(tmp_dir: Path) -> Iterator[str]:
    """TEST_DATABASE_URL when set; else Testcontainers with a Docker engine; else pgserver."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield to_asyncpg_url(url)
        return
    if docker_engine_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver="asyncpg") as container:
            yield to_asyncpg_url(container.get_connection_url())
        return
    with embedded_postgres(tmp_dir / "pg") as url:
        yield url


@contextlib.contextmanager
def moto_endpoint(processes: ProcessGroup, port: int) -> Iterator[str]:
    """moto's server on ``127.0.0.1:port`` as a separate process (faster than a thread), keeping
    connections open between calls as AWS does (:mod:`mvno.devstack.moto_server`)."""
    child = processes.start(
        "moto",
        [sys.executable, "-m", "mvno.devstack.moto_server", "--port", str(port)],
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(child, f"{url}/moto-api/", timeout=60)
        yield url
    finally:
        processes.stop(child)


def reset_moto(endpoint_url: str) -> None:
    """Forget every topic, queue, bucket and key: isolation between tests."""
    httpx.post(f"{endpoint_url}/moto-api/reset", timeout=10).raise_for_status()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_in_use(port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")
