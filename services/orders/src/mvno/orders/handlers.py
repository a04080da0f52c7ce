"""One function per command: placing, cancelling, resubmitting documents, opening a line's eSIM code."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mvno.common.bus.envelope import new_event
from mvno.common.copies import CopyReadiness
from mvno.common.crypto import FieldCipher, Sealed
from mvno.common.events.orders import ProvisioningStepDue
from mvno.common.tracing import order_context, trace_header
from mvno.orders.catalogue.cache import CatalogueCopyCache
from mvno.orders.catalogue.repository import CatalogueRepository
from mvno.orders.domain import model
from mvno.orders.domain.model import Order, PlaceOrder, RicaDetails
from mvno.orders.hub.delivery import enqueue_notifications, notifications
from mvno.orders.hub.directory import HubDirectory, HubQueries
from mvno.orders.intake.repository import IdempotencyRecord, OrderIntake, Placement
from mvno.orders.integration import state_changes
from mvno.orders.unit_of_work import OrdersReads, OrdersUnitOfWork

IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=24)


class KeyReused(Exception):
    """The Idempotency-Key was used with another request body."""


class KeyInFlight(Exception):
    """A request with this Idempotency-Key is still being processed."""


class IntakePaused(Exception):
    """The operators paused the intake (``MVNO_INTAKE_PAUSED``): no new order is taken."""


class OrderNotFound(Exception):
    pass


class CatalogueNotReceived(Exception):
    """The catalogue copy has not received catalog's events yet: an offering it lacks may exist,
    so the order is refused as retryable rather than rejected."""


class SubscriptionNotFound(Exception):
    """No such subscription, or (for its activation code) not an eSIM line."""


@dataclass
class OrdersContext:
    """What the handlers need, built once by the composition root."""

    unit_of_work: Callable[[], OrdersUnitOfWork]
    reads: Callable[[], AbstractAsyncContextManager[OrdersReads]]
    """Reads whose every statement is its own transaction (the intake's reads of what is not
    held in memory)."""
    source: str
    """The CloudEvents source of the events the handlers write themselves."""
    hubs: HubDirectory
    catalogue: CatalogueCopyCache
    catalogue_copy: CopyReadiness | None = None
    """Whether the catalogue copy has received catalog's events (also a readiness check)."""
    intake: OrderIntake | None = None
    """The intake's own statements (its pool is opened with the app)."""
    cipher: FieldCipher | None = None
    start_timeout: timedelta = timedelta(seconds=30)
    """When a new order's timer fires unless a worker took it (the first step sets its lease)."""
    intake_paused: bool = False
    """New orders are refused (the orders already taken go on): the operators' brake."""


@dataclass(frozen=True)
class PlacedAnswer:
    """What placing an order answers: the status, the body (JSON) and the order it is about."""

    status: int
    body: bytes
    order_id: str


def now() -> datetime:
    return datetime.now(UTC)


async def place_order(
    context: OrdersContext,
    command: PlaceOrder,
    *,
    idempotency_key: str,
    request_hash: str,
    render: Callable[[Order], bytes],
    earlier_hash: Callable[[], str] | None = None,
) -> PlacedAnswer:
    """Place an order once per Idempotency-Key; a replay answers what the first request did.

    ``request_hash`` is the request's fingerprint; ``earlier_hash`` gives it as an earlier
    release made it, checked only for a stored key whose fingerprint differs.

    The order is checked against the catalogue copy, then written with its key, its answer, its
    events and the webhooks it owes in one statement (``OrderIntake.place_once``), which is its
    own transaction: nothing is begun or committed around it. The catalogue copy and the
    client's hubs are read from memory; a connection for reading them (or the customer's lines
    an item changes) is opened only when they are not.
    """
    if context.intake_paused:
        raise IntakePaused
    if context.intake is None:
        raise RuntimeError("the order intake is not open")
    intake = context.intake
    at = now()
    order_id = str(uuid.uuid4())
    async with AsyncExitStack() as stack:
        # The request's spans from here on carry the order's id, its reads included.
        stack.enter_context(order_context(order_id))
        opened: list[OrdersReads] = []

        async def reads() -> OrdersReads:
            if not opened:
                opened.append(await stack.enter_async_context(context.reads()))
            return opened[0]

        async def catalogue() -> CatalogueRepository:
            return (await reads()).catalogue

        offering_ids = [i.offering_id for i in command.items if i.offering_id]
        offerings = await context.catalogue.offerings(catalogue, offering_ids)
        copy = context.catalogue_copy
        if set(offering_ids) - offerings.keys() and copy and not await copy.received():
            raise CatalogueNotReceived
        line_ids = [i.subscription_id for i in command.items if i.subscription_id]
        lines = (
            await (await reads()).inventory.subscriptions_of(
                customer_id=command.customer_id, subscription_ids=line_ids
            )
            if line_ids
            else {}
        )
        try:
            order = model.place_order(
                order_id, command, offerings=offerings, subscriptions=lines, at=at
            )
        except model.OrderRejected:
            # A retry of an order placed before (whose offering may have gone since) replays it.
            earlier = await intake.get_key(client_id=command.client_id, key=idempotency_key)
            if earlier is None:
                raise
            return _replay(earlier, request_hash, earlier_hash)

        async def hub_queries(client_id: str) -> HubQueries:
            return tuple(await (await reads()).hubs.queries(owner=client_id))

        hubs = await context.hubs.of(order.client_id, hub_queries)
    with order_context(order.id):  # the POST's spans from here on carry the order's id
        placement, body = await _place(
            context, order, idempotency_key=idempotency_key, request_hash=request_hash,
            render=render, hubs=hubs, at=at,
        )  # fmt: skip
    if placement.earlier is not None:
        return _replay(placement.earlier, request_hash, earlier_hash)
    if not placement.placed:
        raise KeyInFlight()
    return PlacedAnswer(201, body, order.id)


async def _place(
    context: OrdersContext,
    order: Order,
    *,
    idempotency_key: str,
    request_hash: str,
    render: Callable[[Order], bytes],
    hubs: Any,
    at: datetime,
) -> tuple[Placement, bytes]:
    """Seal the order's personal data, write it with its events and webhooks (and the trace
    context its saga's steps continue), and answer what was placed and the body."""
    personal = order.rica.personal_fields() if order.rica else {}
    if order.payment_account:
        personal["payment_account"] = order.payment_account
    sealed = None
    if personal:
        if context.cipher is None:
            raise RuntimeError("personal data cannot be sealed: no KMS key configured")
        sealed = await context.cipher.seal(f"orders:{order.id}", personal)
    intake = context.intake
    if intake is None:
        raise RuntimeError("the order intake is not open")
    body = render(order)
    events, owed = [], []
    for change in state_changes(order):
        event = new_event(change, source=context.source)
        events.append(event)
        owed.extend(notifications(change, event_id=event.id, hubs=hubs))
    events.append(new_event(ProvisioningStepDue(order_id=order.id), source=context.source))
    placement = await intake.place_once(
        order=order,
        sealed=sealed,
        key=idempotency_key,
        request_hash=request_hash,
        body=body.decode(),
        expires_at=at + IDEMPOTENCY_KEY_LIFETIME,
        events=events,
        notifications=owed,
        start_by=at + context.start_timeout,
        trace_context=trace_header(),
    )
    return placement, body


def _replay(
    earlier: IdempotencyRecord, request_hash: str, earlier_hash: Callable[[], str] | None
) -> PlacedAnswer:
    if earlier.request_hash != request_hash and (
        earlier_hash is None or earlier.request_hash != earlier_hash()
    ):
        raise KeyReused()
    body = earlier.response_body
    return PlacedAnswer(earlier.response_status, body.encode(), json.loads(body)["id"])


async def resubmit_documents(
    context: OrdersContext, *, order_id: str, client_id: str | None, rica: RicaDetails
) -> Order:
    """Corrected RICA details for a pending order: sealed, and provisioning resumes."""
    if context.cipher is None:
        raise RuntimeError("personal data cannot be sealed: no KMS key configured")
    async with context.unit_of_work() as uow:
        repository = uow.orders
        order = await repository.get_order(order_id=order_id, for_update=True)
        if order is None or (client_id is not None and order.client_id != client_id):
            raise OrderNotFound(order_id)
        order.resubmit_documents(rica, now())
        previous = await repository.personal_data(order_id=order.id)
        personal = await context.cipher.open(f"orders:{order.id}", previous) if previous else {}
        personal = {k: v for k, v in personal.items() if k == "payment_account"}
        personal.update(rica.personal_fields())
        sealed = await context.cipher.seal(f"orders:{order.id}", personal)
        await repository.replace_personal_data(order_id=order.id, sealed=sealed)
        for item in order.items:
            progress = dict(item.progress or {})
            results = dict(progress.get("results", {}))
            # New documents are a new registration request at the operator (its own key).
            results["documents"] = int(results.get("documents", 1)) + 1
            item.progress = {**progress, "results": results, "attempts": 0}
        await repository.save_order(order=order)
        await announce(uow, order)
        uow.publish(ProvisioningStepDue(order_id=order.id))
        await uow.commit()
        return order


async def esim_activation_code(context: OrdersContext, *, subscription_id: str) -> str:
    """The eSIM activation code of a line, opened for one authorised caller; never logged."""
    if context.cipher is None:
        raise RuntimeError("personal data cannot be opened: no KMS key configured")
    async with context.unit_of_work() as uow:
        line = await uow.inventory.get_subscription(subscription_id=subscription_id)
        if line is None or not line["secrets"] or line["order_id"] is None:
            raise SubscriptionNotFound(subscription_id)
        item_id = await uow.inventory.item_of_subscription(
            order_id=line["order_id"], subscription_id=subscription_id
        )
    if item_id is None:
        raise SubscriptionNotFound(subscription_id)
    sealed = Sealed(
        encrypted_data_key=line["secrets_key"],
        fields={"activation_code": base64.b64decode(line["secrets"]["activation_code"])},
    )
    opened = await context.cipher.open(f"orders:{line['order_id']}:{item_id}", sealed)
    return opened["activation_code"]


async def cancel_order(context: OrdersContext, *, order_id: str, client_id: str | None) -> Order:
    async with context.unit_of_work() as uow:
        order = await uow.orders.get_order(order_id=order_id, for_update=True)
        if order is None or (client_id is not None and order.client_id != client_id):
            raise OrderNotFound(order_id)
        order.cancel(now())
        await uow.orders.save_order(order=order)
        await announce(uow, order)
        await uow.commit()
        return order


async def announce(uow: OrdersUnitOfWork, order: Order, hubs: HubDirectory | None = None) -> None:
    """Publish the order's new states on the bus and owe them to its channel's hubs, in the
    caller's transaction; the hubs are read through ``hubs`` when the caller holds them."""
    changes = state_changes(order)
    known: HubQueries | None = None
    if changes and hubs is not None:

        async def read(client_id: str) -> HubQueries:
            return tuple(await uow.hubs.queries(owner=client_id))

        known = await hubs.of(order.client_id, read)
    for change in changes:
        published = uow.publish(change)
        await enqueue_notifications(
            uow.hubs, change, event_id=published.id, client_id=order.client_id, hubs=known
        )
    order.changes.clear()
