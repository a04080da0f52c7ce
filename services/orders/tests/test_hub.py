"""Channel callbacks: hubs registered over HTTP, webhooks delivered to a real receiver, signed.

The orders app is served on a real socket, on its own migrated database (a copy of a template
migrated once per session), with its delivery worker running; a receiver app on another socket
records what it is sent and answers what a test tells it to. State changes are enqueued the way
the order handlers do: in a transaction of the test's own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mvno.common.db import unit_of_work_factory
from mvno.common.events.orders import OrderItemProgress, OrderStateChanged
from mvno.common.service import migrate
from mvno.common.tracing import trace_header
from mvno.devstack.infrastructure import free_port
from mvno.devstack.pytest_plugin import RunningIssuer, template_database
from mvno.devstack.servers import serve_app
from mvno.orders.__main__ import MIGRATIONS
from mvno.orders.app import create_app
from mvno.orders.hub.callbacks import check_callback
from mvno.orders.hub.delivery import DeliveryWorker, enqueue_notifications
from mvno.orders.hub.domain import (
    CallbackRefused,
    Delivery,
    EventQuery,
    Hub,
    InvalidQuery,
    new_secret,
)
from mvno.orders.hub.tables import webhook_deliveries
from mvno.orders.settings import OrdersSettings
from mvno.orders.unit_of_work import OrdersUnitOfWork


def units_of_work(engine: AsyncEngine) -> Callable[[], OrdersUnitOfWork]:
    """Units of work of the orders' kind on ``engine``, as the service opens them."""
    return unit_of_work_factory(engine, source="urn:mvno:orders", kind=OrdersUnitOfWork)


PREFIX = "/tmf-api/productOrderingManagement/v4"
SCOPE = "orders:write"
STATE_CHANGES = "eventType=ProductOrderStateChangeEvent"


# --- the receiving channel -----------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """A channel's listener: records every request; answers per path what it is told to.

    ``script[path]`` is a list of statuses answered in turn (0: hang until released), then
    ``default[path]``, else 204.
    """

    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    default: dict[str, int] = field(default_factory=dict)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def listen(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        self.received.append(Received(path, dict(request.headers), body))
        scripted = self.script.get(path)
        status = scripted.pop(0) if scripted else self.default.get(path, 204)
        if status == 0:
            await asyncio.wait_for(self.release.wait(), 60)
            status = 204
        return Response(status_code=status)


# --- the served orders app -----------------------------------------------------------------------


@dataclass
class World:
    api: httpx.AsyncClient
    issuer: RunningIssuer
    receiver: Receiver
    engine: AsyncEngine
    settings: OrdersSettings

    def client(self, name: str, *, scopes: tuple[str, ...] = (SCOPE,)) -> dict[str, str]:
        token = self.issuer.issuer.issue(
            f"svc-{name}", audience=self.issuer.audience, scopes=scopes, client_id=name
        )
        return {"Authorization": f"Bearer {token}"}

    async def register(
        self,
        path: str,
        *,
        client: str = "channel-app",
        query: str | None = STATE_CHANGES,
        callback: str | None = None,
    ) -> dict[str, Any]:
        body = {"callback": callback or self.receiver.url + path}
        if query is not None:
            body["query"] = query
        response = await self.api.post("/hub", headers=self.client(client), json=body)
        assert response.status_code == 201, response.text
        registered: dict[str, Any] = response.json()
        return registered

    async def log(self, hub_id: str, *, client: str = "channel-app") -> list[dict[str, Any]]:
        response = await self.api.get(
            f"/hub/{hub_id}/delivery", params={"limit": 200}, headers=self.client(client)
        )
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()
        return entries

    async def change_state(
        self,
        event: OrderStateChanged,
        *,
        event_id: str | None = None,
        placed_by: str = "channel-app",
    ) -> int:
        """Enqueue ``event``'s notifications and commit, as the order handlers do."""
        async with units_of_work(self.engine)() as uow:
            owed = await enqueue_notifications(
                uow.hubs, event, event_id=event_id or str(uuid.uuid4()), client_id=placed_by
            )
            await uow.commit()
            return owed


def order_event(state: str = "inProgress", *, channel: str = "app") -> OrderStateChanged:
    return OrderStateChanged(
        order_id=f"order-{uuid.uuid4().hex[:8]}",
        customer_id=f"customer-{uuid.uuid4().hex[:8]}",
        channel=channel,
        state=state,
        previous_state="acknowledged",
        sequence=2,
        items=(
            OrderItemProgress(item_id="1", action="add", offering_id="offer-data-5gb", state=state),
        ),
    )


async def until(
    check: Callable[[], Awaitable[Any]], *, within: float = 30.0, what: str = "the condition"
) -> Any:
    """Poll ``check`` until it returns something truthy, and return that; fail at the deadline."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s (last: {result!r})")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
async def migrated_template(postgres_server_url: str) -> AsyncIterator[str]:
    """A migrated orders database, copied for each test."""

    async def prepare(database_url: str) -> None:
        settings = OrdersSettings(environment="test", database_url=database_url)
        await asyncio.to_thread(migrate, settings, MIGRATIONS)

    async with template_database(postgres_server_url, "orders_hub", prepare) as name:
        yield name


@pytest.fixture
async def orders_database(
    migrated_template: str, copy_database: Callable[[str, str], Awaitable[str]]
) -> str:
    """A migrated orders database of the test's own."""
    return await copy_database("orders_hub", migrated_template)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A channel's listener served on a real socket."""
    listener = Receiver()
    app = Starlette(routes=[Route("/{path:path}", listener.listen, methods=["POST"])])
    async with serve_app(app) as url:
        listener.url = url
        try:
            yield listener
        finally:
            listener.release.set()  # a hanging answer ends before the server stops


StartWorld = Callable[..., Awaitable[World]]


@pytest.fixture
async def start_world(
    orders_database: str, receiver: Receiver, aws_endpoint_url: str, dev_issuer: RunningIssuer
) -> AsyncIterator[StartWorld]:
    """Serve the orders app; keyword arguments override its settings."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> World:
            settings = OrdersSettings(
                **{
                    "environment": "test",
                    "database_url": orders_database,
                    "aws_endpoint_url": aws_endpoint_url,
                    "relay_enabled": False,
                    "hub_delivery_attempts": 3,
                    "hub_retry_base_seconds": 0.05,
                    "hub_retry_max_seconds": 0.2,
                    "hub_poll_interval_seconds": 0.05,
                    "hub_delivery_timeout_seconds": 3.0,
                    **dev_issuer.settings,
                    **overrides,
                }
            )
            base_url = await stack.enter_async_context(serve_app(create_app(settings)))
            api = await stack.enter_async_context(
                httpx.AsyncClient(base_url=base_url + PREFIX, timeout=30)
            )
            engine = create_async_engine(orders_database)
            stack.push_async_callback(engine.dispose)
            return World(api, dev_issuer, receiver, engine, settings)

        yield start


# --- registration ----------------------------------------------------------------------------


async def test_a_channel_manages_only_its_own_hubs_with_an_orders_write_token(
    start_world: StartWorld,
) -> None:
    world = await start_world()
    body = {"callback": world.receiver.url + "/app", "query": STATE_CHANGES}

    anonymous = await world.api.post("/hub", json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    unscoped = await world.api.post("/hub", json=body, headers=world.client("app", scopes=()))
    assert unscoped.status_code == 403

    created = await world.api.post("/hub", json=body, headers=world.client("channel-app"))
    assert created.status_code == 201, created.text
    hub = created.json()
    assert hub["callback"] == body["callback"]
    assert hub["query"] == STATE_CHANGES
    assert hub["secret"].startswith("whsec_")
    assert created.headers["Location"] == f"{PREFIX}/hub/{hub['id']}"
    assert created.headers["Cache-Control"] == "no-store"

    own = await world.api.get(f"/hub/{hub['id']}", headers=world.client("channel-app"))
    assert own.status_code == 200
    assert own.json() == {"id": hub["id"], "callback": body["callback"], "query": STATE_CHANGES}

    other = world.client("channel-ussd")
    for method, path in (
        ("GET", f"/hub/{hub['id']}"),
        ("GET", f"/hub/{hub['id']}/delivery"),
        ("DELETE", f"/hub/{hub['id']}"),
    ):
        refused = await world.api.request(method, path, headers=other)
        assert refused.status_code == 404, (method, path)
        assert refused.json()["type"] == "urn:mvno:problem:not-found"
    assert (
        await world.api.get(f"/hub/{hub['id']}", headers=world.client("channel-app"))
    ).status_code == 200

    gone = await world.api.delete(f"/hub/{hub['id']}", headers=world.client("channel-app"))
    assert gone.status_code == 204
    assert (
        await world.api.get(f"/hub/{hub['id']}", headers=world.client("channel-app"))
    ).status_code == 404
    assert (
        await world.api.delete(f"/hub/{hub['id']}", headers=world.client("channel-app"))
    ).status_code == 404
    for unknown in ("not-a-hub-id", "%00", "x" * 300):
        assert (
            await world.api.get(f"/hub/{unknown}", headers=world.client("channel-app"))
        ).status_code == 404, unknown


async def test_callbacks_and_queries_that_cannot_be_honoured_are_refused(
    start_world: StartWorld,
) -> None:
    world = await start_world()
    headers = world.client("channel-app")
    for callback in (
        "ftp://files.example.com/drop",
        "https://user:password@channel.example.com/hook",
        "not a url",
        "https:///no-host",
        "https://channel.example.com:99999/hook",
    ):
        refused = await world.api.post("/hub", headers=headers, json={"callback": callback})
        assert refused.status_code == 422, callback
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["errors"][0]["pointer"] == "#/body/callback", callback
    for query in (
        "eventType=ProductOrderCreateEvent",
        "event.productOrder.state=shipped",
        "customer.id=42",
        "eventType",
    ):
        refused = await world.api.post(
            "/hub", headers=headers, json={"callback": world.receiver.url, "query": query}
        )
        assert refused.status_code == 422, query
        assert refused.json()["errors"][0]["pointer"] == "#/body/query", query
    missing = await world.api.post("/hub", headers=headers, json={"query": STATE_CHANGES})
    assert missing.status_code == 422


async def test_production_calls_only_https_callbacks_on_public_addresses() -> None:
    for callback in (
        "http://203.0.113.10/hook",  # plain http
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",  # resolves to loopback
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",  # the cloud metadata endpoint
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://[::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",  # private IPv4 in IPv6 clothing
        "https://[fe80::1]/hook",
        "https://0.0.0.0/hook",
    ):
        with pytest.raises(CallbackRefused):
            await check_callback(callback, production=True)
    await check_callback("https://8.8.8.8:8443/hook", production=True)
    # Outside production a developer's machine receives webhooks.
    await check_callback("http://127.0.0.1:9000/hook", production=False)
    await check_callback("http://localhost/hook", production=False)


def test_an_event_query_filters_on_event_type_state_and_channel() -> None:
    completed_or_failed = EventQuery.parse(
        "eventType=ProductOrderStateChangeEvent&event.productOrder.state=completed,failed"
    )
    assert completed_or_failed.wants(order_event("completed"))
    assert completed_or_failed.wants(order_event("failed"))
    assert not completed_or_failed.wants(order_event("inProgress"))
    ussd = EventQuery.parse("event.productOrder.channel.id=ussd")
    assert ussd.wants(order_event(channel="ussd"))
    assert not ussd.wants(order_event(channel="app"))
    assert EventQuery.parse(None).wants(order_event())
    assert EventQuery.parse("").wants(order_event())
    with pytest.raises(InvalidQuery):
        EventQuery.parse("event.productOrder.channel.id=fax")


# --- delivery ---------------------------------------------------------------------------------


async def test_a_delivered_webhook_is_signed_with_the_hub_secret_and_carries_no_personal_data(
    start_world: StartWorld,
) -> None:
    world = await start_world()
    hub = await world.register("/app")
    completed_only = await world.register(
        "/completed", query=STATE_CHANGES + "&event.productOrder.state=completed"
    )
    event = order_event("inProgress")
    event_id = str(uuid.uuid4())

    assert await world.change_state(event, event_id=event_id) == 1  # not the completed-only hub
    assert await world.change_state(event, event_id=event_id) == 0  # handled twice: owed once

    [received] = await until(lambda: _at(world, "/app"), what="the webhook")
    payload = Webhook(hub["secret"]).verify(received.body, received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(completed_only["secret"]).verify(received.body, received.headers)
    tampered = received.body.replace(b"inProgress", b"completed!")
    with pytest.raises(WebhookVerificationError):
        Webhook(hub["secret"]).verify(tampered, received.headers)

    assert received.headers["content-type"] == "application/json"
    assert payload["eventId"] == event_id
    assert payload["eventType"] == "ProductOrderStateChangeEvent"
    assert payload["eventTime"]
    order = payload["event"]["productOrder"]
    assert order["id"] == event.order_id
    assert order["href"] == f"{PREFIX}/productOrder/{event.order_id}"
    assert order["state"] == "inProgress"
    assert order["channel"] == [{"id": "app", "@referredType": "Channel"}]
    assert order["productOrderItem"] == [
        {
            "id": "1",
            "action": "add",
            "state": "inProgress",
            "productOffering": {"id": "offer-data-5gb"},
            "@type": "ProductOrderItem",
        }
    ]
    assert event.customer_id.encode() not in received.body

    [entry] = await until(lambda: _delivered(world, hub["id"]), what="the delivered log entry")
    assert entry["id"] == received.webhook_id
    assert entry["eventId"] == event_id
    assert entry["attempts"] == 1
    assert entry["lastStatusCode"] == 204
    assert "nextAttemptAt" not in entry
    assert world.receiver.at("/completed") == []
    assert await world.log(completed_only["id"]) == []


async def test_server_errors_and_timeouts_are_retried_until_the_webhook_is_delivered(
    start_world: StartWorld,
) -> None:
    world = await start_world(hub_delivery_attempts=4)
    hub = await world.register("/flaky")
    world.receiver.script["/flaky"] = [500, 0, 503, 200]  # 0: no answer before the timeout
    await world.change_state(order_event("failed"))

    [entry] = await until(lambda: _delivered(world, hub["id"]), what="delivery after retries")
    attempts = world.receiver.at("/flaky")
    assert len(attempts) == 4
    assert {a.webhook_id for a in attempts} == {entry["id"]}
    for attempt in attempts:  # each one signed afresh, and valid
        Webhook(hub["secret"]).verify(attempt.body, attempt.headers)
    assert entry["attempts"] == 4
    assert entry["lastStatusCode"] == 200
    assert "lastError" not in entry


async def test_a_webhook_is_given_up_after_its_attempts_and_the_log_shows_them(
    start_world: StartWorld,
) -> None:
    world = await start_world(hub_delivery_attempts=3)
    broken = await world.register("/broken")
    world.receiver.default["/broken"] = 500
    with_a_closed_port = await world.register("", callback=f"http://127.0.0.1:{free_port()}/hook")
    await world.change_state(order_event())

    [failed] = await until(lambda: _failed(world, broken["id"]), what="giving up")
    assert failed["attempts"] == 3
    assert failed["lastStatusCode"] == 500
    assert failed["lastError"] == "answered HTTP 500"
    assert "nextAttemptAt" not in failed
    assert len(world.receiver.at("/broken")) == 3

    [refused] = await until(lambda: _failed(world, with_a_closed_port["id"]), what="giving up")
    assert refused["attempts"] == 3
    assert "lastStatusCode" not in refused
    assert refused["lastError"].startswith("ConnectError")


class OrderChangeFailed(Exception):
    def __init__(self, owed: int) -> None:
        self.owed = owed


async def _owe_then_fail(world: World, event: OrderStateChanged) -> None:
    async with units_of_work(world.engine)() as uow:
        owed = await enqueue_notifications(
            uow.hubs, event, event_id=str(uuid.uuid4()), client_id="channel-app"
        )
        raise OrderChangeFailed(owed)  # the order's own write failed after its webhooks were owed


async def test_a_state_change_rolled_back_notifies_nobody(start_world: StartWorld) -> None:
    world = await start_world()
    hub = await world.register("/app")
    rolled_back = order_event("completed")
    with pytest.raises(OrderChangeFailed) as failure:
        await _owe_then_fail(world, rolled_back)
    assert failure.value.owed == 1
    committed = order_event("completed")
    await world.change_state(committed)

    [entry] = await until(lambda: _delivered(world, hub["id"]), what="the committed webhook")
    [received] = world.receiver.at("/app")
    assert received.webhook_id == entry["id"]
    assert committed.order_id.encode() in received.body
    assert not any(rolled_back.order_id.encode() in r.body for r in world.receiver.received)


async def test_several_workers_never_deliver_one_webhook_twice(start_world: StartWorld) -> None:
    world = await start_world(hub_delivery_concurrency=4)
    hub = await world.register("/app")
    for _ in range(3):
        async with units_of_work(world.engine)() as uow:
            for _ in range(20):
                await enqueue_notifications(
                    uow.hubs, order_event(), event_id=str(uuid.uuid4()), client_id="channel-app"
                )
            await uow.commit()
    stop = asyncio.Event()
    # Two more replicas' workers beside the app's own, all claiming from the same table.
    others = [asyncio.create_task(DeliveryWorker(world.settings).run(stop)) for _ in range(2)]
    try:
        await until(lambda: _count_delivered(world, 60), what="60 deliveries")
    finally:
        stop.set()
        await asyncio.gather(*others)

    ids = [r.webhook_id for r in world.receiver.at("/app")]
    assert len(ids) == 60
    assert len(set(ids)) == 60
    page = await world.api.get(
        f"/hub/{hub['id']}/delivery",
        params={"offset": 50, "limit": 25},
        headers=world.client("channel-app"),
    )
    assert page.headers["X-Total-Count"] == "60"
    assert page.headers["X-Result-Count"] == "10"
    assert {entry["attempts"] for entry in await world.log(hub["id"])} == {1}


async def test_deleting_a_hub_stops_its_deliveries(start_world: StartWorld) -> None:
    world = await start_world(hub_delivery_attempts=50)
    doomed = await world.register("/doomed")
    world.receiver.default["/doomed"] = 500
    kept = await world.register("/kept")
    await world.change_state(order_event())
    await until(lambda: _at(world, "/doomed", at_least=2), what="retries to the doomed hub")

    deleted = await world.api.delete(f"/hub/{doomed['id']}", headers=world.client("channel-app"))
    assert deleted.status_code == 204
    tried_before = len(world.receiver.at("/doomed"))
    assert await _rows_of(world, doomed["id"]) == 0  # nothing left for any worker to send

    later = order_event("completed")
    assert await world.change_state(later) == 1  # owed to the kept hub only
    await until(
        lambda: _holding(world, "/kept", later.order_id), what="the kept hub's next webhook"
    )
    # At most the attempt that was under way when the hub was deleted can still land.
    assert len(world.receiver.at("/doomed")) <= tried_before + 1
    assert not any(later.order_id.encode() in r.body for r in world.receiver.at("/doomed"))
    assert len(await world.log(kept["id"])) == 2


async def test_a_production_worker_does_not_call_a_callback_it_may_no_longer_call(
    orders_database: str, receiver: Receiver
) -> None:
    # Registered when it was allowed (say its name resolved to a public address then); by the
    # time the webhook is sent it is not, and the worker checks again before every attempt.
    settings = OrdersSettings(
        environment="production",
        dev_issuer_enabled=False,
        database_url=orders_database,
        hub_delivery_attempts=1,
        hub_poll_interval_seconds=0.05,
    )
    hub = Hub(
        id=str(uuid.uuid4()),
        owner="channel-app",
        callback=receiver.url + "/app",
        query=None,
        secret=new_secret(),
    )
    engine = create_async_engine(orders_database)
    stop = asyncio.Event()
    worker = asyncio.create_task(DeliveryWorker(settings).run(stop))
    try:
        async with units_of_work(engine)() as uow:
            await uow.hubs.add(hub=hub)
            await enqueue_notifications(
                uow.hubs, order_event(), event_id=str(uuid.uuid4()), client_id="channel-app"
            )
            await uow.commit()

        async def refused() -> Delivery | None:
            async with units_of_work(engine)() as uow:
                _, [delivery] = await uow.hubs.deliveries(hub_id=hub.id, offset=0, limit=1)
            return delivery if delivery.status == "failed" else None

        delivery = await until(refused, what="the refused attempt")
    finally:
        stop.set()
        await worker
        await engine.dispose()
    assert delivery.last_error == "The callback must use https."
    assert delivery.attempts == 1
    assert receiver.received == []


async def test_a_webhook_whose_worker_died_during_its_last_attempt_is_marked_failed(
    orders_database: str, receiver: Receiver
) -> None:
    settings = OrdersSettings(
        environment="test",
        database_url=orders_database,
        hub_delivery_attempts=3,
        hub_poll_interval_seconds=0.05,
    )
    hub = Hub(
        id=str(uuid.uuid4()),
        owner="channel-app",
        callback=receiver.url + "/app",
        query=None,
        secret=new_secret(),
    )
    engine = create_async_engine(orders_database)
    try:
        async with units_of_work(engine)() as uow:
            await uow.hubs.add(hub=hub)
            await enqueue_notifications(
                uow.hubs, order_event(), event_id=str(uuid.uuid4()), client_id="channel-app"
            )
            # As a worker leaves it when it dies after claiming the third attempt, once the
            # lease on that attempt has run out.
            await uow.session.execute(
                update(webhook_deliveries).values(
                    attempts=3, next_attempt_at=func.now() - text("interval '1 second'")
                )
            )
            await uow.commit()
        stop = asyncio.Event()
        worker = asyncio.create_task(DeliveryWorker(settings).run(stop))
        try:

            async def abandoned() -> Delivery | None:
                async with units_of_work(engine)() as uow:
                    _, [delivery] = await uow.hubs.deliveries(hub_id=hub.id, offset=0, limit=1)
                return delivery if delivery.status == "failed" else None

            delivery = await until(abandoned, what="the abandoned webhook marked failed")
        finally:
            stop.set()
            await worker
    finally:
        await engine.dispose()
    assert delivery.attempts == 3
    assert delivery.last_error is not None
    assert "no outcome was recorded" in delivery.last_error
    assert receiver.received == []


# --- helpers ------------------------------------------------------------------------------------


async def _at(world: World, path: str, *, at_least: int = 1) -> list[Received]:
    found = world.receiver.at(path)
    return found if len(found) >= at_least else []


async def _holding(world: World, path: str, text: str) -> list[Received]:
    return [r for r in world.receiver.at(path) if text.encode() in r.body]


async def _with_status(world: World, hub_id: str, status: str) -> list[dict[str, Any]]:
    entries = await world.log(hub_id)
    return entries if entries and all(e["status"] == status for e in entries) else []


async def _delivered(world: World, hub_id: str) -> list[dict[str, Any]]:
    return await _with_status(world, hub_id, "delivered")


async def _failed(world: World, hub_id: str) -> list[dict[str, Any]]:
    return await _with_status(world, hub_id, "failed")


async def _count_delivered(world: World, expected: int) -> bool:
    async with world.engine.connect() as connection:
        delivered = await connection.scalar(
            select(func.count()).where(webhook_deliveries.c.status == "delivered")
        )
    return delivered == expected


async def _rows_of(world: World, hub_id: str) -> int:
    async with world.engine.connect() as connection:
        rows = await connection.scalar(
            select(func.count()).where(webhook_deliveries.c.subscription_id == hub_id)
        )
    return int(rows or 0)


async def test_a_channel_hears_only_of_the_orders_it_placed(start_world: StartWorld) -> None:
    world = await start_world()
    await world.register("/ussd", client="channel-ussd")
    assert await world.change_state(order_event(), placed_by="channel-app") == 0
    assert await world.change_state(order_event(), placed_by="channel-ussd") == 1


async def test_a_webhook_is_delivered_in_the_trace_of_the_order_it_announces(
    start_world: StartWorld, finished_spans: Any
) -> None:
    """The delivery worker takes the webhook up from the database: it continues the trace saved
    with the order, names the order, and sends the trace on to the channel."""
    world = await start_world()
    await world.register("/app")
    event = order_event()
    with trace.get_tracer("test").start_as_current_span("POST /productOrder") as placing:
        header = trace_header()
    async with world.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO orders (id, customer_id, channel, client_id, state, sequence, "
                "order_date, updated_at, trace_context) VALUES (:id, 'c', 'app', 'channel-app', "
                "'inProgress', 2, now(), now(), :header)"
            ),
            {"id": event.order_id, "header": header},
        )
    assert await world.change_state(event) == 1

    [received] = await until(lambda: _at(world, "/app"), what="the webhook")
    placed = placing.get_span_context()
    (delivery,) = [
        span
        for span in finished_spans.get_finished_spans()
        if span.name == "orders.webhook deliver"
        and span.attributes.get("mvno.order_id") == event.order_id
    ]
    assert delivery.context.trace_id == placed.trace_id
    assert delivery.parent is not None
    assert delivery.parent.span_id == placed.span_id
    assert f"{placed.trace_id:032x}"[8:] in received.headers["x-amzn-trace-id"]
    assert received.headers["baggage"] == f"mvno.order_id={event.order_id}"
