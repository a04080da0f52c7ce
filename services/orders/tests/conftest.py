"""The orders service on a real socket, with its own migrated database holding a catalogue copy.

The copy is built the way production builds it: catalog's launch events, handled by the orders
consumer's handlers. Each test gets its own copy of that database (``CREATE DATABASE … TEMPLATE``)
and a KMS key on the local AWS endpoint; orders' events go to an observer queue tests read.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from mvno.common.aws import aws_client
from mvno.common.bus.envelope import decode, new_event
from mvno.common.bus.provision import provision
from mvno.common.bus.topology import Queue, Subscription, Topic, Topology
from mvno.common.crypto import ensure_kms_alias
from mvno.common.db import asyncpg_dsn, create_engine, unit_of_work_factory
from mvno.common.events.base import Allowance
from mvno.common.events.catalog import OfferingLaunched, OfferingPrice
from mvno.common.service import migrate
from mvno.devstack.pytest_plugin import RunningIssuer, template_database
from mvno.devstack.servers import serve_app
from mvno.devstack.testing import offering_price
from mvno.orders.__main__ import MIGRATIONS
from mvno.orders.app import create_app
from mvno.orders.consumer import HANDLERS
from mvno.orders.settings import OrdersSettings
from mvno.orders.unit_of_work import OrdersUnitOfWork

PREFIX = "/tmf-api/productOrderingManagement/v4"
LAUNCHED = datetime(2026, 1, 1, tzinfo=UTC)
VALID_SA_ID = "8001015009087"


def _price(price_id: str, amount: str, price_type: str = "oneTime", **extra: Any) -> OfferingPrice:
    return offering_price(price_id, amount, price_type, valid_from=LAUNCHED, **extra)


CATALOGUE = [
    OfferingLaunched(
        offering_id="starter-esim", version="1", name="Prepaid eSIM starter pack",
        channels=("app", "web"), payment_type="prepaid", product_kind="starter_pack",
        sim_kinds=("eSIM",), valid_from=LAUNCHED, prices=(_price("p-esim", "0.00"),),
    ),
    OfferingLaunched(
        offering_id="starter-psim", version="1", name="Prepaid SIM starter pack",
        channels=("app", "web", "branch", "call_centre"), payment_type="prepaid",
        product_kind="starter_pack", sim_kinds=("pSIM",), valid_from=LAUNCHED,
        prices=(_price("p-psim", "1.00"),),
    ),
    OfferingLaunched(
        offering_id="data-1gb-30d", version="1", name="1 GB data bundle",
        channels=("app", "web", "ussd"), payment_type="prepaid", product_kind="data_bundle",
        allowance=Allowance(data_mb=1024, validity_days=30), valid_from=LAUNCHED,
        prices=(_price("p-1gb", "85.00"),),
    ),
    OfferingLaunched(
        offering_id="airtime-r50", version="1", name="R50 airtime", channels=("app", "ussd"),
        payment_type="prepaid", product_kind="airtime", valid_from=LAUNCHED,
        prices=(_price("p-r50", "50.00"),),
    ),
    OfferingLaunched(
        offering_id="contract-10gb", version="1", name="Smart 10 GB contract",
        channels=("branch", "call_centre"), payment_type="postpaid", product_kind="contract",
        allowance=Allowance(data_mb=10240, voice_minutes=300, sms=300, validity_days=30),
        valid_from=LAUNCHED,
        prices=(_price("p-10gb", "399.00", "recurring", recurring_period="month"),),
    ),
]  # fmt: skip


async def deliver(settings: OrdersSettings, data: Any, *, source: str = "urn:mvno:catalog") -> None:
    """Hand another service's event to the orders consumer's handler, as the consumer would."""
    event = decode(new_event(data, source=source).body)
    engine = create_engine(settings)
    try:
        units = unit_of_work_factory(engine, source="urn:mvno:orders", kind=OrdersUnitOfWork)
        async with units() as uow:
            await HANDLERS[event.type](uow, event)
            await uow.commit()
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def orders_template(postgres_server_url: str) -> AsyncIterator[str]:
    """A migrated orders database whose catalogue copy holds :data:`CATALOGUE`, for tests to copy."""

    async def prepare(database_url: str) -> None:
        settings = OrdersSettings(environment="test", database_url=database_url)
        await asyncio.to_thread(migrate, settings, MIGRATIONS)
        for launched in CATALOGUE:
            await deliver(settings, launched)

    async with template_database(postgres_server_url, "orders", prepare) as name:
        yield name


@pytest.fixture(scope="session")
async def fresh_orders_template(postgres_server_url: str) -> AsyncIterator[str]:
    """A migrated orders database whose catalogue copy has received nothing yet."""

    async def prepare(database_url: str) -> None:
        settings = OrdersSettings(environment="test", database_url=database_url)
        await asyncio.to_thread(migrate, settings, MIGRATIONS)

    async with template_database(postgres_server_url, "orders_fresh", prepare) as name:
        yield name


@pytest.fixture
def fresh_orders(
    fresh_orders_template: str, clean_aws: str, dev_issuer: RunningIssuer, copy_database: Any
) -> Any:
    """Opens the orders world on a fresh database (``overrides`` over the test settings); its
    ``launch_catalogue()`` delivers catalog's launches of :data:`CATALOGUE`."""

    def open_world(**overrides: Any) -> AbstractAsyncContextManager[OrdersWorld]:
        return orders_world(
            fresh_orders_template, clean_aws, dev_issuer, copy_database, **overrides
        )

    return open_world


@dataclass
class OrdersWorld:
    base_url: str
    api: httpx.AsyncClient
    issuer: RunningIssuer
    settings: OrdersSettings
    sqs: Any
    observer_url: str

    def client(
        self, client_id: str = "bank-app", scopes: tuple[str, ...] = ("orders:write",)
    ) -> dict[str, str]:
        token = self.issuer.issuer.issue(
            client_id, audience=self.issuer.audience, scopes=scopes, client_id=client_id
        )
        return {"Authorization": f"Bearer {token}"}

    async def events(self, *, within: float = 15, until: int = 1) -> list[dict[str, Any]]:
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

    async def database(self) -> asyncpg.Connection:
        return await asyncpg.connect(asyncpg_dsn(self.settings.database_url))

    async def deliver(self, data: Any) -> None:
        """Hand another service's event to this orders service's consumer."""
        await deliver(self.settings, data)

    async def launch_catalogue(self) -> None:
        """Deliver catalog's launches of :data:`CATALOGUE`, as on a fresh platform."""
        for launched in CATALOGUE:
            await deliver(self.settings, launched)


def observer_topology(prefix: str) -> Topology:
    """Orders' topic, its provisioning queue (named as in production) and a queue tests read."""
    provisioning = "orders-provisioning"
    return Topology(
        topics=(Topic("orders", f"{prefix}-orders-events"),),
        queues=(
            Queue("observer", f"{prefix}-observer", f"{prefix}-observer-dlq"),
            Queue(
                provisioning,
                f"{prefix}-{provisioning}-events",
                f"{prefix}-{provisioning}-events-dlq",
            ),
        ),
        subscriptions=(
            Subscription("orders", "observer", type_prefixes=("orders.",)),
            Subscription("orders", provisioning, type_prefixes=("orders.provisioning.",)),
        ),
    )


@pytest.fixture
async def orders(
    orders_template: str,
    clean_aws: str,
    dev_issuer: RunningIssuer,
    copy_database: Any,
) -> AsyncIterator[OrdersWorld]:
    # No provisioning worker runs here to relay the API's events: the API relays them itself.
    async with orders_world(
        orders_template, clean_aws, dev_issuer, copy_database, relay_enabled=True
    ) as world:
        yield world


@pytest.fixture
async def orders_as_deployed(
    orders_template: str,
    clean_aws: str,
    dev_issuer: RunningIssuer,
    copy_database: Any,
) -> AsyncIterator[OrdersWorld]:
    """The orders world with the API's settings left as deployed: it does not relay its outbox."""
    async with orders_world(orders_template, clean_aws, dev_issuer, copy_database) as world:
        yield world


@asynccontextmanager
async def orders_world(
    orders_template: str,
    clean_aws: str,
    dev_issuer: RunningIssuer,
    copy_database: Any,
    **overrides: Any,
) -> AsyncIterator[OrdersWorld]:
    """The orders API on a copy of the template database (``overrides`` over the test
    settings), its topology and KMS key."""
    database_url = await copy_database("orders", orders_template)
    settings = OrdersSettings(
        environment="test",
        database_url=database_url,
        aws_endpoint_url=clean_aws,
        **dev_issuer.settings,
        **overrides,
    )
    provisioned = await provision(settings, observer_topology(settings.bus_prefix))
    async with aws_client(settings, "kms") as kms:
        await ensure_kms_alias(kms, settings.personal_data_kms_key, "test")
    async with (
        serve_app(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url + PREFIX, timeout=30) as api,
        aws_client(settings, "sqs") as sqs,
    ):
        yield OrdersWorld(
            base_url, api, dev_issuer, settings, sqs, provisioned.queue_urls["observer"]
        )


@dataclass
class ProvisioningWorld:
    orders: OrdersWorld
    simulators: httpx.AsyncClient
    settings: OrdersSettings
    published: list[dict[str, Any]] = field(default_factory=list)
    """Every event orders published, as the observer queue received it."""

    async def order_state(
        self, order_id: str, *, until: set[str], within: float = 60
    ) -> dict[str, Any]:
        """The order once it reaches one of ``until`` (polling its API), or as it is at the deadline."""
        deadline = time.monotonic() + within
        while True:
            order = (
                await self.orders.api.get(f"/productOrder/{order_id}", headers=self.orders.client())
            ).json()
            if order["state"] in until or time.monotonic() > deadline:
                return order
            await asyncio.sleep(0.1)

    async def answer_billing_accounts(self, stop: asyncio.Event) -> None:
        """Act as billing-sync: every activated line gets a billing account."""
        from mvno.common.events.billing import AccountCreated

        while not stop.is_set():
            for event in await self.orders.events(within=0.5):
                self.published.append(event)
                if event["type"] == "orders.subscription.activated.v1":
                    data = event["data"]
                    await deliver(
                        self.settings,
                        AccountCreated(
                            billing_account_id=f"ba-{data['subscription_id'][:8]}",
                            subscription_id=data["subscription_id"],
                            customer_id=data["customer_id"],
                            order_id=data["order_id"],
                        ),
                        source="urn:mvno:billing-sync",
                    )


@pytest.fixture
async def provisioning(orders: OrdersWorld, tmp_path: Any) -> AsyncIterator[ProvisioningWorld]:
    """The orders world plus the partner simulators, a provisioning worker, and a stand-in
    billing-sync answering activations with billing accounts."""
    from mvno.orders.provisioning import worker
    from mvno.simulators.app import create_app as create_simulators
    from mvno.simulators.settings import SimulatorSettings

    simulators_app = create_simulators(SimulatorSettings(environment="test", seed=7))
    async with (
        serve_app(simulators_app) as simulators_url,
        httpx.AsyncClient(base_url=simulators_url, timeout=30) as simulators,
    ):
        settings = orders.settings.model_copy(
            update={
                "network_operator_url": simulators_url + "/mno/v1",
                "payments_url": simulators_url + "/payments/v1",
                "step_retry_base_seconds": 0.05,
                "step_retry_max_seconds": 0.3,
                "circuit_open_seconds": 1.0,
                "billing_account_timeout_seconds": 10.0,
                "partner_timeout_seconds": 2.0,
            }
        )
        world = ProvisioningWorld(orders, simulators, settings)
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(worker.run(settings, stop)),
            asyncio.create_task(world.answer_billing_accounts(stop)),
        ]
        try:
            yield world
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
