"""The bus benchmark's consumer as its own process, as consumer workers run in deployment.

    python bench/bus_worker.py DATABASE_URL AWS_ENDPOINT QUEUE_URL

Handles ``catalog.offering.retired.v1`` with a no-op handler (the inbox row is the work) until SIGTERM.
Each committed inbox row is reported on stdout (a count per line), so that the benchmark learns that an
event was handled without polling the inbox: polling would load the shared PostgreSQL and the
cores the consumer runs on, and it is no part of the bus.
"""

import asyncio
import signal
import sys
from collections.abc import Callable

import uvloop

from mvno.common.aws import aws_client
from mvno.common.bus.consumer import Consumer, ConsumerSettings
from mvno.common.bus.envelope import ReceivedEvent
from mvno.common.db import UnitOfWork, create_engine, unit_of_work_factory
from mvno.common.events.catalog import OfferingRetired
from mvno.common.settings import ServiceSettings


async def nothing(uow: UnitOfWork, event: ReceivedEvent) -> None:
    return None


class CommitReporter:
    """Counts committed inbox rows and writes the count to stdout once per event-loop turn."""

    def __init__(self) -> None:
        self._pending = 0
        self._scheduled = False

    def committed(self) -> None:
        self._pending += 1
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        sys.stdout.write(f"{self._pending}\n")
        sys.stdout.flush()
        self._pending, self._scheduled = 0, False


def reporting(
    factory: Callable[[], UnitOfWork], reporter: CommitReporter
) -> Callable[[], UnitOfWork]:
    """The consumer's unit of work, reporting each commit (the inbox row with the handler's effect)."""

    def open_unit() -> UnitOfWork:
        unit = factory()
        commit = unit.commit

        async def commit_and_report() -> None:
            await commit()
            reporter.committed()

        unit.commit = commit_and_report  # type: ignore[method-assign]
        return unit

    return open_unit


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
            unit_of_work=reporting(
                unit_of_work_factory(engine, source="urn:mvno:bench"), CommitReporter()
            ),
            settings=ConsumerSettings(concurrency=20, wait_time_seconds=1),
        ).run(stop)
    await engine.dispose()


if __name__ == "__main__":
    uvloop.run(main(*sys.argv[1:]))
