"""A relay or a consumer in its own process, for tests that kill it with SIGKILL.

python bus_worker.py relay   DATABASE_URL AWS_ENDPOINT TOPIC_ARN
python bus_worker.py consume DATABASE_URL AWS_ENDPOINT QUEUE_URL CONSUMER
"""

import asyncio
import signal
import sys

from sqlalchemy import text

from mvno.common.aws import aws_client
from mvno.common.bus.consumer import Consumer, ConsumerSettings
from mvno.common.bus.relay import OutboxRelay, RelaySettings
from mvno.common.db import create_engine, unit_of_work_factory
from mvno.common.settings import ServiceSettings


async def main(
    role: str, database_url: str, endpoint: str, target: str, consumer: str = ""
) -> None:
    settings = ServiceSettings(
        service_name="worker",
        environment="test",
        database_url=database_url,
        aws_endpoint_url=endpoint,
    )
    engine = create_engine(settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if role == "relay":
        async with aws_client(settings, "sns") as sns:
            relay = OutboxRelay(
                service="worker",
                engine=engine,
                database_url=database_url,
                sns=sns,
                topic_arn=target,
                settings=RelaySettings(batch_size=10, poll_interval=1.0),
            )
            await relay.run(stop)
    else:

        async def record(uow, event):
            await uow.session.execute(
                text("INSERT INTO effect (consumer, event_id) VALUES (:c, :e)"),
                {"c": consumer, "e": event.id},
            )

        async with aws_client(settings, "sqs") as sqs:
            await Consumer(
                name=consumer,
                sqs=sqs,
                queue_url=target,
                handlers={"test.thing.created.v1": record},
                unit_of_work=unit_of_work_factory(engine, source="urn:mvno:worker"),
                settings=ConsumerSettings(
                    wait_time_seconds=1, visibility_timeout=2, retry_initial=0
                ),
            ).run(stop)
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
