"""Fixtures for the bus tests: a migrated service-like database and a topic fanned out to queues."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from mvno.common.aws import aws_client
from mvno.common.db import create_engine, ensure_database, unit_of_work_factory, upgrade
from mvno.common.settings import ServiceSettings

BUS_MIGRATIONS = Path(__file__).parent / "bus_migrations"


class ThingCreated(BaseModel):
    event_type: ClassVar[str] = "test.thing.created.v1"
    thing_id: str
    note: str = ""


class ThingRenamed(BaseModel):
    event_type: ClassVar[str] = "test.thing.renamed.v1"
    thing_id: str


@dataclass
class Queue:
    url: str
    arn: str
    dlq_url: str


@dataclass
class BusWorld:
    settings: ServiceSettings
    engine: AsyncEngine
    sns: Any
    sqs: Any
    topic_arn: str
    queues: dict[str, Queue]

    def unit_of_work(self):
        return unit_of_work_factory(self.engine, source="urn:mvno:test")()

    async def effects(self, consumer: str) -> list[str]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT event_id FROM effect WHERE consumer = :c ORDER BY seq"),
                {"c": consumer},
            )
            return [row.event_id for row in rows]

    async def wait_for(self, predicate, limit: float = 30.0, what: str = "condition") -> None:
        deadline = asyncio.get_running_loop().time() + limit
        while asyncio.get_running_loop().time() < deadline:
            if await predicate():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    async def queue_is_empty(self, consumer: str) -> bool:
        answer = await self.sqs.get_queue_attributes(
            QueueUrl=self.queues[consumer].url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        attributes = answer["Attributes"]
        return (
            attributes["ApproximateNumberOfMessages"] == "0"
            and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
        )


async def record_effect(uow, event, consumer: str) -> None:
    await uow.session.execute(
        text("INSERT INTO effect (consumer, event_id) VALUES (:c, :e)"),
        {"c": consumer, "e": event.id},
    )


@pytest.fixture
async def bus_database(make_database) -> str:
    url = make_database("bus")
    await ensure_database(url)
    await asyncio.to_thread(upgrade, BUS_MIGRATIONS, url)
    return url


@pytest.fixture
async def bus_world(bus_database, clean_aws):
    """A topic whose events fan out to queue ``alpha`` (every test.* type) and ``beta`` (only
    test.thing.created.v1), each with a DLQ after 5 receives and a 30 s visibility timeout."""
    settings = ServiceSettings(
        service_name="test",
        environment="test",
        database_url=bus_database,
        aws_endpoint_url=clean_aws,
    )
    engine = create_engine(settings)
    async with aws_client(settings, "sns") as sns, aws_client(settings, "sqs") as sqs:
        topic_arn = (await sns.create_topic(Name=f"test-{uuid.uuid4().hex[:8]}"))["TopicArn"]
        filters = {
            "alpha": {"type": [{"prefix": "test."}]},
            "beta": {"type": ["test.thing.created.v1"]},
        }
        queues = {}
        for name, policy in filters.items():
            dlq_url = (await sqs.create_queue(QueueName=f"{name}-dlq"))["QueueUrl"]
            dlq_arn = (
                await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
            )["Attributes"]["QueueArn"]
            url = (
                await sqs.create_queue(
                    QueueName=name,
                    Attributes={
                        "VisibilityTimeout": "30",
                        "RedrivePolicy": json.dumps(
                            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}
                        ),
                    },
                )
            )["QueueUrl"]
            arn = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))[
                "Attributes"
            ]["QueueArn"]
            await sns.subscribe(
                TopicArn=topic_arn,
                Protocol="sqs",
                Endpoint=arn,
                Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(policy)},
            )
            queues[name] = Queue(url, arn, dlq_url)
        yield BusWorld(settings, engine, sns, sqs, topic_arn, queues)
    await engine.dispose()
