"""``mvno-local``: run the whole MVNO Platform on this machine.

``mvno-local up`` starts PostgreSQL (the server in DATABASE_URL, else an embedded one), the
SNS/SQS/S3/KMS endpoint (AWS_ENDPOINT_URL, else moto's server on port 4566), runs migrations,
starts the simulators, the dev token issuer, all four services and their workers, waits until they
are ready and the catalogue has reached every copy of it, and prints where they are; the canary
probes it continuously. A process that dies is restarted with backoff (``--stop-on-crash`` stops
the platform instead). Ctrl-C stops everything it started.
``mvno-local canary`` runs every canary probe once against it (same ``--data-dir`` and
``--port-offset``), printing a table (``--json``: JSON), exit status 1 when a probe failed.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from mvno.devstack import traces
from mvno.devstack.infrastructure import (
    embedded_postgres,
    moto_endpoint,
    port_in_use,
    to_asyncpg_url,
)
from mvno.devstack.platform import Platform, PlatformConfig
from mvno.devstack.processes import ProcessGroup, Restarts

_log = logging.getLogger("mvno.local")
DEFAULT_DATA_DIR = Path(".local")
MOTO_PORT = 4566


@contextlib.contextmanager
def _database_server(data_dir: Path) -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        _log.info("PostgreSQL: the server in DATABASE_URL")
        yield to_asyncpg_url(url)
        return
    _log.info("PostgreSQL: embedded server with its data in %s", data_dir / "postgres")
    with embedded_postgres(data_dir / "postgres") as url:
        yield url


@contextlib.contextmanager
def _aws_endpoint(processes: ProcessGroup, port: int) -> Iterator[str]:
    if url := os.environ.get("AWS_ENDPOINT_URL"):
        _log.info("SNS/SQS: the endpoint in AWS_ENDPOINT_URL (%s)", url)
        yield url
        return
    if port_in_use(port):
        raise SystemExit(f"port {port} is busy: stop what listens there or set AWS_ENDPOINT_URL")
    _log.info("SNS/SQS: moto's server on port %s", port)
    with moto_endpoint(processes, port) as url:
        yield url


def _wait_for_stop(platform: Platform, *, stop_on_crash: bool, restarts: Restarts) -> int:
    """Serve until Ctrl-C (0). A process that dies is restarted with backoff, as the cluster
    restarts a pod; with ``stop_on_crash`` the platform stops instead (1). A restart still
    waiting when Ctrl-C comes is dropped, so nothing is started after it."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    for name in platform.started:
        restarts.started(name)
    while not stop.wait(0.2):
        for name, child in list(platform.started.items()):
            if child.alive() or restarts.pending(name):
                continue
            if stop_on_crash:
                _log.error(
                    "%s exited (%s); stopping the platform:\n%s",
                    name,
                    child.process.returncode,
                    child.log_tail(),
                )
                return 1
            delay = restarts.died(name)
            _log.error(
                "%s exited (%s); restarting it in %g s (crash %d in a row):\n%s",
                name,
                child.process.returncode,
                delay,
                restarts.crashes(name),
                child.log_tail(),
            )
        for name in restarts.due():
            if stop.is_set():
                break
            child = platform.restart(name)
            restarts.started(name)
            _log.warning("%s restarted (pid %s)", name, child.process.pid)
    return 0


def up(
    data_dir: Path,
    only: Sequence[str] | None,
    port_offset: int = 0,
    *,
    stop_on_crash: bool = False,
) -> int:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    processes = ProcessGroup(data_dir / "logs")
    started_at = time.monotonic()
    status = 0
    try:
        with (
            contextlib.ExitStack() as stack,
            _database_server(data_dir) as database_url,
            _aws_endpoint(processes, MOTO_PORT + port_offset) as aws_url,
        ):
            platform = Platform(
                PlatformConfig(
                    data_dir=data_dir,
                    database_server_url=database_url,
                    aws_endpoint_url=aws_url,
                    only=only,
                    port_offset=port_offset,
                ),
                processes,
            )
            try:
                if traces.receiver_wanted(os.environ, port_offset):
                    stack.enter_context(traces.receiver_process(processes, data_dir, port_offset))
                _log.info("provisioning the bus topology")
                platform.provision_bus()
                _log.info("running migrations")
                platform.migrate()
                _log.info("starting services")
                platform.start()
                print(
                    f"\nMVNO Platform is up in {time.monotonic() - started_at:.1f} s. Logs: {data_dir / 'logs'}"
                )
                for name, url in platform.links():
                    print(f"  {name:<13} {url}")
                if traces.receiver_wanted(os.environ, port_offset):
                    print(f"  {'traces':<13} {traces.banner(data_dir, port_offset)}")
                print("Press Ctrl-C to stop.\n", flush=True)
                status = _wait_for_stop(platform, stop_on_crash=stop_on_crash, restarts=Restarts())
            finally:
                _log.info("stopping")
                platform.stop()
    finally:
        processes.stop_all()
    _log.info("stopped")
    return status


def canary(data_dir: Path, port_offset: int, *, json: bool) -> int:
    """Every canary probe once against the platform ``up`` started with these options."""
    from mvno.devstack.canary import run_once

    config = PlatformConfig(
        data_dir=data_dir.resolve(),
        database_server_url="",
        aws_endpoint_url=os.environ.get(
            "AWS_ENDPOINT_URL", f"http://127.0.0.1:{MOTO_PORT + port_offset}"
        ),
        port_offset=port_offset,
    )
    return run_once(config, json=json)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mvno-local", description=__doc__.splitlines()[0] if __doc__ else None
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start the whole platform and wait for Ctrl-C")
    up_parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("MVNO_DATA_DIR", DEFAULT_DATA_DIR))
    )
    up_parser.add_argument("--only", help="comma-separated services to run (default: all)")
    up_parser.add_argument(
        "--port-offset",
        type=int,
        default=0,
        help="add this to every port, to run beside another copy",
    )
    up_parser.add_argument(
        "--stop-on-crash",
        action="store_true",
        help="stop the platform when one of its processes dies, instead of restarting it",
    )
    canary_parser = commands.add_parser(
        "canary", help="run every canary probe once against the local platform"
    )
    canary_parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("MVNO_DATA_DIR", DEFAULT_DATA_DIR))
    )
    canary_parser.add_argument("--port-offset", type=int, default=0, help="as given to `up`")
    canary_parser.add_argument("--json", action="store_true", help="print JSON, not a table")
    trace_parser = commands.add_parser(
        "trace", help="print an order's trace as a waterfall (from the platform's trace store)"
    )
    trace_parser.add_argument("order_id")
    trace_parser.add_argument("--json", action="store_true", help="print the spans as JSON")
    trace_parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("MVNO_DATA_DIR", DEFAULT_DATA_DIR))
    )
    trace_parser.add_argument("--port-offset", type=int, default=0, help="as given to `up`")
    arguments = parser.parse_args(argv)
    if arguments.command == "canary":
        sys.exit(canary(arguments.data_dir, arguments.port_offset, json=arguments.json))
    if arguments.command == "trace":
        sys.exit(
            traces.print_trace(
                arguments.order_id,
                data_dir=arguments.data_dir.resolve(),
                port_offset=arguments.port_offset,
                as_json=arguments.json,
            )
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    for chatty in ("pgserver", "httpx", "httpcore", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    only = arguments.only.split(",") if arguments.only else None
    sys.exit(
        up(arguments.data_dir, only, arguments.port_offset, stop_on_crash=arguments.stop_on_crash)
    )
