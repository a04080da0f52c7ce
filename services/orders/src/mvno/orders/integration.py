"""Domain changes of orders translated into the bus contracts other services read (one place)."""

from __future__ import annotations

from mvno.common.events.orders import OrderItemProgress, OrderStateChanged
from mvno.orders.domain.model import Order


def state_changes(order: Order) -> list[OrderStateChanged]:
    """One ``orders.order.state_changed.v1`` per state move not yet announced, in order."""
    first_sequence = order.sequence - len(order.changes) + 1
    items = tuple(
        OrderItemProgress(
            item_id=item.item_id,
            action=item.action,
            offering_id=item.offering_id,
            subscription_id=item.subscription_id,
            state=str(item.state),
        )
        for item in order.items
    )
    return [
        OrderStateChanged(
            order_id=order.id,
            customer_id=order.customer_id,
            channel=order.channel,
            state=str(new),
            previous_state=str(previous) if previous else None,
            sequence=first_sequence + index,
            items=items,
            failed_step=order.failed_step,
            failure_reason=order.failure_reason,
        )
        for index, (previous, new) in enumerate(order.changes)
    ]
