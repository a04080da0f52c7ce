"""Usage-file ingestion: billing-sync's whole path against a bare COPY of the same file, in one run.

    .venv/bin/python bench/usage.py [--records 1000000] [--lines 1000]

- project: ``mvno.billing_sync.usage_files.ingest_file`` on a usage file in S3 (moto): streamed,
  every record validated, bad ones quarantined, COPY to staging, deduplicated into
  ``usage_records`` (primary key on the record id), aggregated per line and day, buckets and
  airtime updated, daily usage upserted, one ``billing.usage.recorded`` outbox row per line; one
  transaction. ``--lines`` subscriptions each hold a data bundle and airtime, so balances move.
- bare: the same object streamed the same way, split with the csv module, the quantity and time
  converted, and ``COPY``'d with asyncpg into an unindexed table: the floor for this transport.

Each runs in its own child process, which reports its wall time and its peak RSS
(``VmHWM``, imports included). The file holds 0.5% invalid records (quarantined by the
project, skipped by the bare run). PostgreSQL: ``DATABASE_URL`` when set, else an embedded server.
Writes ``bench/out/usage-<timestamp>.json``; exits 1 unless the targets are met
(>= 20,000 records/s, peak RSS <= 200 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
BUCKET = "mvno-usage-bench"
KEY = "usage/bench.csv"
BARE_TABLE = (
    "CREATE UNLOGGED TABLE IF NOT EXISTS bare_usage (record_id text, msisdn text, "
    "usage_type text, quantity bigint, started_at timestamptz)"
)


def settings_for(database_url: str, aws_url: str) -> Any:
    from mvno.billing_sync.settings import BillingSyncSettings

    return BillingSyncSettings(
        environment="test",
        database_url=database_url,
        aws_endpoint_url=aws_url,
        usage_bucket=BUCKET,
        usage_files_queue="mvno-usage-bench-files",
    )


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``: Linux carries that over from
    the parent across fork and exec, so a child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


# --- the children ------------------------------------------------------------------------------


async def child_project(database_url: str, aws_url: str) -> dict[str, Any]:
    from mvno.billing_sync.usage_files import ingest_file
    from mvno.billing_sync.worker import units_of_work
    from mvno.common.aws import aws_client
    from mvno.common.db import create_engine
    from mvno.common.logs import configure_logging

    settings = settings_for(database_url, aws_url)
    configure_logging("billing-sync", "INFO")
    engine = create_engine(settings)
    try:
        async with aws_client(settings, "s3") as s3:
            started = time.perf_counter()
            result = await ingest_file(
                units_of_work(engine, settings),
                s3,
                bucket=BUCKET,
                key=KEY,
                slice_rows=settings.usage_batch_rows,
            )
            seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    assert result is not None
    return {
        "seconds": seconds,
        "lines": result.lines,
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "quarantined": result.quarantined,
        "subscriptions": result.subscriptions,
    }


async def child_bare(database_url: str, aws_url: str) -> dict[str, Any]:
    import codecs
    import csv

    import asyncpg

    from mvno.common.aws import aws_client
    from mvno.common.db import asyncpg_dsn

    settings = settings_for(database_url, aws_url)
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    copied = 0
    try:
        await connection.execute(BARE_TABLE)
        await connection.execute("TRUNCATE bare_usage")
        async with aws_client(settings, "s3") as s3:
            started = time.perf_counter()
            body = (await s3.get_object(Bucket=BUCKET, Key=KEY))["Body"]
            decoder = codecs.getincrementaldecoder("utf-8")()
            rest, rows, header = "", [], True
            async with connection.transaction():
                async for chunk in body.iter_chunks(1 << 20):
                    lines = (rest + decoder.decode(chunk)).split("\n")
                    rest = lines.pop()
                    for fields in csv.reader(lines):
                        if header:
                            header = False
                            continue
                        try:
                            rows.append(
                                (fields[0], fields[1], fields[2], int(fields[3]),
                                 datetime.fromisoformat(fields[4]))
                            )  # fmt: skip
                        except (ValueError, IndexError):
                            continue
                    if len(rows) >= 20_000:
                        await connection.copy_records_to_table("bare_usage", records=rows)
                        copied += len(rows)
                        rows = []
                await connection.copy_records_to_table("bare_usage", records=rows)
                copied += len(rows)
            seconds = time.perf_counter() - started
    finally:
        await connection.close()
    return {"seconds": seconds, "accepted": copied}


def run_child(kind: str, database_url: str, aws_url: str) -> dict[str, Any]:
    answer = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--database-url",
            database_url,
            "--aws",
            aws_url,
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    *logs, last = answer.stdout.strip().splitlines()
    for line in logs:  # the child's own log lines, e.g. the ingestion's phase timings
        print(line, file=sys.stderr)
    result: dict[str, Any] = json.loads(last)
    return result


# --- the parent ----------------------------------------------------------------------------------


def usage_file(records: int, msisdns: list[str], rng: random.Random) -> bytes:
    now = datetime.now(UTC).replace(microsecond=0)
    kinds = ["data"] * 16 + ["voice"] * 3 + ["sms"]
    out = ["record_id,msisdn,usage_type,quantity,started_at"]
    for i in range(records):
        kind = kinds[i % 20]
        quantity = {"data": rng.randint(1_000, 5_000_000), "voice": rng.randint(1, 600)}.get(
            kind, 1
        )
        at = (now - timedelta(seconds=rng.randint(0, 3 * 86_400))).isoformat()
        if i % 199 == 7:  # 0.5% invalid records, spread over the lines
            out.append(f"bad-{i},{msisdns[i % len(msisdns)]},{kind},-{quantity},{at}")
        else:
            out.append(f"u-{i:08d},{msisdns[i % len(msisdns)]},{kind},{quantity},{at}")
    return ("\n".join(out) + "\n").encode()


async def prepare(database_url: str, aws_url: str, args: argparse.Namespace) -> dict[str, Any]:
    from mvno.billing_sync.__main__ import MIGRATIONS
    from mvno.billing_sync.consumer import HANDLERS
    from mvno.billing_sync.worker import units_of_work
    from mvno.common.aws import aws_client
    from mvno.common.bus.envelope import decode, new_event
    from mvno.common.db import create_engine
    from mvno.common.events.base import Allowance, Money
    from mvno.common.events.catalog import OfferingLaunched, OfferingPrice
    from mvno.common.events.orders import AirtimeToppedUp, BundlePurchased, SubscriptionActivated
    from mvno.common.service import migrate

    settings = settings_for(database_url, aws_url)
    await asyncio.to_thread(migrate, settings, MIGRATIONS)
    engine = create_engine(settings)
    unit_of_work = units_of_work(engine, settings)

    async def deliver(data: Any) -> None:
        event = decode(new_event(data, source="urn:mvno:bench").body)
        async with unit_of_work() as uow:
            await HANDLERS[event.type](uow, event)
            await uow.commit()

    launched = datetime(2026, 1, 1, tzinfo=UTC)
    prices = tuple(
        OfferingPrice(
            price_id=f"bench-{unit}", price_type="usage", unit_of_measure=unit,
            duty_free_amount=Money(amount=amount), tax_included_amount=Money(amount=amount),
            tax_rate=Decimal("0"), valid_from=launched,
        )
        for unit, amount in (("MB", Decimal("0.10")), ("minute", Decimal("0.90")),
                             ("SMS", Decimal("0.50")))
    )  # fmt: skip
    await deliver(OfferingLaunched(
        offering_id="bench-prepaid", version="1", name="bench", channels=("app",),
        payment_type="prepaid", product_kind="starter_pack", sim_kinds=("pSIM",),
        valid_from=launched, prices=prices,
    ))  # fmt: skip
    msisdns = [f"+2783{n:07d}" for n in range(args.lines)]
    now = datetime.now(UTC)
    for n, msisdn in enumerate(msisdns):
        sid = f"bench-sub-{n}"
        await deliver(SubscriptionActivated(
            subscription_id=sid, customer_id=f"bench-c-{n}", sequence=1, msisdn=msisdn,
            offering_id="bench-prepaid", payment_type="prepaid", sim_kind="pSIM",
        ))  # fmt: skip
        await deliver(BundlePurchased(
            subscription_id=sid, customer_id=f"bench-c-{n}", order_id=f"o-{n}",
            order_item_id="1", offering_id="bench-data", price=Money(amount=Decimal("85")),
            allowance=Allowance(data_mb=1024, voice_minutes=60, sms=10, validity_days=30),
            valid_from=now - timedelta(days=5), valid_to=now + timedelta(days=25),
        ))  # fmt: skip
        await deliver(AirtimeToppedUp(
            subscription_id=sid, customer_id=f"bench-c-{n}", order_id=f"t-{n}",
            order_item_id="1", amount=Money(amount=Decimal("50")),
        ))  # fmt: skip
    await engine.dispose()
    body = usage_file(args.records, msisdns, random.Random(42))
    async with aws_client(settings, "s3") as s3:
        with contextlib.suppress(Exception):
            await s3.create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": settings.aws_region}
            )
        await s3.put_object(Bucket=BUCKET, Key=KEY, Body=body)
    return {"file_bytes": len(body), "records": args.records, "lines": args.lines}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=1000, help="subscriptions in the file")
    parser.add_argument("--child", choices=["project", "bare"])
    parser.add_argument("--database-url")
    parser.add_argument("--aws")
    args = parser.parse_args()
    if args.child:
        run = child_project if args.child == "project" else child_bare
        result = asyncio.run(run(args.database_url, args.aws))
        result["peak_rss_mb"] = peak_rss_mb()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        result["process_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
        print(json.dumps(result))
        return 0

    from mvno.devstack.infrastructure import (
        embedded_postgres,
        free_port,
        moto_endpoint,
        to_asyncpg_url,
        with_database,
    )
    from mvno.devstack.processes import ProcessGroup

    with contextlib.ExitStack() as stack:
        temp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mvno-usage-bench-")))
        if url := os.environ.get("DATABASE_URL"):
            server_url = to_asyncpg_url(url)
        else:
            server_url = stack.enter_context(embedded_postgres(temp / "pg"))
        processes = ProcessGroup(temp / "logs")
        stack.callback(processes.stop_all)
        aws_url = stack.enter_context(moto_endpoint(processes, free_port()))
        database_url = with_database(server_url, f"mvno_bench_usage_{uuid.uuid4().hex[:6]}")
        print("preparing lines, bundles and the usage file ...", flush=True)
        results: dict[str, Any] = {"setup": asyncio.run(prepare(database_url, aws_url, args))}
        print("bare ...", flush=True)
        results["bare"] = run_child("bare", database_url, aws_url)
        print("project ...", flush=True)
        results["project"] = run_child("project", database_url, aws_url)
        with contextlib.suppress(Exception):
            asyncio.run(_drop(server_url, database_url))
    for name in ("bare", "project"):
        part = results[name]
        part["records_per_second"] = round(args.records / part["seconds"])
    results["ratio"] = round(
        results["project"]["records_per_second"] / results["bare"]["records_per_second"], 2
    )
    results["machine"] = {"cores": os.cpu_count(), "python": sys.version.split()[0]}
    results["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(results, indent=2))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"usage-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(
        json.dumps(results, indent=2) + "\n"
    )
    met = (
        results["project"]["records_per_second"] >= 20_000
        and results["project"]["peak_rss_mb"] <= 200
    )
    print(f"targets (>= 20,000 records/s, peak RSS <= 200 MB): {'met' if met else 'NOT met'}")
    return 0 if met else 1


async def _drop(server_url: str, database_url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    from mvno.common.db import asyncpg_dsn

    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        name = make_url(database_url).database
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


if __name__ == "__main__":
    raise SystemExit(main())
