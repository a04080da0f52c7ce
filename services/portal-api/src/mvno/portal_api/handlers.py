"""One function per command a customer gives (buy, suspend a line): checked against the caller's
own lines in the read model, ordered through orders, shown at once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mvno.portal_api.domain.model import (
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
