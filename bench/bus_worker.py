"""The bus benchmark's consumer as its own process, as consumer workers run in deployment.

    python bench/bus_worker.py DATABASE_URL AWS_ENDPOINT QUEUE_URL

Handles ``catalog.offering.retired.v1`` with a no-op handler (the inbox row is the work) until SIGTERM.
"""

import asyncio
import signal
import sys

import uvloop

from mvno.common.aws import aws_client
from mvno.common.bus.consumer import Consumer, ConsumerSettings
from mvno.common.bus.envelope import ReceivedEvent
from mvno.common.db import UnitOfWork, create_engine, unit_of_work_factory
from mvno.common.events.catalog import OfferingRetired
from mvno.common.settings import ServiceSettings


async def nothing(uow: UnitOfWork, event: ReceivedEvent) -> None:
    return None


async def main(database_url: str, endpoint: str, queue_url: str) -> None:
    settings = ServiceSettings(
        service_name="bench-consumer",
        environment="test",
        database_url=database_url,
        aws_endpoint_url=endpoint,
    )
    engine = create_engine(settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with aws_client(settings, "sqs") as sqs:
        await Consumer(
            name="orders",
            sqs=sqs,
            queue_url=queue_url,
            handlers={OfferingRetired.event_type: nothing},
            unit_of_work=unit_of_work_factory(engine, source="urn:mvno:bench"),
            settings=ConsumerSettings(concurrency=20, wait_time_seconds=1),
        ).run(stop)
    await engine.dispose()


if __name__ == "__main__":
    uvloop.run(main(*sys.argv[1:]))
