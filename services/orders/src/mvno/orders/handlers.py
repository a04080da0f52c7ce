"""One function per command: placing, cancelling, resubmitting documents, opening a line's eSIM code."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mvno.common.crypto import FieldCipher, Sealed
from mvno.common.db import UnitOfWork
from mvno.common.events.orders import ProvisioningStepDue
from mvno.orders.domain import model
from mvno.orders.domain.model import Order, PlaceOrder, RicaDetails
from mvno.orders.hub.delivery import enqueue_notifications
from mvno.orders.integration import state_changes
from mvno.orders.repository import OrdersRepository

IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=24)
ABANDONED_AFTER = timedelta(seconds=60)
"""An in-flight key older than this belongs to a request whose process died; it may be retried."""


class KeyReused(Exception):
    """The Idempotency-Key was used with another request body."""


class KeyInFlight(Exception):
    """A request with this Idempotency-Key is still being processed."""


class OrderNotFound(Exception):
    pass


class SubscriptionNotFound(Exception):
    """No such subscription, or (for its activation code) not an eSIM line."""


@dataclass
class OrdersContext:
    """What the handlers need, built once by the composition root."""

    unit_of_work: Callable[[], UnitOfWork]
    cipher: FieldCipher | None = None


def now() -> datetime:
    return datetime.now(UTC)


async def place_order(
    context: OrdersContext,
    command: PlaceOrder,
    *,
    idempotency_key: str,
    request_hash: str,
    render: Callable[[Order], dict[str, Any]],
) -> tuple[int, dict[str, Any]]:
    """Place an order once per Idempotency-Key; a replay answers what the first request did."""
    at = now()
    async with context.unit_of_work() as uow:
        repository = OrdersRepository(uow.session)
        claimed = await repository.claim_key(
            client_id=command.client_id,
            key=idempotency_key,
            request_hash=request_hash,
            at=at,
            expires_at=at + IDEMPOTENCY_KEY_LIFETIME,
        )
        if not claimed:
            record = await repository.get_key(client_id=command.client_id, key=idempotency_key)
            if record is None:  # released between our insert and our read: a retry may claim it
                raise KeyInFlight()
            if record.request_hash != request_hash:
                raise KeyReused()
            if record.state == "done":
                return int(record.response_status or 201), record.response_body
            if not await repository.take_over_key(
                client_id=command.client_id,
                key=idempotency_key,
                stale_before=at - ABANDONED_AFTER,
                at=at,
            ):
                raise KeyInFlight()
        await uow.commit()
    try:
        async with context.unit_of_work() as uow:
            repository = OrdersRepository(uow.session)
            offerings = await repository.offerings(
                offering_ids=[i.offering_id for i in command.items if i.offering_id]
            )
            lines = await repository.subscriptions_of(
                customer_id=command.customer_id,
                subscription_ids=[i.subscription_id for i in command.items if i.subscription_id],
            )
            order = model.place_order(
                str(uuid.uuid4()), command, offerings=offerings, subscriptions=lines, at=at
            )
            personal = order.rica.personal_fields() if order.rica else {}
            if order.payment_account:
                personal["payment_account"] = order.payment_account
            sealed = None
            if personal:
                if context.cipher is None:
                    raise RuntimeError("personal data cannot be sealed: no KMS key configured")
                sealed = await context.cipher.seal(f"orders:{order.id}", personal)
            await repository.add_order(order=order, sealed=sealed)
            await announce(uow, order)
            uow.publish(ProvisioningStepDue(order_id=order.id))
            body = render(order)
            await repository.complete_key(
                client_id=command.client_id,
                key=idempotency_key,
                status=201,
                body=body,
                order_id=order.id,
            )
            await uow.commit()
            return 201, body
    except BaseException:
        # Nothing was placed: free the key so the client may correct the request and retry.
        async with context.unit_of_work() as uow:
            await OrdersRepository(uow.session).release_key(
                client_id=command.client_id, key=idempotency_key
            )
            await uow.commit()
        raise


async def resubmit_documents(
    context: OrdersContext, *, order_id: str, client_id: str | None, rica: RicaDetails
) -> Order:
    """Corrected RICA details for a pending order: sealed, and provisioning resumes."""
    if context.cipher is None:
        raise RuntimeError("personal data cannot be sealed: no KMS key configured")
    async with context.unit_of_work() as uow:
        repository = OrdersRepository(uow.session)
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
        repository = OrdersRepository(uow.session)
        line = await repository.get_subscription(subscription_id=subscription_id)
        if line is None or not line["secrets"] or line["order_id"] is None:
            raise SubscriptionNotFound(subscription_id)
        item_id = await repository.item_of_subscription(
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
        repository = OrdersRepository(uow.session)
        order = await repository.get_order(order_id=order_id, for_update=True)
        if order is None or (client_id is not None and order.client_id != client_id):
            raise OrderNotFound(order_id)
        order.cancel(now())
        await repository.save_order(order=order)
        await announce(uow, order)
        await uow.commit()
        return order


async def announce(uow: UnitOfWork, order: Order) -> None:
    """Publish the order's new states on the bus and owe them to its channel's hubs, in the
    caller's transaction."""
    for change in state_changes(order):
        published = uow.publish(change)
        await enqueue_notifications(
            uow.session, change, event_id=published.id, client_id=order.client_id
        )
    order.changes.clear()
