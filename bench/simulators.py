"""Server CPU per call of the third-party simulators, with no injected fault.

    .venv/bin/python bench/simulators.py [--calls 3000] [--concurrency 8]

Starts the simulators as the local platform does (``python -m mvno.simulators serve``, its own
process: one uvicorn worker, JSON access log on), drives each target with ``--calls`` calls from
this process over keep-alive connections, and reads the server process's CPU time (user + system,
from psutil) before and after each target. The client's own CPU is not counted. Then, for the
simulators' own share, calls the app in this process straight through ASGI (no server, no socket,
no access log) and takes the best of several rounds of process CPU time. Prints both per target
and writes them to ``bench/out/simulators-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import psutil

from mvno.devstack.infrastructure import free_port
from mvno.devstack.processes import ProcessGroup, wait_until_ready

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PACKAGES = ("fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools", "psutil")

# A call: (method, path, JSON body or None, headers); built from a running counter so every
# mutating call has its own Idempotency-Key and resource, as the platform's calls would.
Call = tuple[str, str, dict[str, Any] | None, dict[str, str]]


@dataclass(frozen=True)
class Target:
    name: str
    describe: str
    call: Callable[[int, dict[str, str]], Call]


def _key(prefix: str, n: int) -> dict[str, str]:
    return {"Idempotency-Key": f"{prefix}-{n}"}


TARGETS = (
    Target(
        "floor-live",
        "GET /health/live (no partner code: uvicorn, middleware, access log; the floor)",
        lambda n, _: ("GET", "/health/live", None, {}),
    ),
    Target(
        "mno-health",
        "GET /mno/v1/health",
        lambda n, _: ("GET", "/mno/v1/health", None, {}),
    ),
    Target(
        "mno-reserve",
        "POST /mno/v1/msisdn-reservations (Idempotency-Key)",
        lambda n, _: ("POST", "/mno/v1/msisdn-reservations", None, _key("reserve", n)),
    ),
    Target(
        "payments-authorise",
        "POST /payments/v1/payments (Idempotency-Key)",
        lambda n, _: (
            "POST",
            "/payments/v1/payments",
            {"accountNumber": "1234567890", "amountCents": 100, "reference": f"order-{n}"},
            _key("authorise", n),
        ),
    ),
    Target(
        "payments-read",
        "GET /payments/v1/payments/{id}",
        lambda n, ids: ("GET", f"/payments/v1/payments/{ids['payment']}", None, {}),
    ),
    Target(
        "payments-replay",
        "POST /payments/v1/payments, a repeated Idempotency-Key",
        lambda n, _: (
            "POST",
            "/payments/v1/payments",
            {"accountNumber": "1234567890", "amountCents": 100, "reference": "order-0"},
            _key("authorise", 0),
        ),
    ),
    Target(
        "billing-account",
        "POST /billing/v1/accounts (Idempotency-Key)",
        lambda n, _: (
            "POST",
            "/billing/v1/accounts",
            {"customerRef": f"customer-{n}", "name": "Bench Customer"},
            _key("account", n),
        ),
    ),
)


@dataclass(frozen=True)
class Result:
    target: str
    request: str
    calls: int
    errors: int
    wall_seconds: float
    server_cpu_seconds: float
    cpu_microseconds_per_call: float
    calls_per_second: float


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="measured calls per target")
    parser.add_argument("--warm-up", type=int, default=300, help="unmeasured calls before each")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight at once")
    return parser.parse_args(argv)


async def drive(
    client: httpx.AsyncClient,
    target: Target,
    numbers: itertools.count[int],
    count: int,
    concurrency: int,
    ids: dict[str, str],
) -> int:
    """Make ``count`` calls, ``concurrency`` at a time; return how many were not 2xx."""
    errors = 0
    remaining = count

    async def worker() -> None:
        nonlocal errors, remaining
        while remaining > 0:
            remaining -= 1
            method, path, body, headers = target.call(next(numbers), ids)
            response = await client.request(method, path, json=body, headers=headers)
            if not response.is_success:
                errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors


async def measure(
    base_url: str, server: psutil.Process, arguments: argparse.Namespace
) -> list[Result]:
    limits = httpx.Limits(max_connections=arguments.concurrency)
    results = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        payment = await client.post(
            "/payments/v1/payments",
            json={"accountNumber": "1234567890", "amountCents": 100, "reference": "order-0"},
            headers=_key("authorise", 0),
        )
        ids = {"payment": payment.json()["id"]}
        numbers = itertools.count(1)
        for target in TARGETS:
            await drive(client, target, numbers, arguments.warm_up, arguments.concurrency, ids)
            before = server.cpu_times()
            started = time.perf_counter()
            errors = await drive(
                client, target, numbers, arguments.calls, arguments.concurrency, ids
            )
            wall = time.perf_counter() - started
            after = server.cpu_times()
            cpu = (after.user - before.user) + (after.system - before.system)
            result = Result(
                target=target.name,
                request=target.describe,
                calls=arguments.calls,
                errors=errors,
                wall_seconds=round(wall, 3),
                server_cpu_seconds=round(cpu, 3),
                cpu_microseconds_per_call=round(cpu / arguments.calls * 1e6, 1),
                calls_per_second=round(arguments.calls / wall, 1),
            )
            print(
                f"{result.target:<20} {result.cpu_microseconds_per_call:>8.1f} µs CPU/call"
                f" {result.calls_per_second:>9.1f} calls/s  errors {result.errors}",
                flush=True,
            )
            results.append(result)
    return results


async def in_process(arguments: argparse.Namespace, rounds: int = 7) -> dict[str, float]:
    """CPU µs per call of the app itself, called through ASGI in this process: best of ``rounds``."""
    from mvno.simulators.app import create_app
    from mvno.simulators.settings import SimulatorSettings

    per_round = max(arguments.calls // rounds, 100)
    settings = SimulatorSettings(
        environment="test", log_level="WARNING", number_pool_size=4 * arguments.calls + 1000
    )
    app = create_app(settings)
    results: dict[str, float] = {}
    async with app.router.lifespan_context(app):

        async def call(
            method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
        ) -> None:
            raw = json.dumps(body).encode() if body is not None else b""
            header_list = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
            ]
            header_list += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            scope = {
                "type": "http",
                "method": method,
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "headers": header_list,
                "http_version": "1.1",
                "scheme": "http",
                "server": ("bench", 80),
                "client": ("bench", 1),
                "root_path": "",
            }
            messages = [{"type": "http.request", "body": raw, "more_body": False}]

            async def receive() -> dict[str, Any]:
                return messages.pop() if messages else {"type": "http.disconnect"}

            async def send(message: dict[str, Any]) -> None:
                pass

            await app(scope, receive, send)

        bank = app.state.simulator.state.bank
        payment = bank.authorise(
            account_number="1234567890", amount_cents=100, currency="ZAR", reference="read-me"
        )
        ids = {"payment": payment.id}
        numbers = itertools.count(10**6)
        for target in TARGETS:
            for _ in range(per_round // 5):
                await call(*target.call(next(numbers), ids))
            best = float("inf")
            for _ in range(rounds):
                started = time.process_time()
                for _ in range(per_round):
                    await call(*target.call(next(numbers), ids))
                best = min(best, (time.process_time() - started) / per_round)
            results[target.name] = round(best * 1e6, 1)
    return results


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_before": os.getloadavg(),
        "packages": {name: metadata.version(name) for name in PACKAGES},
    }


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    about = machine()
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("MVNO_")}
    env |= {
        "MVNO_SIM_ENVIRONMENT": "test",
        # Room for every reservation the run makes, warm-up included.
        "MVNO_SIM_NUMBER_POOL_SIZE": str(2 * (arguments.calls + arguments.warm_up) + 100),
    }
    with tempfile.TemporaryDirectory(prefix="mvno-bench-simulators-") as folder:
        processes = ProcessGroup(Path(folder))
        try:
            child = processes.start(
                "simulators",
                [sys.executable, "-m", "mvno.simulators", "serve", "--port", str(port)],
                env,
            )
            base_url = f"http://127.0.0.1:{port}"
            wait_until_ready(child, f"{base_url}/health/ready", timeout=60)
            results = asyncio.run(measure(base_url, psutil.Process(child.process.pid), arguments))
        finally:
            processes.stop_all()
    print("in process, the app alone (best of 7 rounds):", flush=True)
    app_only = asyncio.run(in_process(arguments))
    for name, microseconds in app_only.items():
        print(f"{name:<20} {microseconds:>8.1f} µs CPU/call", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = OUT / f"simulators-{stamp}.json"
    path.write_text(
        json.dumps(
            {
                "arguments": vars(arguments),
                "machine": about,
                "results": [asdict(r) for r in results],
            },
            indent=2,
        )
    )
    print(f"written to {path.relative_to(ROOT)}")
    if any(result.errors for result in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
