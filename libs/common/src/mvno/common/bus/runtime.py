"""Running the bus inside a service: its outbox relay beside the API, its consumer as a worker."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from mvno.common.aws import aws_client
from mvno.common.bus.consumer import Consumer, ConsumerSettings, Handler
from mvno.common.bus.envelope import event_source
from mvno.common.bus.provision import ProvisionedTopology, resolve
from mvno.common.bus.relay import OutboxRelay, RelaySettings
from mvno.common.bus.topology import platform_topology
from mvno.common.db import UnitOfWork, create_engine, unit_of_work_factory
from mvno.common.settings import ServiceSettings

_log = logging.getLogger(__name__)


async def resolve_until_found(
    settings: ServiceSettings, stop: asyncio.Event, **narrow: Any
) -> ProvisionedTopology | None:
    """Look the service's topic or queue up, waiting (with backoff) until it is provisioned."""
    delay = 1.0
    while not stop.is_set():
        try:
            return await resolve(settings, platform_topology(settings.bus_prefix), **narrow)
        except Exception as exc:  # not provisioned yet, or the endpoint is down: both pass
            _log.warning(
                "bus not reachable or not provisioned (%s); retrying in %.0f s", exc, delay
            )
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            delay = min(delay * 2, 30.0)
    return None


async def run_relay(
    settings: ServiceSettings, *, producer: str, engine: AsyncEngine, sns: Any, stop: asyncio.Event
) -> None:
    """Publish the service's outbox to its topic until ``stop`` is set."""
    found = await resolve_until_found(settings, stop, producers=[producer], consumers=[])
    if found is None:
        return
    relay = OutboxRelay(
        service=settings.service_name,
        engine=engine,
        database_url=settings.database_url,
        sns=sns,
        topic_arn=found.topic_arns[producer],
        settings=RelaySettings(coalesce_seconds=settings.outbox_coalesce_seconds),
    )
    await relay.run(stop)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: how a worker process learns it must finish."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def consume(
    settings: ServiceSettings,
    *,
    consumer: str,
    handlers: Mapping[str, Handler[Any]],
    unit_of_work_kind: type[UnitOfWork] = UnitOfWork,
    consumer_settings: ConsumerSettings | None = None,
) -> None:
    """A consumer worker's whole life: consume the service's queue until SIGTERM or SIGINT,
    each event handled in a ``unit_of_work_kind`` (the service's, with its repositories)."""
    stop = stop_on_signals()
    engine = create_engine(settings)
    try:
        found = await resolve_until_found(settings, stop, producers=[], consumers=[consumer])
        if found is None:
            return
        async with aws_client(settings, "sqs") as sqs:
            _log.info("%s consuming %s", consumer, found.queue_urls[consumer])
            await Consumer(
                name=consumer,
                sqs=sqs,
                queue_url=found.queue_urls[consumer],
                dlq_url=found.dlq_urls[consumer],
                handlers=handlers,
                unit_of_work=unit_of_work_factory(
                    engine, source=event_source(settings.service_name), kind=unit_of_work_kind
                ),
                settings=consumer_settings,
            ).run(stop)
    finally:
        await engine.dispose()
