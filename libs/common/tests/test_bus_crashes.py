"""The bus survives processes killed with SIGKILL: nothing committed is lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from mvno.common.bus.envelope import decode, new_event
from mvno.common.bus.relay import OutboxRelay, RelaySettings

from .conftest import ThingCreated

WORKER = Path(__file__).parent / "bus_worker.py"


def start_worker(*arguments: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(WORKER), *arguments])


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(10)


async def scalar(world, sql: str) -> int:
    async with world.engine.connect() as connection:
        return int((await connection.execute(text(sql))).scalar_one())


async def test_relay_killed_between_commit_and_publish_loses_nothing(bus_world):
    committed = []
    for n in range(300):
        async with bus_world.unit_of_work() as uow:
            committed.append(uow.publish(ThingCreated(thing_id=f"k{n}")).id)
            await uow.commit()
    relay = start_worker(
        "relay",
        bus_world.settings.database_url,
        bus_world.settings.aws_endpoint_url,
        bus_world.topic_arn,
    )
    try:
        await bus_world.wait_for(
            lambda: _published_at_least(bus_world, 1),
            limit=60,
            what="the relay to start publishing",
        )
    finally:
        kill(relay)
    unpublished = await scalar(bus_world, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert unpublished > 0, "the kill came too late to test anything"

    restarted = OutboxRelay(
        service="test",
        engine=bus_world.engine,
        database_url=bus_world.settings.database_url,
        sns=bus_world.sns,
        topic_arn=bus_world.topic_arn,
        settings=RelaySettings(),
    )
    while await restarted.publish_due():
        pass
    assert await scalar(bus_world, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    received: set[str] = set()
    while True:
        answer = await bus_world.sqs.receive_message(
            QueueUrl=bus_world.queues["beta"].url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        if not answer.get("Messages"):
            break
        received |= {decode(message["Body"]).id for message in answer["Messages"]}
        await bus_world.sqs.delete_message_batch(
            QueueUrl=bus_world.queues["beta"].url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(answer["Messages"])
            ],
        )
    assert received == set(committed)


async def _published_at_least(world, count: int) -> bool:
    return (
        await scalar(world, "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") >= count
    )


async def test_consumer_killed_at_random_points_applies_each_of_1000_effects_once(bus_world):
    queue = bus_world.queues["alpha"].url
    events = [
        new_event(ThingCreated(thing_id=f"c{n}"), source="urn:mvno:test") for n in range(1000)
    ]

    async def stream() -> None:
        for start in range(0, len(events), 10):
            await bus_world.sqs.send_message_batch(
                QueueUrl=queue,
                Entries=[
                    {"Id": str(i), "MessageBody": e.body}
                    for i, e in enumerate(events[start : start + 10])
                ],
            )
            await asyncio.sleep(0.02)  # a stream, not a backlog: moto slows down on deep queues

    arguments = (
        "consume",
        bus_world.settings.database_url,
        bus_world.settings.aws_endpoint_url,
        queue,
        "alpha",
    )
    sender = asyncio.create_task(stream())
    chance = random.Random(1000)
    consumer = start_worker(*arguments)
    kills = 0
    try:
        for _ in range(3):
            await asyncio.sleep(chance.uniform(1.0, 3.0))
            kill(consumer)
            kills += 1
            consumer = start_worker(*arguments)
        await sender
        await bus_world.wait_for(
            lambda: _inbox_has(bus_world, 1000), limit=180, what="every event to be handled"
        )
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(30)
    assert kills == 3
    effects = await bus_world.effects("alpha")
    assert len(effects) == 1000
    assert set(effects) == {event.id for event in events}


async def _inbox_has(world, count: int) -> bool:
    return await scalar(world, "SELECT count(*) FROM inbox WHERE consumer = 'alpha'") >= count
