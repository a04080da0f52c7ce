"""One function per event the read model keeps, and per command a customer gives.

Event handlers run in the consumer's unit of work (the inbox row in the same commit) and announce
what changed with NOTIFY, which PostgreSQL delivers to every API replica at commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mvno.common.bus.envelope import ReceivedEvent
from mvno.common.events.base import EventData
from mvno.common.events.orders import (
    OrderStateChanged,
    SubscriptionActivated,
    SubscriptionResumed,
    SubscriptionSuspended,
    SubscriptionTariffChanged,
    SubscriptionTerminated,
)
from mvno.portal_api.domain.model import (
    SUBSCRIPTION_STATUS_BY_EVENT,
    Line,
    Purchase,
    check_purchase,
    check_suspension,
    merge_items,
    order_items_from_answer,
    order_request,
    suspension_request,
)
from mvno.portal_api.repository import PortalUnitOfWork
from mvno.portal_api.schemas import OrderView
from mvno.portal_api.screens import Context, order_view

# --- events: the read model ------------------------------------------------------------------

_CONTRACTS: dict[str, type[EventData]] = {
    contract.event_type: contract
    for contract in (SubscriptionSuspended, SubscriptionResumed, SubscriptionTerminated)
}


async def order_state_changed(uow: PortalUnitOfWork, event: ReceivedEvent) -> None:
    changed = OrderStateChanged.model_validate(event.data)
    at = event.time or datetime.now(UTC)
    repository = uow.portal
    known = await repository.order_for_update(order_id=changed.order_id)
    if known is not None and known["sequence"] >= changed.sequence:
        return  # a newer state is already shown
    items = merge_items(
        known["items"] if known else [],
        (item.model_dump(mode="json") for item in changed.items),
    )
    await repository.apply_order(
        values={
            "order_id": changed.order_id,
            "customer_id": changed.customer_id,
            "channel": changed.channel,
            "state": changed.state,
            "sequence": changed.sequence,
            "items": items,
            "failed_step": changed.failed_step,
            "failure_reason": changed.failure_reason,
            "placed_at": known["placed_at"] if known else at,
            "updated_at": at,
        }
    )
    if changed.state == "completed":
        # A bundle or airtime bought: the line's balance copy is out of date from now.
        lines = [i.subscription_id for i in changed.items if i.subscription_id is not None]
        await repository.invalidate_balances(subscription_ids=lines, at=at)
    await repository.announce(
        {"topic": "order", "order_id": changed.order_id, "customer_id": changed.customer_id}
    )


async def subscription_changed(uow: PortalUnitOfWork, event: ReceivedEvent) -> None:
    data = event.data
    at = event.time or datetime.now(UTC)
    values: dict[str, Any] = {
        "subscription_id": data.get("subscription_id"),
        "customer_id": data.get("customer_id"),
        "status": SUBSCRIPTION_STATUS_BY_EVENT[event.type],
        "sequence": data.get("sequence"),
        "order_id": data.get("order_id"),
        "msisdn": None,
        "offering_id": None,
        "payment_type": None,
        "sim_kind": None,
        "activated_at": None,
        "updated_at": at,
    }
    if event.type == SubscriptionActivated.event_type:
        activated = SubscriptionActivated.model_validate(data)
        values |= {
            "msisdn": activated.msisdn,
            "offering_id": activated.offering_id,
            "payment_type": activated.payment_type,
            "sim_kind": activated.sim_kind,
            "activated_at": at,
        }
    elif event.type == SubscriptionTariffChanged.event_type:
        changed = SubscriptionTariffChanged.model_validate(data)
        values |= {"offering_id": changed.offering_id, "payment_type": changed.payment_type}
    else:
        _CONTRACTS[event.type].model_validate(data)
    repository = uow.portal
    await repository.apply_subscription_event(values=values)
    await repository.announce(
        {
            "topic": "line",
            "subscription_id": values["subscription_id"],
            "customer_id": values["customer_id"],
        }
    )


def _require(data: Mapping[str, Any], *names: str) -> None:
    missing = [name for name in names if not data.get(name)]
    if missing:
        raise ValueError(f"the event lacks {', '.join(missing)}")


async def balance_moved(uow: PortalUnitOfWork, event: ReceivedEvent) -> None:
    """Usage, a low balance, a depleted or expired bundle: the copy must be asked for again."""
    _require(event.data, "subscription_id", "customer_id")
    repository = uow.portal
    await repository.invalidate_balances(
        subscription_ids=[str(event.data["subscription_id"])], at=event.time or datetime.now(UTC)
    )
    await repository.announce(
        {
            "topic": "balance",
            "subscription_id": event.data["subscription_id"],
            "customer_id": event.data["customer_id"],
        }
    )


async def catalogue_changed(uow: PortalUnitOfWork, event: ReceivedEvent) -> None:
    """The offers on sale changed: every replica drops its cached copy."""
    await uow.portal.announce({"topic": "catalog"})


# --- commands --------------------------------------------------------------------------------


def line_of(row: Mapping[str, Any] | None) -> Line | None:
    if row is None:
        return None
    return Line(
        subscription_id=row["subscription_id"],
        customer_id=row["customer_id"],
        status=row["status"],
        payment_type=row["payment_type"],
    )


async def find_line(
    uow: PortalUnitOfWork, *, customer_id: str, subscription_id: str
) -> Line | None:
    row = await uow.portal.line(customer_id=customer_id, subscription_id=subscription_id)
    return line_of(row)


async def record_placed_order(
    uow: PortalUnitOfWork, *, customer_id: str, channel: str, answer: Mapping[str, Any]
) -> None:
    """Show an order placed through the portal at once, before its first event arrives."""
    now = datetime.now(UTC)
    placed_at = _parse_time(answer.get("orderDate")) or now
    items = order_items_from_answer(answer)
    repository = uow.portal
    written = await repository.apply_order(
        values={
            "order_id": answer["id"],
            "customer_id": customer_id,
            "channel": channel,
            "state": answer.get("state") or "acknowledged",
            "sequence": 0,
            "items": items,
            "failed_step": answer.get("failedStep"),
            "failure_reason": answer.get("failureReason"),
            "placed_at": placed_at,
            "updated_at": now,
        }
    )
    if not written:
        # Its events came first: keep their states, add what only the answer has (names, change).
        known = await repository.order_for_update(order_id=answer["id"])
        if known is not None:
            merged = merge_items(items, known["items"])
            await repository.replace_items(order_id=answer["id"], items=merged)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def place_purchase(
    context: Context, *, customer_id: str, purchase: Purchase, idempotency_key: str
) -> OrderView:
    """Check the purchase against the caller's own lines, order it through orders, show it."""
    line = None
    if purchase.subscription_id is not None:
        async with context.unit_of_work() as uow:
            line = await find_line(
                uow, customer_id=customer_id, subscription_id=purchase.subscription_id
            )
    check_purchase(purchase, line)
    body = order_request(purchase, customer_id=customer_id, channel=context.settings.channel)
    return await _place(context, customer_id=customer_id, body=body, key=idempotency_key)


async def suspend_line(
    context: Context, *, customer_id: str, subscription_id: str, idempotency_key: str
) -> OrderView:
    """Bar a lost or stolen line at once: an order through orders, like any change."""
    async with context.unit_of_work() as uow:
        line = await find_line(uow, customer_id=customer_id, subscription_id=subscription_id)
    check_suspension(line, subscription_id)
    body = suspension_request(
        subscription_id, customer_id=customer_id, channel=context.settings.channel
    )
    return await _place(context, customer_id=customer_id, body=body, key=idempotency_key)


async def _place(
    context: Context, *, customer_id: str, body: Mapping[str, Any], key: str
) -> OrderView:
    answer = await context.upstreams.place_order(body, customer_id=customer_id, idempotency_key=key)
    async with context.unit_of_work() as uow:
        await record_placed_order(
            uow, customer_id=customer_id, channel=context.settings.channel, answer=answer
        )
        await uow.commit()
    async with context.unit_of_work() as uow:
        row = await uow.portal.order(customer_id=customer_id, order_id=answer["id"])
    assert row is not None
    return order_view(row)
