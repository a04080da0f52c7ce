"""portal-api's "my lines" screen under load with the whole platform running, against the bare
JSON GET baseline, in one run.

    .venv/bin/python -m bench.portal [--lines 3] [--customers 20] [--token-choice random]
                                     [--rate 200] [--seconds 20] [--connections 32]
                                     [--lines-answers-kept N]

1. ``mvno-local up`` starts the platform (embedded PostgreSQL, moto, the dev issuer, simulators,
   catalog, orders with its workers, billing-sync, portal-api with its consumer) on shifted ports.
2. ``--customers`` demo customers each buy ``--lines`` eSIM lines through portal-api, for real
   (orders provisions them at the simulators; portal-api's consumer keeps them in its read model).
3. A portal-api replica (``mvno.portal_api.app:create_app``) and the bare app
   (``bench.apps:bare_app``) run under the same uvicorn settings (one worker, uvloop, httptools, no
   access log), on the platform's database and upstreams. The replica's rate limits are lifted
   (one load generator, one customer's token: the limits would answer 429 by design). The replica
   keeps rendered answers as deployed (``MVNO_LINES_ANSWERS_KEPT``'s default) unless
   ``--lines-answers-kept`` says otherwise (0: every view reads the read model, as a customer's
   first view does).
4. wrk drives ``GET /json`` on the bare app and ``GET /portal/v1/lines`` on the replica, each at
   full speed, in ``--rounds`` alternating turns (so that load from outside the bench on these
   shared cores weighs on both alike; requests/s over all turns, p99 the worst turn's); then hey asks each at ``--rate`` requests/s to measure latency
   at that rate. With several customers, wrk picks each request's bearer token at random (or in
   turn, ``--token-choice round-robin``) and the paced rate is shared by up to 10 hey processes,
   each with another customer's token. How many views read the read model is counted from
   PostgreSQL (the portal database's committed transactions while the replica ran: each uncached
   view is one statement in autocommit), so the share of kept answers is measured, not assumed.

Writes ``bench/out/portal-<timestamp>.json``; exits 1 on any non-2xx answer or a missed target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
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
PACED_PROCESSES_AT_MOST = 10
RICA = {
    "idType": "sa_id",
    "idNumber": "8001015009087",
    "fullName": "Thandi Nkosi",
    "address": {"line1": "1 Main Road", "city": "Cape Town", "postalCode": "8001"},
}


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=3, help="lines each customer owns")
    parser.add_argument(
        "--customers", type=int, default=20, help="customers whose tokens the load is spread over"
    )
    parser.add_argument(
        "--token-choice",
        choices=("random", "round-robin"),
        default="random",
        help="how wrk picks each request's customer",
    )
    parser.add_argument("--rate", type=int, default=200, help="paced requests/s for latency")
    parser.add_argument("--seconds", type=int, default=20, help="seconds of each measurement")
    parser.add_argument("--warm-up", type=int, default=3)
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="full-speed measurements alternate bare/my-lines this many times (--seconds split "
        "over them), so load from outside the bench weighs on both alike",
    )
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


def customer_ids(customers: int) -> list[str]:
    return [CUSTOMER] if customers == 1 else [f"{CUSTOMER}-{n:04d}" for n in range(customers)]


async def customers_with_lines(
    portal: str, socket_folder: Path, customers: int, lines: int
) -> list[str]:
    """Sign the demo customers in and buy ``lines`` eSIM lines for each through portal-api (a few
    at a time); their tokens, once portal-api's read model holds every line active."""
    ids = customer_ids(customers)
    at_once = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=portal + "/portal/v1", timeout=60) as api:

        async def sign_in_and_buy(customer_id: str) -> str:
            async with at_once:
                session = await api.post("/demo/session", json={"customerId": customer_id})
                session.raise_for_status()
                token: str = session.json()["accessToken"]
                for attempt in range(lines):
                    placed = await api.post(
                        "/orders",
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Idempotency-Key": f"bench-line-{customer_id}-{attempt}",
                        },
                        json={
                            "kind": "line",
                            "offeringId": "starter-esim",
                            "simKind": "eSIM",
                            "customer": RICA,
                            "bankAccount": "1234567890",
                        },
                    )
                    placed.raise_for_status()
                return token

        tokens = await asyncio.gather(*(sign_in_and_buy(c) for c in ids))
    # Waiting on the read model itself: asking portal-api would spend its per-address limit.
    deadline = time.monotonic() + 120 + 2 * customers * lines
    connection = await asyncpg.connect(
        f"postgresql://postgres@/mvno_portal_api?host={socket_folder}"
    )
    try:
        while time.monotonic() < deadline:
            short = await connection.fetchval(
                "SELECT count(*) FROM unnest($1::text[]) AS c(customer_id) WHERE "
                "(SELECT count(*) FROM subscriptions s WHERE s.customer_id = c.customer_id "
                "AND s.status = 'active') < $2",
                ids,
                lines,
            )
            if short == 0:
                return list(tokens)
            await asyncio.sleep(0.5)
    finally:
        await connection.close()
    raise RuntimeError("the customers' lines were not provisioned in time")


async def read_model_transactions(socket_folder: Path) -> int:
    """Transactions committed in portal-api's database so far (an uncached view is one)."""
    connection = await asyncpg.connect(f"postgresql://postgres@/postgres?host={socket_folder}")
    try:
        await connection.execute("SELECT pg_stat_force_next_flush()")
        count: int = await connection.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = 'mvno_portal_api'"
        )
        return count
    finally:
        await connection.close()


def token_script(tokens: list[str], choice: str, folder: Path) -> Path:
    """A wrk script giving each request one of ``tokens``, at random or in turn per thread."""
    listed = ",\n".join(f'  "{token}"' for token in tokens)
    pick = "tokens[math.random(#tokens)]" if choice == "random" else "tokens[(turn % #tokens) + 1]"
    script = folder / f"tokens-{choice}.lua"
    script.write_text(
        f"local tokens = {{\n{listed}\n}}\n"
        "local turn = 0\n"
        "function setup(thread) thread:set('offset', math.random(#tokens)) end\n"
        "function init(args) turn = offset or 0; math.randomseed(os.time() + turn) end\n"
        "function request()\n"
        "  turn = turn + 1\n"
        f"  local token = {pick}\n"
        "  return wrk.format(nil, nil, {['Accept-Encoding'] = 'gzip', "
        "['Authorization'] = 'Bearer ' .. token})\n"
        "end\n"
    )
    return script


def wrk(
    url: str, seconds: int, connections: int, token: str | None, script: Path | None = None
) -> dict[str, Any]:
    argv = ["wrk", "--latency", "--timeout", "5s", "-t", "2", "-c", str(connections)]
    argv += ["-d", f"{seconds}s", "-H", "Accept-Encoding: gzip"]
    if script is not None:
        argv += ["-s", str(script)]
    elif token:
        argv += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run(
        [*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    return {**parse_wrk(done.stdout), "wrk_output": done.stdout}


def hey(url: str, rate: int, seconds: int, tokens: list[str | None]) -> dict[str, Any]:
    """Latency at ``rate`` requests/s: 20 workers in all, shared by one hey process per token
    (at most 10, the tokens spread over the customers), response times pooled."""
    picked = tokens[:: max(1, len(tokens) // PACED_PROCESSES_AT_MOST)][:PACED_PROCESSES_AT_MOST]
    workers = max(1, 20 // len(picked))
    per_worker = max(1, rate // (workers * len(picked)))
    running = []
    for token in picked:
        argv = ["hey", "-z", f"{seconds}s", "-c", str(workers), "-q", str(per_worker)]
        argv += ["-H", "Accept-Encoding: gzip", "-o", "csv"]
        if token:
            argv += ["-H", f"Authorization: Bearer {token}"]
        running.append(
            subprocess.Popen(
                [*argv, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    times: list[float] = []
    statuses: dict[str, int] = {}
    for process in running:
        output, errors = process.communicate(timeout=seconds + 60)
        if process.returncode != 0:
            raise RuntimeError(f"hey failed: {errors}")
        for row in output.splitlines()[1:]:
            fields = row.split(",")
            if len(fields) < 8:
                continue
            times.append(float(fields[0]))
            statuses[fields[6]] = statuses.get(fields[6], 0) + 1
    if not times:
        raise ValueError("hey answered nothing")
    times.sort()

    def ms_at(percent: int) -> float:
        return round(times[min(len(times) - 1, len(times) * percent // 100)] * 1000, 2)

    return {
        "asked_rate": per_worker * workers * len(picked),
        "achieved_rate": round(len(times) / seconds, 1),
        "requests": len(times),
        "p50_ms": ms_at(50),
        "p99_ms": ms_at(99),
        "non_2xx": sum(n for status, n in statuses.items() if not status.startswith("2")),
        "customers": len(picked),
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
        print(
            f"buying {args.lines} eSIM lines for each of {args.customers} customers through "
            "portal-api",
            flush=True,
        )
        tokens = asyncio.run(
            customers_with_lines(url["portal-api"], socket_folder, args.customers, args.lines)
        )
        token = tokens[0]
        script = token_script(tokens, args.token_choice, temp) if len(tokens) > 1 else None

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
        transactions_before = asyncio.run(read_model_transactions(socket_folder))
        views = 1  # the sample above
        targets = (
            ("bare-json", bare_url, None, None),
            ("my-lines", lines_url, token, script),
        )
        for name, target, bearer, lua in targets:
            print(f"{name}: warm-up", flush=True)
            warm = wrk(target, args.warm_up, args.connections, bearer, lua)
            if name == "my-lines":
                views += warm["requests"]
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in targets}
        each = max(1, round(args.seconds / max(1, args.rounds)))
        for turn in range(max(1, args.rounds)):
            for name, target, bearer, lua in targets:
                print(f"{name}: full speed, round {turn + 1} ({each} s)", flush=True)
                rounds[name].append(wrk(target, each, args.connections, bearer, lua))
        for name, measured in rounds.items():
            results[name] = {
                "requests_per_s": round(
                    sum(r["requests"] for r in measured) / (each * len(measured)), 1
                ),
                "requests": sum(r["requests"] for r in measured),
                "p50_ms": sorted(r["p50_ms"] for r in measured)[len(measured) // 2],
                "p99_ms": max(r["p99_ms"] for r in measured),
                "non_2xx": sum(r["non_2xx"] for r in measured),
                "rounds": measured,
            }
        views += results["my-lines"]["requests"]
        anonymous: list[str | None] = [None]
        customers: list[str | None] = list(tokens)
        for name, target, bearers in (
            ("bare-json", bare_url, anonymous),
            ("my-lines", lines_url, customers),
        ):
            print(f"{name}: {args.rate} req/s", flush=True)
            results[name]["paced"] = hey(target, args.rate, args.seconds, bearers)
        views += results["my-lines"]["paced"]["requests"]
        results["load_average_after"] = os.getloadavg()
        processes.stop(portal)  # its connections close: PostgreSQL's counts are complete
        reads = asyncio.run(read_model_transactions(socket_folder)) - transactions_before
        results["my-lines"]["views"] = views
        results["my-lines"]["read_model_transactions"] = reads
        results["my-lines"]["kept_share"] = round(max(0.0, 1 - reads / views), 4)
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
    mine = results["my-lines"]
    print(
        f"\n{args.customers} customer(s), {args.lines} lines each; kept answers: "
        f"{args.lines_answers_kept if args.lines_answers_kept is not None else 'as deployed'}; "
        f"views answered from a kept answer: {mine['kept_share']:.1%} "
        f"({mine['read_model_transactions']:,} read-model transactions for {mine['views']:,} views)"
    )
    print(f"my-lines / bare-json requests/s: {ratio:.2f}x (target >= 0.30)")
    print(f"my-lines p99 at {paced['asked_rate']} req/s: {paced['p99_ms']:.2f} ms (target <= 50)")
    print(f"written to {path.relative_to(ROOT)}")
    errors = sum(
        results[n]["non_2xx"] + results[n]["paced"]["non_2xx"] for n in ("bare-json", "my-lines")
    )
    return 1 if errors or ratio < 0.3 or paced["p99_ms"] > 50 else 0


if __name__ == "__main__":
    sys.exit(main())
