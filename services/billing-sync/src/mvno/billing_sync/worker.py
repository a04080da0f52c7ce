"""``mvno-billing-sync work``: the service's background work, as many replicas as the load needs.

It carries account operations to the billing platform, ingests usage files announced on the
object-created queue, polls the network operator's usage API, expires buckets, reconciles on a
schedule and relays the outbox (every replica may: rows are claimed with SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from mvno.billing_sync.balances import expire_buckets
from mvno.billing_sync.clients import open_partners
from mvno.billing_sync.reconcile import reconcile
from mvno.billing_sync.settings import BillingSyncSettings
from mvno.billing_sync.sync import AccountSync
from mvno.billing_sync.unit_of_work import BillingUnitOfWork
from mvno.billing_sync.usage_api import poll_once
from mvno.billing_sync.usage_files import UsageFileWorker
from mvno.common.aws import aws_client
from mvno.common.bus.envelope import event_source
from mvno.common.bus.relay import OutboxRelay
from mvno.common.bus.runtime import resolve_until_found, stop_on_signals
from mvno.common.db import create_engine, unit_of_work_factory
from mvno.common.http import create_partner_session

_log = logging.getLogger(__name__)


def units_of_work(
    engine: AsyncEngine, settings: BillingSyncSettings
) -> Callable[[], BillingUnitOfWork]:
    return unit_of_work_factory(
        engine, source=event_source(settings.service_name), kind=BillingUnitOfWork
    )


async def every(
    seconds: float, stop: asyncio.Event, name: str, job: Callable[[], Awaitable[object]]
) -> None:
    """Run ``job`` now and then every ``seconds`` until ``stop``; a failure is logged, not fatal."""
    while not stop.is_set():
        try:
            await job()
        except Exception:
            _log.exception("%s failed; trying again in %.0f s", name, seconds)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def run(settings: BillingSyncSettings, stop: asyncio.Event | None = None) -> None:
    """A worker's whole life: until ``stop`` is set, or without one until SIGTERM/SIGINT."""
    if stop is None:
        stop = stop_on_signals()
    engine = create_engine(settings)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        found = await resolve_until_found(settings, stop, producers=["billing"], consumers=[])
        if found is None:
            return
        http = await stack.enter_async_context(
            create_partner_session(settings, timeout=settings.partner_timeout_seconds)
        )
        partners = open_partners(settings, http)
        sns = await stack.enter_async_context(aws_client(settings, "sns"))
        unit_of_work = units_of_work(engine, settings)
        relay = OutboxRelay(
            service=settings.service_name,
            engine=engine,
            database_url=settings.database_url,
            sns=sns,
            topic_arn=found.topic_arns["billing"],
        )
        sync = AccountSync(unit_of_work=unit_of_work, billing=partners.billing, settings=settings)
        sqs = await stack.enter_async_context(aws_client(settings, "sqs"))
        s3 = await stack.enter_async_context(aws_client(settings, "s3"))
        queue_url = (await sqs.get_queue_url(QueueName=settings.usage_files_queue))["QueueUrl"]
        files = UsageFileWorker(
            unit_of_work=unit_of_work, s3=s3, sqs=sqs, queue_url=queue_url, settings=settings
        )

        async def expire() -> None:
            async with unit_of_work() as uow:
                await expire_buckets(uow, at=datetime.now(UTC))
                await uow.commit()

        _log.info("billing-sync worker running")
        async with asyncio.TaskGroup() as group:
            group.create_task(relay.run(stop))
            group.create_task(sync.run(stop))
            group.create_task(files.run(stop))
            group.create_task(every(settings.expiry_sweep_seconds, stop, "bucket expiry", expire))
            group.create_task(
                every(
                    settings.reconcile_interval_seconds,
                    stop,
                    "reconciliation",
                    lambda: reconcile(unit_of_work, partners.billing),
                )
            )
            group.create_task(
                every(
                    settings.usage_poll_seconds,
                    stop,
                    "usage API polling",
                    lambda: poll_once(
                        unit_of_work, partners.network, page_size=settings.usage_poll_page
                    ),
                )
            )
