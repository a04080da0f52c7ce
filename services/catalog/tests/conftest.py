"""A catalog served on a real socket, on its own migrated and seeded database, for each test.

The seeded database is built once per session and copied (``CREATE DATABASE … TEMPLATE``) for
each test, so a test may write anything without touching another. The service publishes to a
``catalog`` topic fanned out to one observer queue, which tests read to see the events.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mvno.catalog.__main__ import MIGRATIONS
from mvno.catalog.app import create_app
from mvno.catalog.seed import seed
from mvno.catalog.settings import CatalogSettings
from mvno.common.aws import aws_client
from mvno.common.bus.provision import provision
from mvno.common.bus.topology import Queue, Subscription, Topic, Topology
from mvno.common.service import migrate
from mvno.devstack.pytest_plugin import RunningIssuer, template_database
from mvno.devstack.servers import serve_app

PREFIX = "/tmf-api/productCatalogManagement/v4"
STAFF_SCOPE = "catalog:write"


@pytest.fixture(scope="session")
async def seeded_template(postgres_server_url: str) -> AsyncIterator[str]:
    """The name of a migrated, seeded catalog database that tests copy."""

    async def prepare(database_url: str) -> None:
        settings = CatalogSettings(environment="test", database_url=database_url)
        await asyncio.to_thread(migrate, settings, MIGRATIONS)
        # The seed's launch events stay in the copies' outboxes: each test's relay publishes them.
        await seed(settings)

    async with template_database(postgres_server_url, "catalog", prepare) as name:
        yield name


@dataclass
class CatalogWorld:
    base_url: str
    api: httpx.AsyncClient
    issuer: RunningIssuer
    settings: CatalogSettings
    sqs: Any
    observer_url: str

    @property
    def staff(self) -> dict[str, str]:
        return self.issuer.headers("staff-thandi", scopes=[STAFF_SCOPE])

    @property
    def customer(self) -> dict[str, str]:
        return self.issuer.headers("customer-sipho", scopes=["portal"])

    async def events(self, *, until: int = 1, within: float = 20) -> list[dict[str, Any]]:
        """Read the observer queue until ``until`` events arrived or ``within`` seconds passed."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        while len(seen) < until and time.monotonic() < deadline:
            answer = await self.sqs.receive_message(
                QueueUrl=self.observer_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            for message in answer.get("Messages", []):
                seen.append(json.loads(message["Body"]))
                await self.sqs.delete_message(
                    QueueUrl=self.observer_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return seen

    async def events_of(
        self, event_type: str, subject: str, *, within: float = 20
    ) -> list[dict[str, Any]]:
        """Events of one type about one offering, waiting until at least one arrived."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + within
        while not found and time.monotonic() < deadline:
            batch = await self.events(until=1, within=2)
            found += [e for e in batch if e["type"] == event_type and e.get("subject") == subject]
        return found


def observer_topology(prefix: str) -> Topology:
    return Topology(
        topics=(Topic("catalog", f"{prefix}-catalog-events"),),
        queues=(Queue("observer", f"{prefix}-observer", f"{prefix}-observer-dlq"),),
        subscriptions=(Subscription("catalog", "observer", type_prefixes=("catalog.",)),),
    )


@pytest.fixture
async def catalog(
    seeded_template: str,
    clean_aws: str,
    dev_issuer: RunningIssuer,
    copy_database: Any,
) -> AsyncIterator[CatalogWorld]:
    database_url = await copy_database("catalog", seeded_template)
    settings = CatalogSettings(
        environment="test",
        database_url=database_url,
        aws_endpoint_url=clean_aws,
        **dev_issuer.settings,
    )
    provisioned = await provision(settings, observer_topology(settings.bus_prefix))
    async with (
        serve_app(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url + PREFIX, timeout=20) as api,
        aws_client(settings, "sqs") as sqs,
    ):
        yield CatalogWorld(
            base_url, api, dev_issuer, settings, sqs, provisioned.queue_urls["observer"]
        )
