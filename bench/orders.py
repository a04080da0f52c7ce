"""Orders under load, against the bare baseline, in one run.

    .venv/bin/python -m bench.orders [--rate 10] [--seconds 60] [--intake-seconds 10]
        [--only intake | --only tracing-cost]

- end to end: ``--rate`` new eSIM lines a second for ``--seconds`` through the orders API, two
  provisioning workers and the partner simulators, each its own process; latency from the
  order's acceptance to its ``completed`` event, nothing lost, and the CPU the platform's own
  processes (orders API, workers) spent per completed order, and where the time goes (each saga
  event's write, relay and take-in, from the outbox and inbox). A stand-in answers for
  billing-sync (a billing account per activated line), as in the service tests.
- intake: wrk POSTs orders as fast as they are accepted (each with its own Idempotency-Key),
  against the bare app's single-row INSERT (``bench.apps:bare_app``). The provisioning workers,
  which relay the orders' outbox as deployed, are stopped, so nothing else runs on the cores
  during either target: a relay publishing into moto there would have moto (the stand-in for
  SNS, which runs on AWS's machines in production) compete with the API for the cores. Then a
  relay process (``bench/orders_relay.py``) publishes what the intake wrote for
  ``--drain-seconds``, and its CPU per event (and moto's) is reported apart.
  ``--api-relays`` runs the API with its own relay instead, publishing during the intake.
- tracing cost (``--only tracing-cost``): the end-to-end run with tracing off, then the API and
  workers restarted with every trace recorded and exported, and their metrics exported, over
  OTLP/HTTP to the local platform's trace receiver (``mvno.devstack.traces``) as its own process;
  the platform's CPU per order with tracing on against off (target: at most 1.3x, p99 <= 3 s).

PostgreSQL: ``DATABASE_URL`` when set, else an embedded server; moto's server as its own process.
Writes ``bench/out/orders-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench.run import ensure_tool, parse_wrk, prepare_database
from mvno.common.auth.dev_issuer import DevIssuer
from mvno.common.aws import aws_client
from mvno.common.bus.envelope import decode, new_event
from mvno.common.bus.provision import provision
from mvno.common.bus.topology import Queue, Subscription, Topic, Topology
from mvno.common.crypto import ensure_kms_alias
from mvno.common.db import asyncpg_dsn, create_engine, unit_of_work_factory
from mvno.common.events.base import Money
from mvno.common.events.billing import AccountCreated
from mvno.common.events.catalog import OfferingLaunched, OfferingPrice
from mvno.devstack.infrastructure import (
    embedded_postgres,
    free_port,
    moto_endpoint,
    to_asyncpg_url,
    with_database,
)
from mvno.devstack.processes import ProcessGroup, wait_until_ready
from mvno.orders.consumer import HANDLERS, account_created
from mvno.orders.settings import OrdersSettings
from mvno.orders.unit_of_work import OrdersUnitOfWork

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
PREFIX = "/tmf-api/productOrderingManagement/v4"
ORDER = {
    "channel": [{"id": "app"}],
    "relatedParty": [{"id": "cust-bench"}],
    "customer": {
        "idType": "sa_id",
        "idNumber": "8001015009087",
        "fullName": "Sipho Ndlovu",
        "address": {"line1": "1 Church Street", "city": "Pretoria", "postalCode": "0002"},
    },
    "payment": [{"id": "5005005005"}],
    "productOrderItem": [
        {"id": "1", "action": "add", "productOffering": {"id": "starter-esim"}, "simKind": "eSIM"}
    ],
}


def topology(prefix: str) -> Topology:
    """Orders' topic, its provisioning queue, and the queues the bench reads."""
    queues = ("orders-provisioning", "activations", "progress")
    return Topology(
        topics=(Topic("orders", f"{prefix}-orders-events"),),
        queues=tuple(
            Queue(name, f"{prefix}-{name}-events", f"{prefix}-{name}-events-dlq") for name in queues
        ),
        subscriptions=(
            Subscription("orders", "orders-provisioning", type_prefixes=("orders.provisioning.",)),
            Subscription("orders", "activations", type_prefixes=("orders.subscription.",)),
            Subscription("orders", "progress", type_prefixes=("orders.order.",)),
        ),
    )


async def prepare_orders(settings: OrdersSettings) -> None:
    """Migrate, create the KMS key, and give the catalogue copy an eSIM starter pack."""
    env = {**os.environ, "MVNO_ENVIRONMENT": "test", "MVNO_DATABASE_URL": settings.database_url}
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "mvno.orders", "migrate"],
        env=env,
        check=True,
        capture_output=True,
    )
    async with aws_client(settings, "kms") as kms:
        await ensure_kms_alias(kms, settings.personal_data_kms_key, "bench")
    launched = OfferingLaunched(
        offering_id="starter-esim", version="1", name="Prepaid eSIM starter pack",
        channels=("app",), payment_type="prepaid", product_kind="starter_pack",
        sim_kinds=("eSIM",), valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        prices=(
            OfferingPrice(
                price_id="p-esim", price_type="oneTime", duty_free_amount=Money(amount="8.70"),
                tax_included_amount=Money(amount="10.00"), tax_rate="15",
                valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            ),
        ),
    )  # fmt: skip
    engine = create_engine(settings)
    try:
        event = decode(new_event(launched, source="urn:mvno:catalog").body)
        units = unit_of_work_factory(engine, source="urn:mvno:orders", kind=OrdersUnitOfWork)
        async with units() as uow:
            await HANDLERS[event.type](uow, event)
            await uow.commit()
    finally:
        await engine.dispose()


async def billing_stand_in(
    settings: OrdersSettings, sqs: Any, url: str, stop: asyncio.Event
) -> None:
    engine = create_engine(settings)
    unit_of_work = unit_of_work_factory(
        engine, source="urn:mvno:billing-sync", kind=OrdersUnitOfWork
    )
    try:
        while not stop.is_set():
            answer = await sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            entries = []
            for message in answer.get("Messages", []):
                event = json.loads(message["Body"])
                if event["type"] == "orders.subscription.activated.v1":
                    data = event["data"]
                    created = AccountCreated(
                        billing_account_id=f"ba-{data['subscription_id'][:8]}",
                        subscription_id=data["subscription_id"],
                        customer_id=data["customer_id"],
                        order_id=data["order_id"],
                    )
                    async with unit_of_work() as uow:
                        await account_created(
                            uow, decode(new_event(created, source="urn:mvno:billing-sync").body)
                        )
                        await uow.commit()
                entries.append({"Id": str(len(entries)), "ReceiptHandle": message["ReceiptHandle"]})
            if entries:
                await sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    finally:
        await engine.dispose()


async def completions(sqs: Any, url: str, done: dict[str, datetime], stop: asyncio.Event) -> None:
    """When each order completed: the time of its ``completed`` state change."""
    while not stop.is_set():
        answer = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        entries = []
        for message in answer.get("Messages", []):
            event = json.loads(message["Body"])
            if event["data"].get("state") in ("completed", "failed"):
                done[event["data"]["order_id"]] = datetime.fromisoformat(event["time"])
                if event["data"]["state"] == "failed":
                    done.setdefault("__failed__", []).append(event["data"]["order_id"])  # type: ignore[attr-defined]
            entries.append({"Id": str(len(entries)), "ReceiptHandle": message["ReceiptHandle"]})
        if entries:
            await sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process on this machine, by pid (the server's backends
    serve both apps; a backend that exits during a run takes its share with it)."""
    found = {}
    for process in psutil.process_iter(["name"]):
        if process.info["name"] and process.info["name"].startswith("postgres"):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                found[process.pid] = times.user + times.system
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def end_to_end(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    settings: OrdersSettings = ctx["settings"]
    api_url = ctx["api_url"]
    accepted: dict[str, datetime] = {}
    done: dict[str, Any] = {}
    stop = asyncio.Event()
    async with (
        aws_client(settings, "sqs") as sqs,
        httpx.AsyncClient(base_url=api_url + PREFIX, timeout=30, headers=ctx["headers"]) as api,
    ):
        tasks = [
            asyncio.create_task(
                billing_stand_in(settings, sqs, ctx["queues"]["activations"], stop)
            ),
            asyncio.create_task(completions(sqs, ctx["queues"]["progress"], done, stop)),
        ]
        platform = ctx["platform_processes"]
        idle_before = cpu_seconds(platform)
        await asyncio.sleep(args.idle_seconds)
        idle_ms_per_s = (cpu_seconds(platform) - idle_before) * 1000 / max(args.idle_seconds, 1e-9)
        cpu_before = cpu_seconds(platform)
        each_before = [cpu_seconds([p]) for p in platform]
        others_before = {name: cpu_seconds([p]) for name, p in ctx["other_processes"].items()}

        async def place() -> None:
            response = await api.post(
                "/productOrder", json=ORDER, headers={"Idempotency-Key": str(uuid.uuid4())}
            )
            if response.status_code == 201:
                body = response.json()
                accepted[body["id"]] = datetime.fromisoformat(body["orderDate"])
            else:
                print(f"refused: {response.status_code} {response.text[:200]}", flush=True)

        interval = 1 / args.rate
        started = time.monotonic()
        placing = []
        for n in range(int(args.rate * args.seconds)):
            await asyncio.sleep(max(0.0, started + n * interval - time.monotonic()))
            placing.append(asyncio.create_task(place()))
        await asyncio.gather(*placing)
        for _ in range(300):  # up to a minute for the last orders to complete
            if set(accepted) <= set(done):
                break
            await asyncio.sleep(0.2)
        cpu_after = cpu_seconds(platform)
        each_after = [cpu_seconds([p]) for p in platform]
        others_after = {name: cpu_seconds([p]) for name, p in ctx["other_processes"].items()}
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    failed = set(done.pop("__failed__", []))
    latencies = [
        (done[order_id] - at).total_seconds()
        for order_id, at in accepted.items()
        if order_id in done and order_id not in failed
    ]
    completed = len(latencies)
    return {
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "placed": int(args.rate * args.seconds),
        "accepted": len(accepted),
        "completed": completed,
        "failed": len(failed),
        "lost": len(set(accepted) - set(done)),
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p99_s": round(percentile(latencies, 0.99), 3) if latencies else None,
        "max_s": round(max(latencies), 3) if latencies else None,
        "platform_cpu_ms_per_order": round((cpu_after - cpu_before) * 1000 / max(completed, 1), 1),
        "platform_idle_cpu_ms_per_s": round(idle_ms_per_s, 1),
        "platform_cpu_ms_per_order_by_process": {
            name: round((after - before) * 1000 / max(completed, 1), 1)
            for name, before, after in zip(
                ctx["platform_names"], each_before, each_after, strict=True
            )
        },
        "other_cpu_ms_per_order": {
            name: round((others_after[name] - others_before[name]) * 1000 / max(completed, 1), 1)
            for name in others_after
        },
    }


STAGES = """
with events as (
  select seq, event_id, event_type, created_at, published_at,
         (body::jsonb)->'data'->>'order_id' as order_id,
         coalesce((body::jsonb)->'data'->>'state', '') as state
  from outbox where event_type like 'orders.%' and created_at >= $1
), completed as (
  select order_id, min(created_at) as accepted_at from events
  group by order_id having bool_or(state = 'completed')
)
select e.order_id, row_number() over (partition by e.order_id order by e.seq) as position,
       e.event_type || coalesce(nullif(':' || e.state, ':'), '') as event,
       extract(epoch from e.created_at - c.accepted_at) as written,
       extract(epoch from e.published_at - e.created_at) as relayed,
       extract(epoch from i.processed_at - e.published_at) as consumed
from events e join completed c using (order_id)
left join inbox i on i.event_id = e.event_id
"""


async def stages(settings: OrdersSettings, since: datetime) -> list[dict[str, Any]]:
    """Where an order's time goes: per event of the saga (in order), the median of when it was
    written (from the order's first event), how long the relay took to publish it, and how long
    the provisioning worker took to take it in, in ms; read from the outbox and inbox of the
    orders that completed."""
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        rows = await connection.fetch(STAGES, since)
    finally:
        await connection.close()
    orders = len({row["order_id"] for row in rows})
    grouped: dict[tuple[int, str], dict[str, list[float]]] = {}
    for row in rows:
        slot = grouped.setdefault((row["position"], row["event"]), {})
        for key in ("written", "relayed", "consumed"):
            if row[key] is not None:
                slot.setdefault(key, []).append(float(row[key]) * 1000)
    return [
        {
            "position": position,
            "event": event,
            "orders": len(values.get("written", [])),
            **{f"{key}_ms_p50": round(statistics.median(v)) for key, v in values.items() if v},
        }
        for (position, event), values in sorted(grouped.items())
        if len(values.get("written", [])) * 10 >= orders  # rare paths (retries) left out
    ]


def intake(args: argparse.Namespace, ctx: dict[str, Any], wrk: str) -> dict[str, Any]:
    env = {**os.environ, "BENCH_TOKEN": ctx["token"], "BENCH_BODY": json.dumps(ORDER)}
    results = {}
    for name, url, script, server in (
        (
            "bare-insert",
            ctx["bare_url"] + "/rows",
            ROOT / "bench" / "post.lua",
            ctx["bare_process"],
        ),
        (
            "orders-intake",
            ctx["api_url"] + PREFIX + "/productOrder",
            ROOT / "bench" / "orders.lua",
            ctx["api_process"],
        ),
    ):
        argv = [
            wrk,
            "--latency",
            "--timeout",
            "5s",
            "-t",
            "2",
            "-c",
            str(args.connections),
            "-s",
            str(script),
        ]
        subprocess.run(
            [*argv, "-d", "3s", url], env=env, capture_output=True, check=True
        )  # warm-up
        cpu_before = cpu_seconds([server])
        moto_cpu_before = cpu_seconds([ctx["other_processes"]["moto"]])
        postgres_before = postgres_cpu()
        output = subprocess.run(
            [*argv, "-d", f"{args.intake_seconds}s", url],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cpu = cpu_seconds([server]) - cpu_before
        moto_cpu = cpu_seconds([ctx["other_processes"]["moto"]]) - moto_cpu_before
        postgres_after = postgres_cpu()
        postgres = sum(t - postgres_before.get(pid, 0.0) for pid, t in postgres_after.items())
        results[name] = dict(parse_wrk(output).items())
        requests = max(results[name]["requests"], 1)
        # The server's own CPU per request: less swayed than req/s by what else the cores run.
        results[name]["server_cpu_ms_per_request"] = round(cpu * 1000 / requests, 3)
        # PostgreSQL's, for the same requests: the other half of what the two cores do.
        results[name]["postgres_cpu_ms_per_request"] = round(postgres * 1000 / requests, 3)
        # moto, the stand-in for SNS, busy on the same cores (with --api-relays).
        results[name]["moto_cpu_share_of_a_core"] = round(moto_cpu / args.intake_seconds, 2)
        print(
            f"{name}: {results[name]['requests_per_s']:.0f} req/s, p99 {results[name]['p99_ms']} ms,"
            f" server CPU {results[name]['server_cpu_ms_per_request']} ms/request,"
            f" PostgreSQL {results[name]['postgres_cpu_ms_per_request']} ms/request,"
            f" moto {results[name]['moto_cpu_share_of_a_core']} of a core",
            flush=True,
        )
    results["orders-intake"]["outbox"] = asyncio.run(outbox_counts(ctx["settings"]))
    print(f"orders' outbox after the intake: {results['orders-intake']['outbox']}", flush=True)
    results["ratio"] = round(
        results["orders-intake"]["requests_per_s"] / results["bare-insert"]["requests_per_s"], 2
    )
    if not args.api_relays:
        results["relay"] = relay_drain(args, ctx)
    return results


def relay_drain(args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    """The relay's cost per event, apart from the intake: a relay process (standing in for the
    provisioning workers', which relay as deployed) publishes what the intake left in the outbox
    for ``--drain-seconds``; its CPU, and moto's, per event published."""
    relay = ctx["start_relay"]()
    process = psutil.Process(relay.process.pid)
    time.sleep(3)  # its start-up (imports, connections) is no part of its cost per event
    moto = ctx["other_processes"]["moto"]
    before = asyncio.run(outbox_counts(ctx["settings"]))
    relay_before, moto_before = cpu_seconds([process]), cpu_seconds([moto])
    time.sleep(args.drain_seconds)
    relay_cpu = cpu_seconds([process]) - relay_before
    moto_cpu = cpu_seconds([moto]) - moto_before
    after = asyncio.run(outbox_counts(ctx["settings"]))
    ctx["stop_relay"](relay)
    published = before["unpublished"] - after["unpublished"]
    drained = {
        "seconds": args.drain_seconds,
        "events_published": published,
        "relay_cpu_ms_per_event": round(relay_cpu * 1000 / max(published, 1), 3),
        "moto_cpu_ms_per_event": round(moto_cpu * 1000 / max(published, 1), 3),
    }
    print(f"relay, draining the intake's outbox: {drained}", flush=True)
    return drained


async def outbox_counts(settings: OrdersSettings) -> dict[str, int]:
    """The orders' outbox rows, and how many of them are not published yet."""
    connection = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        row = await connection.fetchrow(
            "SELECT count(*) AS events, count(*) FILTER (WHERE published_at IS NULL) AS unpublished"
            " FROM outbox"
        )
    finally:
        await connection.close()
    return dict(row)


async def prepare(settings: OrdersSettings, bare_url: str) -> dict[str, str]:
    await prepare_orders(settings)
    await prepare_database(bare_url)
    provisioned = await provision(settings, topology(settings.bus_prefix))
    return dict(provisioned.queue_urls)


def platform_of(api: Any, workers: list[Any]) -> dict[str, Any]:
    """The processes whose CPU counts as the platform's."""
    return {
        "platform_processes": [psutil.Process(c.process.pid) for c in (api, *workers)],
        "platform_names": [c.name for c in (api, *workers)],
        "api_process": psutil.Process(api.process.pid),
    }


def traced_environment(env: dict[str, str], receiver: str) -> dict[str, str]:
    """Every trace recorded and exported, and metrics exported, over OTLP/HTTP to ``receiver``
    (with a span per SQL statement when the caller sets ``MVNO_OTEL_DATABASE_SPANS=true``)."""
    return {
        **env,
        "MVNO_OTEL_EXPORTER": "otlp",
        "MVNO_OTEL_EXPORTER_OTLP_ENDPOINT": receiver,
        "MVNO_OTEL_SAMPLE_RATIO": "1.0",
        **{k: v for k, v in os.environ.items() if k == "MVNO_OTEL_DATABASE_SPANS"},
    }


def tracing_cost(
    args: argparse.Namespace,
    ctx: dict[str, Any],
    restart: Any,
) -> dict[str, Any]:
    """The end-to-end run with tracing off, then the same with tracing at 100 %: the platform's
    CPU per order with tracing on stays within 1.3x of the run without it."""
    print(f"end to end, tracing off: {args.rate} orders/s for {args.seconds} s ...", flush=True)
    since = datetime.now(UTC)
    off = asyncio.run(end_to_end(args, ctx))
    off["stages"] = asyncio.run(stages(ctx["settings"], since))
    print(json.dumps(off, indent=2), flush=True)
    ctx.update(restart())
    print(f"end to end, tracing on: {args.rate} orders/s for {args.seconds} s ...", flush=True)
    since = datetime.now(UTC)
    on = asyncio.run(end_to_end(args, ctx))
    on["stages"] = asyncio.run(stages(ctx["settings"], since))
    on["spans_stored"] = ctx["spans_stored"]()
    print(json.dumps(on, indent=2), flush=True)
    ratio = on["platform_cpu_ms_per_order"] / max(off["platform_cpu_ms_per_order"], 1e-9)
    return {"tracing_off": off, "tracing_on": on, "cpu_ratio_on_to_off": round(ratio, 2)}


def report_tracing_cost(cost: dict[str, Any], load_before: tuple[float, ...]) -> int:
    cost["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    cost["machine"] = {
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(cost, indent=2))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"orders-tracing-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(
        json.dumps(cost, indent=2) + "\n"
    )
    on = cost["tracing_on"]
    met = (
        on["lost"] == 0
        and (on["p99_s"] or 99) <= 3
        and cost["cpu_ratio_on_to_off"] <= 1.3
        and on["spans_stored"]["total"] > 0
    )
    print(
        "targets (tracing at 100 %: none lost, p99 <= 3 s, platform CPU per order <= 1.3x of "
        f"tracing off, spans received): {'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--intake-seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=5,
        help="first measure the platform's CPU with no orders for this long (its background cost)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--only",
        choices=("intake", "tracing-cost"),
        help=(
            "run only this part (intake: no end-to-end run, no provisioning workers; "
            "tracing-cost: the end-to-end run with tracing off, then again with every trace "
            "recorded and exported, and metrics exported, to a local OTLP receiver)"
        ),
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=10,
        help="after the intake, how long a relay process publishes its events (its cost per event)",
    )
    parser.add_argument(
        "--api-relays",
        action="store_true",
        help="the orders API relays its outbox itself (MVNO_RELAY_ENABLED=true; off as deployed)",
    )
    parser.add_argument(
        "--sample-ratio",
        type=float,
        default=1.0,
        help=(
            "share of traces recorded (MVNO_OTEL_SAMPLE_RATIO); spans are exported only in the "
            "traced half of --only tracing-cost"
        ),
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    wrk = ensure_tool("wrk")
    with contextlib.ExitStack() as stack:
        temp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mvno-orders-bench-")))
        server = (
            to_asyncpg_url(url)
            if (url := os.environ.get("DATABASE_URL"))
            else stack.enter_context(embedded_postgres(temp / "pg"))
        )
        processes = ProcessGroup(temp / "logs")
        stack.callback(processes.stop_all)
        aws = stack.enter_context(moto_endpoint(processes, free_port()))
        database = with_database(server, f"mvno_bench_orders_{uuid.uuid4().hex[:6]}")
        bare_db = with_database(server, "mvno_bench")
        issuer_port, simulators_port, api_port, bare_port = (free_port() for _ in range(4))
        issuer_url = f"http://127.0.0.1:{issuer_port}"
        key_file = temp / "issuer-keys.json"
        settings = OrdersSettings(environment="test", database_url=database, aws_endpoint_url=aws)
        queues = asyncio.run(prepare(settings, bare_db))
        base = {
            k: v for k, v in os.environ.items() if not k.startswith("MVNO_") and k != "DATABASE_URL"
        }
        env = {
            **base,
            "MVNO_ENVIRONMENT": "test",
            "MVNO_DATABASE_URL": database,
            "MVNO_AWS_ENDPOINT_URL": aws,
            "MVNO_OTEL_EXPORTER": "none",
            "MVNO_OTEL_SAMPLE_RATIO": str(args.sample_ratio),
            "MVNO_JWT_ISSUER": issuer_url,
            "MVNO_JWKS_URL": issuer_url + "/.well-known/jwks.json",
            "MVNO_NETWORK_OPERATOR_URL": f"http://127.0.0.1:{simulators_port}/mno/v1",
            "MVNO_PAYMENTS_URL": f"http://127.0.0.1:{simulators_port}/payments/v1",
            "BENCH_DSN": asyncpg_dsn(bare_db),
            "MVNO_RELAY_ENABLED": str(args.api_relays).lower(),
        }
        issuer = processes.start(
            "issuer",
            [
                sys.executable,
                "-m",
                "mvno.common.auth.dev_issuer",
                "--port",
                str(issuer_port),
                "--key-file",
                str(key_file),
            ],
            env,
        )
        simulators = processes.start(
            "simulators",
            [sys.executable, "-m", "mvno.simulators", "serve", "--port", str(simulators_port)],
            env,
        )

        def start_orders(env: dict[str, str]) -> tuple[Any, list[Any]]:
            """The platform's own processes: the orders API and its provisioning workers."""
            api = processes.start(
                "orders",
                [sys.executable, "-m", "mvno.orders", "serve", "--port", str(api_port)],
                env,
            )
            workers = [
                processes.start(
                    f"worker-{n}", [sys.executable, "-m", "mvno.orders", "provision"], env
                )
                for n in range(0 if args.only == "intake" else args.workers)
            ]
            wait_until_ready(api, f"http://127.0.0.1:{api_port}/health/ready", timeout=60)
            time.sleep(2)  # the workers find their queue
            return api, workers

        bare = processes.start(
            "bare",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.apps:bare_app",
                "--factory",
                "--app-dir",
                str(ROOT),
                "--port",
                str(bare_port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
            ],
            env,
        )
        wait_until_ready(issuer, issuer_url + "/health/live", timeout=60)
        wait_until_ready(simulators, f"http://127.0.0.1:{simulators_port}/health/ready", timeout=60)
        wait_until_ready(bare, f"http://127.0.0.1:{bare_port}/json", timeout=60)
        api, workers = start_orders(env)
        token = DevIssuer(issuer_url, key_file=key_file).issue(
            "bank-app", audience="mvno-platform", scopes=["orders:write"], client_id="bank-app"
        )
        ctx = {
            "settings": settings,
            "api_url": f"http://127.0.0.1:{api_port}",
            "bare_url": f"http://127.0.0.1:{bare_port}",
            "token": token,
            "headers": {"Authorization": f"Bearer {token}"},
            "queues": queues,
            **platform_of(api, workers),
            "bare_process": psutil.Process(bare.process.pid),
            "other_processes": {
                "simulators": psutil.Process(simulators.process.pid),
                "moto": next(
                    psutil.Process(c.process.pid)
                    for c in processes._children
                    if c.name.startswith("moto")
                ),
            },
        }
        if args.only == "tracing-cost":
            receiver_port = free_port()
            receiver_url = f"http://127.0.0.1:{receiver_port}"
            store = temp / "traces.sqlite3"
            receiver = processes.start(
                "traces",
                [sys.executable, "-m", "mvno.devstack.traces", "serve",
                 "--store", str(store), "--port", str(receiver_port)],
                env,
            )  # fmt: skip
            wait_until_ready(receiver, receiver_url + "/health/live", timeout=30)
            ctx["other_processes"]["trace-receiver"] = psutil.Process(receiver.process.pid)

            def restart_traced() -> dict[str, Any]:
                for child in (api, *workers):
                    processes.stop(child)
                # A stopped worker's long poll (up to 20 s) goes on at moto, which hands the
                # next messages to it: they would wait out their visibility timeout.
                time.sleep(21)
                return platform_of(*start_orders(traced_environment(env, receiver_url)))

            def spans_stored() -> dict[str, Any]:
                """The spans received, and the most frequent by service and name."""
                with contextlib.closing(sqlite3.connect(store)) as db:
                    total = int(db.execute("SELECT count(*) FROM spans").fetchone()[0])
                    frequent = db.execute(
                        "SELECT service, name, count(*) FROM spans GROUP BY 1, 2"
                        " ORDER BY 3 DESC LIMIT 20"
                    ).fetchall()
                return {"total": total, "most_frequent": [list(row) for row in frequent]}

            ctx["spans_stored"] = spans_stored
            cost = tracing_cost(args, ctx, restart_traced)
            return report_tracing_cost(cost, load_before)
        e2e: dict[str, Any] | None = None
        if args.only is None:
            print(f"end to end: {args.rate} orders/s for {args.seconds} s ...", flush=True)
            since = datetime.now(UTC)
            e2e = asyncio.run(end_to_end(args, ctx))
            e2e["stages"] = asyncio.run(stages(settings, since))
            print(json.dumps(e2e, indent=2), flush=True)
        for worker in workers:
            processes.stop(worker)
        # The workers relay the API's outbox as deployed; stopped, a relay of its own stands in
        # for them after the intake (unless the API relays itself: --api-relays).
        ctx["start_relay"] = lambda: processes.start(
            "relay", [sys.executable, str(ROOT / "bench" / "orders_relay.py")], env
        )
        ctx["stop_relay"] = processes.stop
        print(f"intake (API pid {api.process.pid}) ...", flush=True)
        results = {"end_to_end": e2e, "intake": intake(args, ctx, wrk)}
    results["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["sample_ratio"] = args.sample_ratio
    results["machine"] = {
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(results, indent=2))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"orders-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(
        json.dumps(results, indent=2) + "\n"
    )
    if e2e is None:
        met = results["intake"]["ratio"] >= 0.4
        print(f"target (intake >= 0.4 of bare insert): {'met' if met else 'NOT met'}")
        return 0 if met else 1
    met = (
        results["intake"]["ratio"] >= 0.4
        and e2e["lost"] == 0
        and (e2e["p50_s"] or 99) <= 1
        and (e2e["p99_s"] or 99) <= 3
        and e2e["platform_cpu_ms_per_order"] <= 30
    )
    print(
        f"targets (intake >= 0.4 of bare insert; p50 <= 1 s, p99 <= 3 s, none lost; <= 30 CPU ms/order): {'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
