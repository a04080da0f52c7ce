"""``mvno-orders provision``: a provisioning worker, as many as the load needs.

It consumes the provisioning queue (a work item starts an order), takes up the orders whose
timers are due (retries waiting out their backoff, sagas woken by an event or looking again, leases
of dead workers run out), and relays the outbox like every replica of the service may.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack, suppress
from datetime import datetime, timedelta

from purgatory import AsyncCircuitBreakerFactory
from sqlalchemy.ext.asyncio import AsyncEngine

from mvno.common.aws import aws_client
from mvno.common.bus.consumer import Consumer, ConsumerSettings
from mvno.common.bus.envelope import event_source
from mvno.common.bus.relay import OutboxRelay, RelaySettings
from mvno.common.bus.runtime import resolve_until_found, stop_on_signals
from mvno.common.crypto import FieldCipher
from mvno.common.db import (
    StatementPool,
    asyncpg_dsn,
    create_engine,
    unit_of_work_factory,
)
from mvno.common.http import create_partner_session
from mvno.common.tracing import ORDER_ID, client_spans_when_sampled, continued_span
from mvno.orders.domain.saga import RetryPolicy
from mvno.orders.hub.directory import HubDirectory
from mvno.orders.provisioning.clients import Partner
from mvno.orders.provisioning.executor import Provisioner, now
from mvno.orders.provisioning.metrics import keep_measuring_open_orders
from mvno.orders.provisioning.repository import DueOrder, TimersRepository
from mvno.orders.settings import OrdersSettings
from mvno.orders.unit_of_work import OrdersUnitOfWork

CONSUMER = "orders-provisioning"
STEP_DUE = "orders.provisioning.step_due.v1"
SHUTDOWN_GRACE_SECONDS = 25.0
OPEN_ORDERS_INTERVAL_SECONDS = 30.0
"""How often each worker counts the open orders by state for the metrics."""
"""How long a stopping worker lets the orders it took from their timers finish their steps."""

_log = logging.getLogger(__name__)


async def open_provisioner(
    settings: OrdersSettings, stack: AsyncExitStack, engine: AsyncEngine
) -> Provisioner:
    """The executor with its partner clients and KMS client, closed with ``stack``."""
    http = await stack.enter_async_context(
        create_partner_session(settings, timeout=settings.partner_timeout_seconds)
    )
    kms = await stack.enter_async_context(aws_client(settings, "kms"))
    # Orders taken from the queue and orders taken from their timers, each as many at once.
    steps_pool = await StatementPool.open(
        asyncpg_dsn(settings.database_url), size=2 * settings.provisioning_concurrency
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
        unit_of_work=unit_of_work_factory(
            engine, source=event_source(settings.service_name), kind=OrdersUnitOfWork
        ),
        steps_pool=steps_pool,
        hubs=HubDirectory(asyncpg_dsn(settings.database_url)),
        poll_seconds=max(settings.timer_poll_seconds, 0.5),
        lease_seconds=settings.provisioning_visibility_seconds,
    )


async def run_due_timers(
    provisioner: Provisioner, settings: OrdersSettings, stop: asyncio.Event
) -> None:
    """Take up the orders whose timers are due, here, until ``stop``; every worker does.

    Each look (every ``timer_poll_seconds``) takes as many due timers as this worker has room
    for, in one statement that moves them a lease ahead so that no other worker takes them too
    (:meth:`TimersRepository.take_due_timers`), and runs those orders' next steps here: a due
    timer is not turned into a work item on the bus, which would cost an outbox row, a publish, a
    receive and a delete for every wake-up (billing-sync's answer wakes every new line). On stop,
    the orders taken are finished within the grace; an order cut short is taken up again when its
    lease runs out.
    """
    running: set[asyncio.Task[None]] = set()
    lease = timedelta(seconds=provisioner.lease_seconds)
    while not stop.is_set():
        room = settings.provisioning_concurrency - len(running)
        taken: list[DueOrder] = []
        at = now()
        try:
            if room > 0:
                with client_spans_when_sampled():  # five looks a second, in no trace
                    async with provisioner.steps_pool.acquire() as connection:
                        taken = await TimersRepository(connection).take_due_timers(
                            at=at, lease_until=at + lease, limit=room
                        )
        except Exception:
            _log.exception("taking due provisioning timers failed; trying again")
        for due in taken:
            task = asyncio.create_task(_resume(provisioner, due, lease_until=at + lease))
            running.add(task)
            task.add_done_callback(running.discard)
        if len(taken) < room or room <= 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.timer_poll_seconds)
    if running:
        _, cut_short = await asyncio.wait(running, timeout=SHUTDOWN_GRACE_SECONDS)
        for task in cut_short:
            task.cancel()
        await asyncio.gather(*cut_short, return_exceptions=True)


async def _resume(provisioner: Provisioner, due: DueOrder, *, lease_until: datetime) -> None:
    """Run the order's steps in a span continuing the trace saved with the order: a retry, a
    wait looked at again or a dead worker's order taken over stays in the order's one trace."""
    order_id = due.order_id
    with continued_span(
        "orders.provisioning resume",
        due.trace_context,
        order_id=order_id,
        attributes={ORDER_ID: order_id},
    ):
        try:
            await provisioner.resume(order_id, lease_until=lease_until)
        except Exception:
            _log.exception("order %s: its steps failed; its timer brings it back", order_id)


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
            unit_of_work=unit_of_work_factory(
                engine, source=event_source(settings.service_name), kind=OrdersUnitOfWork
            ),
            settings=ConsumerSettings(
                concurrency=settings.provisioning_concurrency,
                visibility_timeout=settings.provisioning_visibility_seconds,
                # A work item's handler runs a whole run of steps, and at a steady rate each is
                # done before the next arrives, so deletes come one by one: held up to a second
                # they go out together, several to a DeleteMessageBatch (the item stays hidden
                # meanwhile), and each call costs the worker CPU.
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
            group.create_task(run_due_timers(provisioner, settings, stop))
            group.create_task(relay.run(stop))
            group.create_task(
                keep_measuring_open_orders(
                    provisioner.steps_pool, stop, interval=OPEN_ORDERS_INTERVAL_SECONDS
                )
            )
            if provisioner.hubs is not None:
                group.create_task(provisioner.hubs.follow_changes(stop))
