"""The canary against real partners: the simulators served on a real socket (with their fault
injection under ``/admin``), and the canary's topic on moto's SNS with an SQS queue subscribed to
it, as portal-api's is, to receive what the canary publishes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mvno.canary.integration import PRODUCER, Publisher
from mvno.canary.runner import Canary, http_client
from mvno.canary.settings import CanarySettings
from mvno.common.aws import aws_client
from mvno.common.bus.envelope import ReceivedEvent, decode
from mvno.common.bus.provision import provision
from mvno.common.bus.topology import Queue, Subscription, Topology, platform_topology
from mvno.devstack.servers import serve_app
from mvno.simulators.app import create_app
from mvno.simulators.settings import SimulatorSettings

PARTNER_PROBES = ("network-operator", "payments", "billing-platform")
"""Every probe but the portal journey (portal-api's tests walk that one)."""


@dataclass
class Partners:
    url: str
    admin: httpx.AsyncClient

    async def fault(self, partner: str, rule: dict[str, Any], operation: str = "") -> None:
        path = f"/admin/faults/{partner}" + (f"/{operation}" if operation else "")
        (await self.admin.put(path, json=rule)).raise_for_status()

    async def clear(self) -> None:
        (await self.admin.delete("/admin/faults")).raise_for_status()

    async def account(self, number: str) -> dict[str, Any]:
        answer = await self.admin.get(f"/admin/payments/accounts/{number}")
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body


@pytest.fixture
async def partners() -> AsyncIterator[Partners]:
    settings = SimulatorSettings(environment="test", number_pool_size=200, physical_sim_stock=50)
    async with (
        serve_app(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as admin,
    ):
        yield Partners(url, admin)


def canary_settings(partners_url: str, aws_endpoint_url: str, **overrides: Any) -> CanarySettings:
    values: dict[str, Any] = {
        "environment": "test",
        "aws_endpoint_url": aws_endpoint_url,
        "network_operator_url": partners_url + "/mno/v1",
        "payments_url": partners_url + "/payments/v1",
        "billing_platform_url": partners_url + "/billing/v1",
        "canary_probes": PARTNER_PROBES,
        "canary_interval_seconds": 0.5,
        "canary_latency_threshold_seconds": 1.0,
        "canary_timeout_seconds": 3.0,
        **overrides,
    }
    return CanarySettings(**values)


def watched_topology(prefix: str) -> Topology:
    """The canary's topic as in production, and a queue subscribed to it the way portal-api's is."""
    platform = platform_topology(prefix)
    (portal,) = [s for s in platform.subscriptions_of("portal-api") if s.producer == PRODUCER]
    return Topology(
        topics=(platform.topic(PRODUCER),),
        queues=(Queue("watcher", f"{prefix}-watcher-events", f"{prefix}-watcher-events-dlq"),),
        subscriptions=(Subscription(PRODUCER, "watcher", type_prefixes=portal.type_prefixes),),
    )


@dataclass
class Bus:
    sqs: Any
    queue_url: str
    publisher: Publisher
    sns: Any
    topic_arn: str

    async def received(self, count: int, *, within: float = 20) -> list[ReceivedEvent]:
        """The next ``count`` events on the watching queue (deleted as read), failing at the
        deadline with what did arrive."""
        events: list[ReceivedEvent] = []
        deadline = asyncio.get_running_loop().time() + within
        while len(events) < count and asyncio.get_running_loop().time() < deadline:
            answer = await self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            for message in answer.get("Messages", []):
                events.append(decode(message["Body"]))
                await self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        assert len(events) >= count, f"expected {count} events, got {events}"
        return events

    async def nothing_more(self) -> None:
        answer = await self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        assert answer.get("Messages", []) == []


@pytest.fixture
async def bus(clean_aws: str) -> AsyncIterator[Bus]:
    settings = CanarySettings(environment="test", aws_endpoint_url=clean_aws)
    provisioned = await provision(settings, watched_topology(settings.bus_prefix))
    async with aws_client(settings, "sns") as sns, aws_client(settings, "sqs") as sqs:
        topic_arn = provisioned.topic_arns[PRODUCER]
        yield Bus(sqs, provisioned.queue_urls["watcher"], Publisher(sns, topic_arn), sns, topic_arn)


@pytest.fixture
def make_canary(partners: Partners, clean_aws: str) -> Any:
    """``async with make_canary(**settings) as canary``: a canary probing the simulators."""

    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[Canary]:
        settings = canary_settings(partners.url, clean_aws, **overrides)
        async with http_client(settings) as http:
            yield Canary(settings, http)

    return make
