"""portal-api on a real socket, with its own migrated database, its consumer on the real bus
(SNS/SQS on moto's server), the real catalog service, and a stand-in for billing-sync's reads.

``billing_sync_stand_in`` serves billing-sync's agreed read contract (TMF654 buckets, TMF635 daily
usage) as a real HTTP server, because billing-sync is being built on another branch; tests stop it
or slow it down to see portal-api's degraded answers. Orders is not run here: purchases that reach
orders are tested end to end (tests/e2e/test_portal.py); here orders' address is a closed port, so
a purchase that passes portal-api's own checks gets a 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from mvno.catalog.__main__ import MIGRATIONS as CATALOG_MIGRATIONS
from mvno.catalog.app import create_app as create_catalog_app
from mvno.catalog.seed import seed
from mvno.catalog.settings import CatalogSettings
from mvno.common.aws import aws_client
from mvno.common.bus.consumer import Consumer, ConsumerSettings
from mvno.common.bus.envelope import new_event
from mvno.common.bus.provision import provision
from mvno.common.bus.topology import Topology, platform_topology
from mvno.common.db import create_engine, unit_of_work_factory
from mvno.common.service import migrate
from mvno.devstack.infrastructure import free_port
from mvno.devstack.pytest_plugin import RunningIssuer, template_database
from mvno.devstack.servers import serve_app
from mvno.portal_api.__main__ import MIGRATIONS
from mvno.portal_api.app import create_app
from mvno.portal_api.consumer import HANDLERS
from mvno.portal_api.repository import PortalUnitOfWork
from mvno.portal_api.settings import PortalApiSettings

API = "/portal/v1"
CUSTOMER_SCOPE = "portal"


def portal_topology(prefix: str) -> Topology:
    """The platform's own topics and portal-api's queue, subscribed exactly as in production."""
    platform = platform_topology(prefix)
    return Topology(
        topics=platform.topics,
        queues=(platform.queue("portal-api"),),
        subscriptions=platform.subscriptions_of("portal-api"),
    )


@pytest.fixture(scope="session")
async def portal_template(postgres_server_url: str) -> AsyncIterator[str]:
    async def prepare(database_url: str) -> None:
        settings = PortalApiSettings(environment="test", database_url=database_url)
        await asyncio.to_thread(migrate, settings, MIGRATIONS)

    async with template_database(postgres_server_url, "portal_api", prepare) as name:
        yield name


@pytest.fixture(scope="session")
async def catalog_template(postgres_server_url: str) -> AsyncIterator[str]:
    async def prepare(database_url: str) -> None:
        settings = CatalogSettings(environment="test", database_url=database_url)
        await asyncio.to_thread(migrate, settings, CATALOG_MIGRATIONS)
        await seed(settings)

    async with template_database(postgres_server_url, "catalog", prepare) as name:
        yield name


@dataclass
class BillingSyncStandIn:
    """Acts as billing-sync's read API (the agreed contract) until billing-sync itself lands."""

    buckets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    usage: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    delay_seconds: float = 0.0
    calls: int = 0
    url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()

        async def gate(request: Request) -> JSONResponse | None:
            self.calls += 1
            if not request.headers.get("authorization", "").startswith("Bearer "):
                return JSONResponse({"status": 401}, status_code=401)
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            return None

        @app.get("/tmf-api/balanceManagement/v4/bucket")
        async def bucket(
            request: Request, product_id: str = Query(alias="product.id")
        ) -> JSONResponse:
            refused = await gate(request)
            if refused is not None:
                return refused
            items = self.buckets.get(product_id, [])
            return JSONResponse(
                items, headers={"X-Total-Count": str(len(items)), "X-Result-Count": str(len(items))}
            )

        @app.get("/tmf-api/usageManagement/v4/usage")
        async def usage(
            request: Request,
            product_id: str = Query(alias="product.id"),
            gte: str = Query(alias="date.gte"),
            lte: str = Query(alias="date.lte"),
        ) -> JSONResponse:
            refused = await gate(request)
            if refused is not None:
                return refused
            items = [
                day for day in self.usage.get(product_id, []) if gte <= day["usageDate"] <= lte
            ]
            return JSONResponse(items)

        return app


def bucket(
    subscription_id: str,
    usage_type: str,
    remaining: float,
    initial: float,
    units: str,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": f"{subscription_id}-{usage_type}",
        "usageType": usage_type,
        "name": extra.pop("name", usage_type),
        "remainingValue": {"amount": remaining, "units": units},
        "initialValue": {"amount": initial, "units": units},
        "validFor": {"startDateTime": "2026-11-01T00:00:00Z", "endDateTime": None},
        "status": extra.pop("status", "active"),
        "product": {"id": subscription_id},
        "productOffering": None,
        **extra,
    }


@dataclass
class PortalWorld:
    base_url: str
    api: httpx.AsyncClient
    issuer: RunningIssuer
    settings: PortalApiSettings
    billing: BillingSyncStandIn
    sns: Any
    topic_arns: dict[str, str]
    stop_billing: Callable[[], Awaitable[None]]

    def customer(self, customer_id: str) -> dict[str, str]:
        return self.issuer.headers(customer_id, scopes=[CUSTOMER_SCOPE])

    async def publish(self, data: Any, *, source: str) -> str:
        """Publish an event on its producer's topic, as that producer's relay does."""
        event = new_event(data, source=f"urn:mvno:{source}")
        await self.sns.publish(
            TopicArn=self.topic_arns[source],
            Message=event.body,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value}
                for name, value in event.attributes.items()
            },
        )
        return event.id

    async def eventually(
        self,
        read: Callable[[], Awaitable[Any]],
        check: Callable[[Any], bool],
        *,
        within: float = 20,
    ) -> Any:
        """Read until ``check`` holds (the consumer works asynchronously), or fail at a deadline."""
        deadline = time.monotonic() + within
        value = await read()
        while not check(value):
            if time.monotonic() > deadline:
                raise AssertionError(f"never came true; last seen: {value}")
            await asyncio.sleep(0.1)
            value = await read()
        return value


@pytest.fixture
def portal_overrides() -> dict[str, Any]:
    """Settings a test gives its portal-api: ``@pytest.mark.parametrize("portal_overrides", ...)``."""
    return {}


@pytest.fixture
async def portal(
    portal_template: str,
    catalog_template: str,
    clean_aws: str,
    dev_issuer: RunningIssuer,
    copy_database: Any,
    portal_overrides: dict[str, Any],
) -> AsyncIterator[PortalWorld]:
    database_url = await copy_database("portal_api", portal_template)
    catalog_url = await copy_database("catalog", catalog_template)
    billing = BillingSyncStandIn()
    closed_port = free_port()  # nothing listens there: orders is "down" in these tests
    catalog_settings = CatalogSettings(
        environment="test",
        database_url=catalog_url,
        aws_endpoint_url=clean_aws,
        relay_enabled=False,
        **dev_issuer.settings,
    )
    async with contextlib.AsyncExitStack() as stack:
        catalog_base = await stack.enter_async_context(
            serve_app(create_catalog_app(catalog_settings))
        )
        # Its own stack, so a test can stop it (billing-sync down) before the others close.
        billing_stack = await stack.enter_async_context(contextlib.AsyncExitStack())
        billing.url = await billing_stack.enter_async_context(serve_app(billing.app()))

        settings = PortalApiSettings(
            **{
                "environment": "test",
                "database_url": database_url,
                "aws_endpoint_url": clean_aws,
                "catalog_url": catalog_base,
                "billing_sync_url": billing.url,
                "orders_url": f"http://127.0.0.1:{closed_port}",
                "token_url": dev_issuer.url + "/token",
                # Generous enough for a cold first call on a loaded two-core CI machine; the slow
                # billing-sync test waits several times longer than this.
                "upstream_timeout_seconds": 2.0,
                **dev_issuer.settings,
                **portal_overrides,
            }
        )
        provisioned = await provision(settings, portal_topology(settings.bus_prefix))
        sns = await stack.enter_async_context(aws_client(settings, "sns"))
        sqs = await stack.enter_async_context(aws_client(settings, "sqs"))
        engine = create_engine(settings)
        stack.push_async_callback(engine.dispose)
        stop = asyncio.Event()
        consumer = Consumer(
            name="portal-api",
            sqs=sqs,
            queue_url=provisioned.queue_urls["portal-api"],
            dlq_url=provisioned.dlq_urls["portal-api"],
            handlers=HANDLERS,
            unit_of_work=unit_of_work_factory(
                engine, source="urn:mvno:portal-api", kind=PortalUnitOfWork
            ),
            settings=ConsumerSettings(wait_time_seconds=1, dlq_poll_interval=3600),
        )
        consuming = asyncio.create_task(consumer.run(stop))

        async def stop_consumer() -> None:
            stop.set()
            await asyncio.wait_for(consuming, 30)

        stack.push_async_callback(stop_consumer)
        base_url = await stack.enter_async_context(serve_app(create_app(settings)))
        api = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=20))

        yield PortalWorld(
            base_url=base_url,
            api=api,
            issuer=dev_issuer,
            settings=settings,
            billing=billing,
            sns=sns,
            topic_arns=dict(provisioned.topic_arns),
            stop_billing=billing_stack.aclose,
        )
