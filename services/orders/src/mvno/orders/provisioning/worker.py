"""``mvno-orders provision``: a provisioning worker, as many as the load needs.

It consumes the provisioning queue (one saga step per work item), turns due timers (retries
waiting out their backoff, sagas waiting for an event) back into work items, and relays the
outbox like every replica of the service may.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress

import asyncpg
from purgatory import AsyncCircuitBreakerFactory
from sqlalchemy.ext.asyncio import AsyncEngine

from mvno.common.aws import aws_client
from mvno.common.bus.consumer import Consumer, ConsumerSettings
from mvno.common.bus.envelope import event_source
from mvno.common.bus.relay import OutboxRelay, RelaySettings
from mvno.common.bus.runtime import resolve_until_found, stop_on_signals
from mvno.common.crypto import FieldCipher
from mvno.common.db import (
    UnitOfWork,
    asyncpg_dsn,
    create_engine,
    open_statement_pool,
    unit_of_work_factory,
)
from mvno.common.http import create_partner_session
from mvno.common.tracing import client_spans_when_sampled
from mvno.orders.domain.saga import RetryPolicy
from mvno.orders.hub.directory import HubDirectory
from mvno.orders.provisioning.executor import Provisioner, now, step_due
from mvno.orders.provisioning.partners import Partner
from mvno.orders.repository import OrdersRepository, OrderSteps
from mvno.orders.settings import OrdersSettings

CONSUMER = "orders-provisioning"
STEP_DUE = "orders.provisioning.step_due.v1"

_log = logging.getLogger(__name__)


async def open_provisioner(
    settings: OrdersSettings, stack: AsyncExitStack, engine: AsyncEngine
) -> Provisioner:
    """The executor with its partner clients and KMS client, closed with ``stack``."""
    http = await stack.enter_async_context(
        create_partner_session(settings, timeout=settings.partner_timeout_seconds)
    )
    kms = await stack.enter_async_context(aws_client(settings, "kms"))
    steps_pool = await open_statement_pool(
        asyncpg_dsn(settings.database_url), size=settings.provisioning_concurrency
    )
    stack.push_async_callback(steps_pool.close)
    breakers = AsyncCircuitBreakerFactory(
        default_threshold=settings.circuit_failure_threshold,
        default_ttl=settings.circuit_open_seconds,
    )
    return Provisioner(
        network=Partner("network operator", http, settings.network_operator_url, breakers),
        bank=Partner("bank", http, settings.payments_url, breakers),
        cipher=FieldCipher(kms, settings.personal_data_kms_key),
        policy=RetryPolicy(
            attempts=settings.step_attempts,
            base_delay=settings.step_retry_base_seconds,
            max_delay=settings.step_retry_max_seconds,
            billing_account_timeout=settings.billing_account_timeout_seconds,
            port_in_timeout=settings.port_in_timeout_seconds,
        ),
        unit_of_work=unit_of_work_factory(engine, source=event_source(settings.service_name)),
        steps_pool=steps_pool,
        hubs=HubDirectory(asyncpg_dsn(settings.database_url)),
        poll_seconds=max(settings.timer_poll_seconds, 0.5),
        lease_seconds=settings.provisioning_visibility_seconds,
    )


async def fire_due_timers(
    engine: AsyncEngine,
    settings: OrdersSettings,
    stop: asyncio.Event,
    peek: asyncpg.Pool | None = None,
) -> None:
    """Turn due timers into work items until ``stop``; several workers may run it at once.

    With ``peek``, each look first asks on a plain connection whether any timer is due, and
    opens a unit of work only when one is: most looks find none (a running saga's lease is
    set well ahead), and each worker looks five times a second.
    """
    unit_of_work = unit_of_work_factory(engine, source=event_source(settings.service_name))
    while not stop.is_set():
        try:
            with client_spans_when_sampled():  # five looks a second, in no trace
                due = await _fire_due(unit_of_work, peek)
        except Exception:
            _log.exception("firing provisioning timers failed; trying again")
            due = []
        if len(due) < 100:
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.timer_poll_seconds)


async def _fire_due(unit_of_work: Callable[[], UnitOfWork], peek: asyncpg.Pool | None) -> list[str]:
    if peek is not None:
        async with peek.acquire() as connection:
            if not await OrderSteps(connection).any_timer_due(at=now()):
                return []
    async with unit_of_work() as uow:
        due = await OrdersRepository(uow.session).take_due_timers(at=now(), limit=100)
        for order_id in due:
            step_due(uow, order_id)
        await uow.commit()
    return due


async def run(settings: OrdersSettings, stop: asyncio.Event | None = None) -> None:
    """A worker's whole life: until ``stop`` is set, or without one until SIGTERM/SIGINT."""
    if stop is None:
        stop = stop_on_signals()
    engine = create_engine(settings)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(engine.dispose)
        found = await resolve_until_found(
            settings, stop, producers=["orders"], consumers=[CONSUMER]
        )
        if found is None:
            return
        provisioner = await open_provisioner(settings, stack, engine)
        sqs = await stack.enter_async_context(aws_client(settings, "sqs"))
        sns = await stack.enter_async_context(aws_client(settings, "sns"))
        consumer = Consumer(
            name=CONSUMER,
            sqs=sqs,
            queue_url=found.queue_urls[CONSUMER],
            dlq_url=found.dlq_urls[CONSUMER],
            handlers={STEP_DUE: provisioner.advance},
            unit_of_work=unit_of_work_factory(engine, source=event_source(settings.service_name)),
            settings=ConsumerSettings(
                concurrency=settings.provisioning_concurrency,
                visibility_timeout=settings.provisioning_visibility_seconds,
                # A work item's handler runs a whole run of steps, and at a steady rate each is
                # done before the next arrives, so deletes come one by one: held up to a second
                # they go out together (the item stays hidden meanwhile). About one
                # DeleteMessageBatch per work item became one per five at 10 orders/s
                # (bench/orders.py); each costs about 3 ms of botocore's CPU.
                delete_linger_seconds=1.0,
                delete_linger_when_idle=True,
            ),
        )
        relay = OutboxRelay(
            service=settings.service_name,
            engine=engine,
            database_url=settings.database_url,
            sns=sns,
            topic_arn=found.topic_arns["orders"],
            settings=RelaySettings(coalesce_seconds=settings.outbox_coalesce_seconds),
        )
        _log.info("provisioning worker consuming %s", found.queue_urls[CONSUMER])
        async with asyncio.TaskGroup() as group:
            group.create_task(consumer.run(stop))
            group.create_task(fire_due_timers(engine, settings, stop, peek=provisioner.steps_pool))
            group.create_task(relay.run(stop))
            if provisioner.hubs is not None:
                group.create_task(provisioner.hubs.follow_changes(stop))
