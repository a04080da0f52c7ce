"""The bus against the raw SNS/SQS transport it runs on, in one run.

    .venv/bin/python bench/bus.py [--events 5000] [--latency-samples 200]

- raw: PublishBatch(10) -> ReceiveMessage(10) -> DeleteMessageBatch, no database, messages/s.
- bus: commit (one event per transaction, with its outbox row) -> relay (NOTIFY, PublishBatch)
  -> SNS -> SQS -> consumer (inbox row in the handler's transaction) -> delete, events/s. The
  committers and the relay share a process, as beside a service's API; the consumer runs in its own
  process (bench/bus_worker.py), as consumer workers are deployed.
- latency: on an idle system, one event at a time, from commit to the end of the handler.

Both throughput runs keep at most ``--window`` messages in flight (sent but not yet handled): moto
scans the whole queue on every call, so a deep backlog measures moto, not the pipeline (see
TOOLCHAIN.md). A steady stream is also what the platform sees in production.

PostgreSQL: ``DATABASE_URL`` when set, else an embedded server; moto's server runs as its own
process. Producer and consumer use separate databases, as two services would. Writes
``bench/out/bus-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from mvno.common.aws import aws_client
from mvno.common.bus.consumer import Consumer, ConsumerSettings, Handler
from mvno.common.bus.envelope import ReceivedEvent, new_event
from mvno.common.bus.provision import provision
from mvno.common.bus.relay import OutboxRelay, RelaySettings
from mvno.common.bus.topology import Queue, Subscription, Topic, Topology
from mvno.common.db import UnitOfWork, create_engine, unit_of_work_factory
from mvno.common.events.catalog import OfferingRetired
from mvno.common.service import migrate
from mvno.common.settings import ServiceSettings
from mvno.devstack.infrastructure import (
    embedded_postgres,
    free_port,
    moto_endpoint,
    to_asyncpg_url,
    with_database,
)
from mvno.devstack.processes import ProcessGroup

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
CATALOG_MIGRATIONS = ROOT / "services/catalog/src/mvno/catalog/migrations"
ORDERS_MIGRATIONS = ROOT / "services/orders/src/mvno/orders/migrations"
WORKER = ROOT / "bench" / "bus_worker.py"


def topology(prefix: str) -> Topology:
    return Topology(
        topics=(Topic("catalog", f"{prefix}-catalog-events"), Topic("raw", f"{prefix}-raw-events")),
        queues=(
            Queue("orders", f"{prefix}-orders-events", f"{prefix}-orders-events-dlq"),
            Queue("raw", f"{prefix}-raw-events-q", f"{prefix}-raw-events-q-dlq"),
        ),
        subscriptions=(
            Subscription("catalog", "orders", type_prefixes=("catalog.",)),
            Subscription("raw", "raw", type_prefixes=("raw.",)),
        ),
    )


class Window:
    """Flow control: at most ``size`` messages in flight (sent or committed, not yet handled)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0
        self.done = 0
        self._progress = asyncio.Condition()

    async def reserve(self, count: int) -> None:
        async with self._progress:
            await self._progress.wait_for(lambda: self.sent - self.done + count <= self.size)
            self.sent += count

    async def complete(self, count: int) -> None:
        async with self._progress:
            self.done += count
            # Wake as many waiters as slots were freed, not all sixteen writers of the bus run
            # for every completion (the raw run has one waiter either way).
            self._progress.notify(count)


async def raw_transport(
    settings: ServiceSettings, topic_arn: str, queue_url: str, count: int, window: Window
) -> dict[str, Any]:
    """Publish and consume ``count`` messages concurrently, SNS PublishBatch to SQS and back."""
    # The same CloudEvent body and attributes the bus carries, so only the pipeline differs.
    event = new_event(
        OfferingRetired(offering_id=str(uuid.uuid4()), version="1"), source="urn:mvno:bench"
    )
    body = event.body
    async with aws_client(settings, "sns") as sns, aws_client(settings, "sqs") as sqs:
        started = time.perf_counter()

        async def produce() -> None:
            for start in range(0, count, 10):
                await window.reserve(min(10, count - start))
                await sns.publish_batch(
                    TopicArn=topic_arn,
                    PublishBatchRequestEntries=[
                        {
                            "Id": str(i),
                            "Message": body,
                            "MessageAttributes": {
                                "type": {"DataType": "String", "StringValue": "raw.bench.sent.v1"}
                            },
                        }
                        for i in range(min(10, count - start))
                    ],
                )

        async def consume() -> int:
            received = 0
            while received < count:
                answer = await sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=1,
                    VisibilityTimeout=30,
                    MessageSystemAttributeNames=["ApproximateReceiveCount"],
                    MessageAttributeNames=["All"],
                )
                messages = answer.get("Messages", [])
                if messages:
                    await sqs.delete_message_batch(
                        QueueUrl=queue_url,
                        Entries=[
                            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                            for i, m in enumerate(messages)
                        ],
                    )
                received += len(messages)
                await window.complete(len(messages))
            return received

        _, received = await asyncio.gather(produce(), consume())
        elapsed = time.perf_counter() - started
    return {
        "messages": received,
        "seconds": round(elapsed, 2),
        "per_second": round(received / elapsed, 1),
    }


async def commit_events(unit_of_work: Any, count: int, window: Window, writers: int = 16) -> None:
    async def writer(share: int) -> None:
        for _ in range(share):
            await window.reserve(1)
            async with unit_of_work() as uow:
                uow.publish(OfferingRetired(offering_id=str(uuid.uuid4()), version="1"))
                await uow.commit()

    shares = [count // writers + (1 if n < count % writers else 0) for n in range(writers)]
    await asyncio.gather(*(writer(share) for share in shares))


@dataclass(frozen=True)
class Pipeline:
    """Producer database -> relay -> SNS topic -> SQS queue -> consumer database."""

    settings: ServiceSettings
    producer_url: str
    consumer_url: str
    topic_arn: str
    queue_url: str

    @contextlib.asynccontextmanager
    async def running(
        self, handler: Handler, consumer_settings: ConsumerSettings
    ) -> AsyncIterator[tuple[Callable[[], UnitOfWork], AsyncEngine]]:
        """Run a relay and a consumer; yield the producer's unit of work and the consumer's engine."""
        producer = create_engine(
            self.settings.model_copy(update={"database_url": self.producer_url})
        )
        consumer = create_engine(
            self.settings.model_copy(update={"database_url": self.consumer_url})
        )
        stop = asyncio.Event()
        async with aws_client(self.settings, "sns") as sns, aws_client(self.settings, "sqs") as sqs:
            relay = OutboxRelay(
                service="bench",
                engine=producer,
                database_url=self.producer_url,
                sns=sns,
                topic_arn=self.topic_arn,
                settings=RelaySettings(batch_size=100),
            )
            worker = Consumer(
                name="orders",
                sqs=sqs,
                queue_url=self.queue_url,
                handlers={OfferingRetired.event_type: handler},
                unit_of_work=unit_of_work_factory(consumer, source="urn:mvno:bench"),
                settings=consumer_settings,
            )
            tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(worker.run(stop))]
            try:
                yield unit_of_work_factory(producer, source="urn:mvno:bench"), consumer
            finally:
                stop.set()
                await asyncio.gather(*tasks)
        await producer.dispose()
        await consumer.dispose()


async def bus_pipeline(pipeline: Pipeline, count: int, window: Window) -> dict[str, Any]:
    """Committers and the relay here, as beside a service's API; the consumer in its own process,
    as consumer workers are deployed."""
    producer = create_engine(
        pipeline.settings.model_copy(update={"database_url": pipeline.producer_url})
    )
    consumer_engine = create_engine(
        pipeline.settings.model_copy(update={"database_url": pipeline.consumer_url})
    )
    before = await _inbox_rows(consumer_engine)
    stop = asyncio.Event()
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        pipeline.consumer_url,
        str(pipeline.settings.aws_endpoint_url),
        pipeline.queue_url,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        async with aws_client(pipeline.settings, "sns") as sns:
            relay = OutboxRelay(
                service="bench",
                engine=producer,
                database_url=pipeline.producer_url,
                sns=sns,
                topic_arn=pipeline.topic_arn,
                settings=RelaySettings(batch_size=100),
            )
            relaying = asyncio.create_task(relay.run(stop))

            async def follow_worker() -> None:
                # The window learns about handled events from the worker, which reports each
                # committed inbox row; the inbox is counted once at the end to check it.
                assert worker.stdout is not None
                seen = 0
                while seen < count:
                    line = await worker.stdout.readline()
                    if not line:
                        raise RuntimeError("the consumer worker exited")
                    handled = int(line)
                    await window.complete(handled)
                    seen += handled

            await asyncio.sleep(3)  # the worker process imports and starts polling
            started = time.perf_counter()
            following = asyncio.create_task(follow_worker())
            await commit_events(
                unit_of_work_factory(producer, source="urn:mvno:bench"), count, window
            )
            committed = time.perf_counter() - started
            await asyncio.wait_for(following, 600)
            elapsed = time.perf_counter() - started
            stop.set()
            await relaying
            handled = await _inbox_rows(consumer_engine) - before
            if handled != count:
                raise RuntimeError(f"{handled} inbox rows for {count} events")
    finally:
        worker.terminate()
        await worker.wait()
        await producer.dispose()
        await consumer_engine.dispose()
    return {
        "events": count,
        "seconds": round(elapsed, 2),
        "per_second": round(count / elapsed, 1),
        "commit_seconds": round(committed, 2),
    }


async def _inbox_rows(engine: Any) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM inbox"))).scalar_one())


async def _wait_for_inbox(engine: Any, count: int) -> None:
    """The handler ran for every event; wait until the last inbox rows are committed too."""
    for _ in range(1000):
        if await _inbox_rows(engine) >= count:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("inbox rows missing")


async def latency(pipeline: Pipeline, samples: int) -> dict[str, Any]:
    arrived: dict[str, asyncio.Event] = {}

    async def handler(uow: UnitOfWork, event: ReceivedEvent) -> None:
        # The end of the handler; the consumer commits its inbox row right after.
        arrived[event.data["offering_id"]].set()

    timings: list[float] = []
    settings = ConsumerSettings(concurrency=4, wait_time_seconds=20)
    async with pipeline.running(handler, settings) as (unit_of_work, _):
        await asyncio.sleep(1.0)  # both idle: the relay listening, the consumer long-polling
        for _ in range(samples):
            offering = str(uuid.uuid4())
            arrived[offering] = asyncio.Event()
            started = time.perf_counter()
            async with unit_of_work() as uow:
                uow.publish(OfferingRetired(offering_id=offering, version="1"))
                await uow.commit()
            await asyncio.wait_for(arrived[offering].wait(), 30)
            timings.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.02)
    ordered = sorted(timings)
    return {
        "samples": samples,
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def run(arguments: argparse.Namespace, server_url: str, aws_url: str) -> dict[str, Any]:
    settings = ServiceSettings(service_name="bench", environment="test", aws_endpoint_url=aws_url)
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    where = await provision(settings, topology(prefix))
    producer_url = with_database(server_url, f"{prefix}_producer")
    consumer_url = with_database(server_url, f"{prefix}_consumer")
    for url, migrations in ((producer_url, CATALOG_MIGRATIONS), (consumer_url, ORDERS_MIGRATIONS)):
        await asyncio.to_thread(
            migrate, settings.model_copy(update={"database_url": url}), migrations
        )
    pipeline = Pipeline(
        settings,
        producer_url,
        consumer_url,
        where.topic_arns["catalog"],
        where.queue_urls["orders"],
    )
    results: dict[str, Any] = {"window": arguments.window}
    raw_runs, bus_runs = [], []
    for round_number in range(1, arguments.rounds + 1):
        # Alternate the two so that drift in the shared endpoint hits both alike.
        print(f"round {round_number}: raw transport ...", flush=True)
        raw_runs.append(
            await raw_transport(
                settings,
                where.topic_arns["raw"],
                where.queue_urls["raw"],
                arguments.events,
                Window(arguments.window),
            )
        )
        print(f"round {round_number}: bus pipeline ...", flush=True)
        bus_runs.append(await bus_pipeline(pipeline, arguments.events, Window(arguments.window)))
    results["raw_runs"], results["bus_runs"] = raw_runs, bus_runs
    results["raw"] = {"per_second": statistics.median(run["per_second"] for run in raw_runs)}
    results["bus"] = {"per_second": statistics.median(run["per_second"] for run in bus_runs)}
    results["ratio"] = round(results["bus"]["per_second"] / results["raw"]["per_second"], 2)
    print("latency ...", flush=True)
    results["latency"] = await latency(pipeline, arguments.latency_samples)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternating raw/bus rounds; medians compared"
    )
    parser.add_argument("--window", type=int, default=30, help="most messages in flight at once")
    arguments = parser.parse_args()
    with contextlib.ExitStack() as stack:
        temp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mvno-bus-bench-")))
        if url := os.environ.get("DATABASE_URL"):
            server_url = to_asyncpg_url(url)
        else:
            server_url = stack.enter_context(embedded_postgres(temp / "pg"))
        processes = ProcessGroup(temp / "logs")
        stack.callback(processes.stop_all)
        aws_url = stack.enter_context(moto_endpoint(processes, free_port()))
        results = uvloop.run(run(arguments, server_url, aws_url))  # as uvicorn runs the services
    results["machine"] = {"cores": os.cpu_count(), "python": sys.version.split()[0]}
    results["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(results, indent=2))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"bus-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json").write_text(
        json.dumps(results, indent=2) + "\n"
    )
    met = (
        results["ratio"] >= 0.8
        and results["latency"]["p50_ms"] <= 50
        and results["latency"]["p99_ms"] <= 250
    )
    print(f"targets (ratio >= 0.8, p50 <= 50 ms, p99 <= 250 ms): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
