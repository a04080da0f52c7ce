"""The bus as the services run it: catalog's relay beside its API, orders' consumer worker."""

import asyncio
import signal
import sys

from mvno.common.aws import aws_client
from mvno.common.bus.envelope import decode
from mvno.common.bus.provision import provision
from mvno.common.bus.topology import platform_topology
from mvno.common.db import create_engine, ensure_database, unit_of_work_factory
from mvno.common.events.catalog import OfferingRetired
from mvno.common.service import migrate
from mvno.common.settings import ServiceSettings
from mvno.devstack.testing import running_service, service_environment


async def receive_all(sqs, queue_url: str, wait: float = 20.0) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + wait
    while asyncio.get_running_loop().time() < deadline:
        answer = await sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        if answer.get("Messages"):
            return answer["Messages"]
    return []


async def depth(sqs, queue_url: str) -> int:
    answer = await sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    return sum(int(value) for value in answer["Attributes"].values())


async def test_service_relay_publishes_and_consumer_worker_acknowledges(
    make_database, clean_aws, process_group
):
    settings = ServiceSettings(environment="test", aws_endpoint_url=clean_aws)
    where = await provision(settings, platform_topology())
    catalog_db = make_database("catalog")

    with running_service(
        "catalog", process_group, database_url=catalog_db, aws_endpoint_url=clean_aws
    ):
        engine = create_engine(ServiceSettings(database_url=catalog_db))
        try:
            async with unit_of_work_factory(engine, source="urn:mvno:catalog")() as uow:
                event = uow.publish(
                    OfferingRetired(offering_id="off-1", version="1"), subject="off-1"
                )
                await uow.commit()
        finally:
            await engine.dispose()
        async with aws_client(settings, "sqs") as sqs:
            # portal-api follows catalog events and runs no consumer here: the message waits for it.
            messages = await receive_all(sqs, where.queue_urls["portal-api"])
    assert [decode(m["Body"]).id for m in messages] == [event.id]

    # orders follows catalog offering events; its worker has no handler for them yet, so it
    # acknowledges the event instead of retrying it into the DLQ.
    orders_db = make_database("orders")
    await ensure_database(orders_db)
    from mvno.orders.__main__ import MIGRATIONS

    await asyncio.to_thread(migrate, ServiceSettings(database_url=orders_db), MIGRATIONS)
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mvno.orders",
        "consume",
        env=service_environment(orders_db, clean_aws),
    )
    try:
        async with aws_client(settings, "sqs") as sqs:
            for _ in range(200):
                if await depth(sqs, where.queue_urls["orders"]) == 0:
                    break
                await asyncio.sleep(0.1)
            assert await depth(sqs, where.queue_urls["orders"]) == 0
            assert await depth(sqs, where.dlq_urls["orders"]) == 0
    finally:
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), 30) == 0
