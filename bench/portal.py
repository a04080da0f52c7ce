"""portal-api's "my lines" screen under load with the whole platform running, against the bare
JSON GET baseline, in one run.

    .venv/bin/python -m bench.portal [--lines 3] [--rate 200] [--seconds 20] [--connections 32]
                                     [--lines-answers-kept N]

1. ``mvno-local up`` starts the platform (embedded PostgreSQL, moto, the dev issuer, simulators,
   catalog, orders with its workers, billing-sync, portal-api with its consumer) on shifted ports.
2. A demo customer buys ``--lines`` eSIM lines through portal-api, for real (orders provisions them
   at the simulators; portal-api's consumer keeps them in its read model).
3. A portal-api replica (``mvno.portal_api.app:create_app``) and the bare app
   (``bench.apps:bare_app``) run under the same uvicorn settings (one worker, uvloop, httptools, no
   access log), on the platform's database and upstreams. The replica's rate limits are lifted
   (one load generator, one customer's token: the limits would answer 429 by design). The replica
   keeps rendered answers as deployed (``MVNO_LINES_ANSWERS_KEPT``'s default) unless
   ``--lines-answers-kept`` says otherwise (0: every view reads the read model, as a customer's
   first view does).
4. wrk drives ``GET /json`` on the bare app and ``GET /portal/v1/lines`` (the customer's bearer
   token) on the replica, each at full speed, one after the other; then hey asks each at
   ``--rate`` requests/s to measure latency at that rate.

Writes ``bench/out/portal-<timestamp>.json``; exits 1 on any non-2xx answer or a missed target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.run import OUT, ROOT, ensure_tool, machine, parse_wrk, uvicorn_command
from mvno.devstack.components import ALL
from mvno.devstack.infrastructure import free_port, port_in_use
from mvno.devstack.processes import ProcessGroup, wait_until_ready

CUSTOMER = "bench-customer"
RICA = {
    "idType": "sa_id",
    "idNumber": "8001015009087",
    "fullName": "Thandi Nkosi",
    "address": {"line1": "1 Main Road", "city": "Cape Town", "postalCode": "8001"},
}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=3, help="lines the customer owns")
    parser.add_argument("--rate", type=int, default=200, help="paced requests/s for latency")
    parser.add_argument("--seconds", type=int, default=20, help="seconds of each measurement")
    parser.add_argument("--warm-up", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--lines-answers-kept",
        type=int,
        default=None,
        help="MVNO_LINES_ANSWERS_KEPT of the replica (0: no rendered answer kept)",
    )
    return parser.parse_args()


def free_offset() -> int:
    for _ in range(50):
        offset = free_port() % 14000 + 10000
        if all(not port_in_use(port + offset) for port in (4566, *(c.default_port for c in ALL))):
            return offset
    raise RuntimeError("no free port range")


def start_platform(data_dir: Path, offset: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AWS_ENDPOINT_URL"}}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("mvno-local")), "up", "--data-dir", str(data_dir),
         "--port-offset", str(offset)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + 240
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        seen.append(line)
        if "Press Ctrl-C to stop" in line:
            return process
        if not line and process.poll() is not None:
            break
    process.send_signal(signal.SIGINT)
    raise RuntimeError("the platform did not come up:\n" + "".join(seen))


async def orders_can_sell(socket_folder: Path) -> None:
    """orders learns the catalogue from catalog's launch events after start-up: wait for them."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        connection = await asyncpg.connect(
            f"postgresql://postgres@/mvno_orders?host={socket_folder}"
        )
        try:
            if await connection.fetchval(
                "SELECT count(*) FROM offering_copies WHERE offering_id = 'starter-esim'"
            ):
                return
        finally:
            await connection.close()
        await asyncio.sleep(0.5)
    raise RuntimeError("orders never heard of the catalogue")


async def customer_with_lines(portal: str, lines: int) -> str:
    """Sign the demo customer in and buy ``lines`` eSIM lines through portal-api; their token."""
    async with httpx.AsyncClient(base_url=portal + "/portal/v1", timeout=30) as api:
        session = await api.post("/demo/session", json={"customerId": CUSTOMER})
        session.raise_for_status()
        token: str = session.json()["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        for attempt in range(lines):
            placed = await api.post(
                "/orders",
                headers={**headers, "Idempotency-Key": f"bench-line-{attempt}"},
                json={
                    "kind": "line",
                    "offeringId": "starter-esim",
                    "simKind": "eSIM",
                    "customer": RICA,
                    "bankAccount": "1234567890",
                },
            )
            placed.raise_for_status()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = (await api.get("/lines", headers=headers)).json()["lines"]
            if len([line for line in found if line["status"] == "active"]) >= lines:
                return token
            await asyncio.sleep(0.5)
    raise RuntimeError("the customer's lines were not provisioned in time")


def wrk(url: str, seconds: int, connections: int, token: str | None) -> dict[str, Any]:
    argv = ["wrk", "--latency", "--timeout", "5s", "-t", "2", "-c", str(connections)]
    argv += ["-d", f"{seconds}s", "-H", "Accept-Encoding: gzip"]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    return {**parse_wrk(done.stdout), "wrk_output": done.stdout}


def hey(url: str, rate: int, seconds: int, token: str | None) -> dict[str, Any]:
    workers = 20
    argv = ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", str(max(1, rate // workers))]
    argv += ["-H", "Accept-Encoding: gzip"]
    if token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    output = done.stdout

    def ms_at(percent: int) -> float:
        match = re.search(rf"^\s+{percent}%+ in ([\d.]+) secs", output, re.MULTILINE)
        if match is None:
            raise ValueError(f"hey output has no {percent}% latency:\n{output}")
        return round(float(match[1]) * 1000, 2)

    achieved = re.search(r"Requests/sec:\s+([\d.]+)", output)
    statuses = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", output))
    return {
        "asked_rate": max(1, rate // workers) * workers,
        "achieved_rate": float(achieved[1]) if achieved else 0.0,
        "p50_ms": ms_at(50),
        "p99_ms": ms_at(99),
        "non_2xx": sum(int(n) for status, n in statuses.items() if not status.startswith("2")),
        "hey_output": output,
    }


def main() -> int:
    args = parse_arguments()
    ensure_tool("wrk")
    ensure_tool("hey")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    OUT.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        temp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mvno-bench-portal-")))
        offset = free_offset()
        print(f"starting the platform (ports + {offset})", flush=True)
        platform = start_platform(temp / "platform", offset)

        def stop_platform() -> None:
            platform.send_signal(signal.SIGINT)
            platform.communicate(timeout=90)

        stack.callback(stop_platform)
        socket_folder = temp / "platform" / "postgres"
        url = {c.name: f"http://127.0.0.1:{c.default_port + offset}" for c in ALL}
        asyncio.run(orders_can_sell(socket_folder))
        print(f"buying {args.lines} eSIM lines for {CUSTOMER} through portal-api", flush=True)
        token = asyncio.run(customer_with_lines(url["portal-api"], args.lines))

        processes = ProcessGroup(OUT / f"portal-{stamp}-logs")
        stack.callback(processes.stop_all)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MVNO_")}
        env |= {
            "PYTHONUNBUFFERED": "1",
            "BENCH_DSN": f"postgresql://postgres@/postgres?host={socket_folder}",
            "MVNO_ENVIRONMENT": "development",
            "MVNO_OTEL_EXPORTER": "none",
            "MVNO_DATABASE_URL": f"postgresql+asyncpg://postgres@/mvno_portal_api?host={socket_folder}",
            "MVNO_AWS_ENDPOINT_URL": f"http://127.0.0.1:{4566 + offset}",
            "MVNO_JWT_ISSUER": url["dev-issuer"],
            "MVNO_JWKS_URL": url["dev-issuer"] + "/.well-known/jwks.json",
            "MVNO_ORDERS_URL": url["orders"],
            "MVNO_CATALOG_URL": url["catalog"],
            "MVNO_BILLING_SYNC_URL": url["billing-sync"],
            "MVNO_RATE_LIMIT_PER_IP": "10000000/minute",
            "MVNO_RATE_LIMIT_PER_CUSTOMER": "10000000/minute",
        }
        if args.lines_answers_kept is not None:
            env["MVNO_LINES_ANSWERS_KEPT"] = str(args.lines_answers_kept)
        ports = {"bare": free_port(), "portal": free_port()}
        bare = processes.start("bare", uvicorn_command("bench.apps:bare_app", ports["bare"]), env)
        portal = processes.start(
            "portal", uvicorn_command("mvno.portal_api.app:create_app", ports["portal"]), env
        )
        wait_until_ready(bare, f"http://127.0.0.1:{ports['bare']}/json", timeout=60)
        wait_until_ready(portal, f"http://127.0.0.1:{ports['portal']}/health/ready", timeout=60)
        bare_url = f"http://127.0.0.1:{ports['bare']}/json"
        lines_url = f"http://127.0.0.1:{ports['portal']}/portal/v1/lines"
        sample = httpx.get(lines_url, headers={"Authorization": f"Bearer {token}"}).json()
        assert len(sample["lines"]) == args.lines, sample

        results: dict[str, Any] = {"started": stamp, "machine": machine(), "settings": vars(args)}
        results["load_average_before"] = os.getloadavg()
        for name, target, bearer in (("bare-json", bare_url, None), ("my-lines", lines_url, token)):
            print(f"{name}: full speed", flush=True)
            wrk(target, args.warm_up, args.connections, bearer)
            results[name] = wrk(target, args.seconds, args.connections, bearer)
        for name, target, bearer in (("bare-json", bare_url, None), ("my-lines", lines_url, token)):
            print(f"{name}: {args.rate} req/s", flush=True)
            results[name]["paced"] = hey(target, args.rate, args.seconds, bearer)
        results["load_average_after"] = os.getloadavg()
        results["sample_answer"] = sample

    ratio = results["my-lines"]["requests_per_s"] / results["bare-json"]["requests_per_s"]
    paced = results["my-lines"]["paced"]
    results["ratio_vs_bare"] = round(ratio, 2)
    path = OUT / f"portal-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print()
    print(
        "| target | req/s (wrk, full speed) | p50 ms | p99 ms | non-2xx | at rate: asked/served | p50 ms | p99 ms | non-2xx |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for name in ("bare-json", "my-lines"):
        r, p = results[name], results[name]["paced"]
        print(
            f"| {name} | {r['requests_per_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['non_2xx']} | {p['asked_rate']}/{p['achieved_rate']:.0f} | {p['p50_ms']:.2f} "
            f"| {p['p99_ms']:.2f} | {p['non_2xx']} |"
        )
    print(f"\nmy-lines / bare-json requests/s: {ratio:.2f}x (target >= 0.30)")
    print(f"my-lines p99 at {paced['asked_rate']} req/s: {paced['p99_ms']:.2f} ms (target <= 50)")
    print(f"written to {path.relative_to(ROOT)}")
    errors = sum(
        results[n]["non_2xx"] + results[n]["paced"]["non_2xx"] for n in ("bare-json", "my-lines")
    )
    return 1 if errors or ratio < 0.3 or paced["p99_ms"] > 50 else 0


if __name__ == "__main__":
    sys.exit(main())
