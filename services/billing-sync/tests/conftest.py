"""billing-sync against real PostgreSQL, the local AWS endpoint (moto's server) and the partner
simulators served on a real socket.

Each test gets its own copy of a migrated database whose catalogue copy was built from catalog's
launch events by the consumer's own handlers. Other services' events are handed to the consumer's
handlers exactly as the consumer would (decoded envelopes, one unit of work each).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest

from mvno.billing_sync.__main__ import MIGRATIONS
from mvno.billing_sync.clients import open_partners
from mvno.billing_sync.consumer import HANDLERS
from mvno.billing_sync.settings import BillingSyncSettings
from mvno.billing_sync.sync import AccountSync
from mvno.billing_sync.worker import units_of_work
from mvno.common.bus.envelope import decode, new_event
from mvno.common.db import asyncpg_dsn, create_engine
from mvno.common.events.base import Allowance, Money
from mvno.common.events.catalog import OfferingLaunched, OfferingPrice
from mvno.common.events.orders import (
    AirtimeToppedUp,
    BundlePurchased,
    SubscriptionActivated,
)
from mvno.common.http import create_partner_session
from mvno.common.service import migrate
from mvno.devstack.pytest_plugin import RunningIssuer, template_database
from mvno.devstack.servers import serve_app
from mvno.devstack.testing import offering_price

LAUNCHED = datetime(2026, 1, 1, tzinfo=UTC)


def _price(price_id: str, amount: str, price_type: str = "oneTime", **extra: Any) -> OfferingPrice:
    return offering_price(price_id, amount, price_type, valid_from=LAUNCHED, **extra)


CATALOGUE = [
    OfferingLaunched(
        offering_id="starter-psim", version="1", name="Prepaid SIM starter pack",
        channels=("app",), payment_type="prepaid", product_kind="starter_pack",
        sim_kinds=("pSIM",), valid_from=LAUNCHED,
        prices=(
            _price("p-psim", "1.00"),
            _price("p-oob-mb", "0.10", "usage", unit_of_measure="MB"),
            _price("p-oob-min", "0.90", "usage", unit_of_measure="minute"),
            _price("p-oob-sms", "0.50", "usage", unit_of_measure="SMS"),
        ),
    ),
    OfferingLaunched(
        offering_id="contract-10gb", version="1", name="Smart 10 GB contract",
        channels=("branch",), payment_type="postpaid", product_kind="contract",
        allowance=Allowance(data_mb=10240, voice_minutes=300, sms=300, validity_days=30),
        valid_from=LAUNCHED,
        prices=(_price("p-10gb", "399.00", "recurring", recurring_period="month"),),
    ),
    OfferingLaunched(
        offering_id="data-1gb-30d", version="1", name="1 GB data bundle",
        channels=("app",), payment_type="prepaid", product_kind="data_bundle",
        allowance=Allowance(data_mb=1024, validity_days=30), valid_from=LAUNCHED,
        prices=(_price("p-1gb", "85.00"),),
    ),
]  # fmt: skip


async def deliver(
    settings: BillingSyncSettings,
    data: Any,
    *,
    source: str = "urn:mvno:orders",
    time: datetime | None = None,
) -> None:
    """Hand another service's event to billing-sync's handler, as its consumer would."""
    event = decode(new_event(data, source=source).body)
    if time is not None:
        event = dataclasses.replace(event, time=time)
    engine = create_engine(settings)
    try:
        async with units_of_work(engine, settings)() as uow:
            await HANDLERS[event.type](uow, event)
            await uow.commit()
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def billing_template(postgres_server_url: str) -> AsyncIterator[str]:
    async def prepare(database_url: str) -> None:
        settings = BillingSyncSettings(environment="test", database_url=database_url)
        await asyncio.to_thread(migrate, settings, MIGRATIONS)
        for launched in CATALOGUE:
            await deliver(settings, launched, source="urn:mvno:catalog")

    async with template_database(postgres_server_url, "billing_sync", prepare) as name:
        yield name


@pytest.fixture(scope="session")
async def fresh_billing_template(postgres_server_url: str) -> AsyncIterator[str]:
    """A migrated billing-sync database whose catalogue copy has received nothing yet."""

    async def prepare(database_url: str) -> None:
        settings = BillingSyncSettings(environment="test", database_url=database_url)
        await asyncio.to_thread(migrate, settings, MIGRATIONS)

    async with template_database(postgres_server_url, "billing_fresh", prepare) as name:
        yield name


@dataclass
class FreshBilling:
    """billing-sync's API on a fresh database, and catalog's launches to deliver to it."""

    api: httpx.AsyncClient
    settings: BillingSyncSettings

    async def launch_catalogue(self) -> None:
        for launched in CATALOGUE:
            await deliver(self.settings, launched, source="urn:mvno:catalog")


@pytest.fixture
async def fresh_billing(
    fresh_billing_template: str, clean_aws: str, dev_issuer: RunningIssuer, copy_database: Any
) -> AsyncIterator[FreshBilling]:
    from mvno.billing_sync.app import create_app

    settings = BillingSyncSettings(
        environment="test",
        database_url=await copy_database("billing_sync", fresh_billing_template),
        aws_endpoint_url=clean_aws,
        **dev_issuer.settings,
    )
    async with (
        serve_app(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as api,
    ):
        yield FreshBilling(api, settings)


_numbers = iter(range(1_000_000, 9_999_999))


def new_msisdn() -> str:
    return f"+2782{next(_numbers):07d}"


@dataclass
class BillingWorld:
    settings: BillingSyncSettings
    simulators: httpx.AsyncClient
    engine: Any
    sync: AccountSync
    issuer: RunningIssuer
    partners: Any

    async def deliver(self, data: Any, *, time: datetime | None = None) -> None:
        await deliver(self.settings, data, time=time)

    async def activate(
        self,
        *,
        subscription_id: str | None = None,
        customer_id: str = "cust-1",
        offering_id: str = "starter-psim",
        msisdn: str | None = None,
        order_id: str | None = "order-1",
    ) -> SubscriptionActivated:
        activated = SubscriptionActivated(
            subscription_id=subscription_id or f"sub-{random.randrange(10**9)}",
            customer_id=customer_id,
            sequence=1,
            order_id=order_id,
            msisdn=msisdn or new_msisdn(),
            offering_id=offering_id,
            payment_type="prepaid",
            sim_kind="pSIM",
        )
        await self.deliver(activated)
        return activated

    async def buy_bundle(
        self,
        subscription_id: str,
        *,
        data_mb: int = 0,
        voice_minutes: int = 0,
        sms: int = 0,
        days: int = 30,
        start: datetime | None = None,
        item: str | None = None,
    ) -> BundlePurchased:
        start = start or datetime.now(UTC) - timedelta(days=1)
        bought = BundlePurchased(
            subscription_id=subscription_id,
            customer_id="cust-1",
            order_id="order-b",
            order_item_id=item or f"item-{random.randrange(10**9)}",
            offering_id="data-1gb-30d",
            allowance=Allowance(
                data_mb=data_mb, voice_minutes=voice_minutes, sms=sms, validity_days=days
            ),
            price=Money(amount=Decimal("85.00")),
            valid_from=start,
            valid_to=start + timedelta(days=days),
        )
        await self.deliver(bought)
        return bought

    async def top_up(self, subscription_id: str, amount: str, *, item: str | None = None) -> None:
        await self.deliver(
            AirtimeToppedUp(
                subscription_id=subscription_id,
                customer_id="cust-1",
                order_id="order-t",
                order_item_id=item or f"item-{random.randrange(10**9)}",
                amount=Money(amount=Decimal(amount)),
            )
        )

    async def database(self) -> asyncpg.Connection:
        return await asyncpg.connect(asyncpg_dsn(self.settings.database_url))

    async def published(self, event_type: str | None = None) -> list[dict[str, Any]]:
        connection = await self.database()
        try:
            rows = await connection.fetch("SELECT event_type, body FROM outbox ORDER BY seq")
        finally:
            await connection.close()
        return [
            json.loads(r["body"])
            for r in rows
            if event_type is None or r["event_type"] == event_type
        ]

    async def fault(self, target: str, **rule: Any) -> None:
        answer = await self.simulators.put(f"/admin/faults/{target}", json=rule)
        assert answer.status_code == 200, answer.text

    async def billing_reachable(self, within: float = 10) -> None:
        """Wait until calls go through again (the circuit closes after its open period)."""
        from mvno.common.partners import PartnerError

        deadline = asyncio.get_running_loop().time() + within
        while True:
            try:
                await self.partners.billing.call("GET", "/health")
                return
            except PartnerError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def run_sync_until_idle(self, *, rounds: int = 200) -> None:
        """Run due operations until none is pending (retries included), or fail the test."""
        for _ in range(rounds):
            await self.sync.run_due()
            connection = await self.database()
            try:
                pending = await connection.fetchval(
                    "SELECT count(*) FROM account_operations WHERE status = 'pending'"
                )
            finally:
                await connection.close()
            if pending == 0:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("account operations still pending")


@pytest.fixture
async def world(
    billing_template: str, clean_aws: str, dev_issuer: RunningIssuer, copy_database: Any
) -> AsyncIterator[BillingWorld]:
    from mvno.simulators.app import create_app as create_simulators
    from mvno.simulators.settings import SimulatorSettings

    database_url = await copy_database("billing_sync", billing_template)
    simulators_app = create_simulators(SimulatorSettings(environment="test", seed=7))
    async with (
        serve_app(simulators_app) as simulators_url,
        httpx.AsyncClient(base_url=simulators_url, timeout=30) as simulators,
    ):
        settings = BillingSyncSettings(
            environment="test",
            database_url=database_url,
            aws_endpoint_url=clean_aws,
            billing_platform_url=simulators_url + "/billing/v1",
            network_operator_url=simulators_url + "/mno/v1",
            sync_retry_base_seconds=0.05,
            sync_retry_max_seconds=0.1,
            sync_attempts=8,
            circuit_open_seconds=0.2,
            partner_timeout_seconds=1.0,
            **dev_issuer.settings,
        )
        engine = create_engine(settings)
        async with create_partner_session(settings, timeout=1.0) as http:
            partners = open_partners(settings, http)
            sync = AccountSync(
                unit_of_work=units_of_work(engine, settings),
                billing=partners.billing,
                settings=settings,
                rng=random.Random(1),
            )
            try:
                yield BillingWorld(settings, simulators, engine, sync, dev_issuer, partners)
            finally:
                await engine.dispose()
