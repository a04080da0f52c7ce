"""billing-sync's answers the provisioning saga waits for."""

from __future__ import annotations

from datetime import UTC, datetime

from mvno.common.bus.envelope import ReceivedEvent
from mvno.common.events.billing import AccountCreated
from mvno.orders.unit_of_work import OrdersUnitOfWork


async def account_created(uow: OrdersUnitOfWork, event: ReceivedEvent) -> None:
    """Record the account and wake the order waiting for it at once (its timer made due now:
    a provisioning worker's next look at the timers, a fifth of a second apart, takes it up)."""
    created = AccountCreated.model_validate(event.data)
    await uow.inventory.record_billing_account(
        values={
            "subscription_id": created.subscription_id,
            "billing_account_id": created.billing_account_id,
            "order_id": created.order_id,
            "created_at": event.time or datetime.now(UTC),
        }
    )
    if created.order_id:
        await uow.timers.wake(order_id=created.order_id, at=datetime.now(UTC))
