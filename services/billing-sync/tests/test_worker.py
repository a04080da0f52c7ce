"""The ``work`` process's loop as deployed: account sync, usage files and the outbox relay, seen
from the bus (the billing topic fanned out to a queue the test reads)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from mvno.billing_sync import worker
from mvno.billing_sync.usage_files import ensure_usage_bucket
from mvno.common.aws import aws_client
from mvno.common.bus.provision import provision
from mvno.common.bus.topology import Queue, Subscription, Topic, Topology

from .conftest import BillingWorld


async def test_worker_bills_new_lines_and_ingests_dropped_files_and_publishes(world: BillingWorld):
    settings = world.settings.model_copy(update={"sync_poll_seconds": 0.1})
    prefix = settings.bus_prefix
    provisioned = await provision(settings, Topology(
        topics=(Topic("billing", f"{prefix}-billing-events"),),
        queues=(Queue("observer", f"{prefix}-observer", f"{prefix}-observer-dlq"),),
        subscriptions=(Subscription("billing", "observer", type_prefixes=("billing.",)),),
    ))  # fmt: skip
    await ensure_usage_bucket(settings)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(settings, stop))
    seen: list[dict[str, Any]] = []
    try:
        line = await world.activate(order_id="order-w")
        async with aws_client(settings, "s3") as s3:
            await s3.put_object(
                Bucket=settings.usage_bucket, Key="w.csv",
                Body=(
                    "record_id,msisdn,usage_type,quantity,started_at\n"
                    f"w1,{line.msisdn},sms,2,2026-11-28T10:00:00Z\n"
                ).encode(),
            )  # fmt: skip
        async with aws_client(settings, "sqs") as sqs:
            deadline = time.monotonic() + 60
            wanted = {"billing.account.created.v1", "billing.usage.recorded.v1"}
            while not wanted <= {e["type"] for e in seen} and time.monotonic() < deadline:
                answer = await sqs.receive_message(
                    QueueUrl=provisioned.queue_urls["observer"], MaxNumberOfMessages=10,
                    WaitTimeSeconds=1,
                )  # fmt: skip
                seen += [json.loads(m["Body"]) for m in answer.get("Messages", [])]
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
    by_type = {e["type"]: e["data"] for e in seen}
    assert by_type["billing.account.created.v1"]["subscription_id"] == line.subscription_id
    assert by_type["billing.account.created.v1"]["order_id"] == "order-w"
    assert by_type["billing.usage.recorded.v1"]["sms_count"] == 2
