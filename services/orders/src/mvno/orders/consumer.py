"""The orders service's subscriptions: one explicit dict of event type -> handler, and the
handlers, one function per consumed event.

Run by ``mvno-orders consume``. An event type without a handler is acknowledged and logged.

- catalog's offering and price events keep the local catalogue copy, so ordering works while
  catalog is down. SQS delivers out of order: a retirement may arrive before the launch it ends.
  An offering's version orders them: a launch never revives a retirement of the same or a later
  version.
- billing-sync's ``billing.account.created.v1`` is the answer a provisioning saga waits for.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mvno.common.bus.consumer import Handler
from mvno.common.bus.envelope import ReceivedEvent
from mvno.common.events.billing import AccountCreated
from mvno.common.events.catalog import (
    OfferingLaunched,
    OfferingPrice,
    OfferingRetired,
    PriceChanged,
)
from mvno.orders.unit_of_work import OrdersUnitOfWork

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _version(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (0, value)


def _price_values(offering_id: str, price: OfferingPrice) -> dict[str, Any]:
    return {
        "price_id": price.price_id,
        "offering_id": offering_id,
        "price_type": price.price_type,
        "recurring_period": price.recurring_period,
        "unit_of_measure": price.unit_of_measure,
        "duty_free_amount": price.duty_free_amount.amount,
        "tax_included_amount": price.tax_included_amount.amount,
        "tax_rate": price.tax_rate,
        "valid_from": price.valid_from,
        "valid_to": price.valid_to,
    }


async def offering_launched(uow: OrdersUnitOfWork, event: ReceivedEvent) -> None:
    launched = OfferingLaunched.model_validate(event.data)
    current = await uow.catalogue.status_and_version(offering_id=launched.offering_id)
    if current and current[0] == "retired" and _version(current[1]) >= _version(launched.version):
        return  # its retirement arrived first
    repository = uow.catalogue
    await repository.put_offering(
        values={
            "offering_id": launched.offering_id,
            "version": launched.version,
            "name": launched.name,
            "status": "launched",
            "channels": list(launched.channels),
            "payment_type": launched.payment_type,
            "product_kind": launched.product_kind,
            "sim_kinds": list(launched.sim_kinds),
            "allowance": launched.allowance.model_dump() if launched.allowance else None,
            "valid_from": launched.valid_from,
            "valid_to": launched.valid_to,
            "updated_at": event.time or datetime.now(UTC),
        }
    )
    for price in launched.prices:
        await repository.put_price(values=_price_values(launched.offering_id, price))


async def offering_retired(uow: OrdersUnitOfWork, event: ReceivedEvent) -> None:
    retired = OfferingRetired.model_validate(event.data)
    at = event.time or datetime.now(UTC)
    repository = uow.catalogue
    if await uow.catalogue.status_and_version(offering_id=retired.offering_id) is None:
        # A tombstone, so the launch still on its way does not make it sellable.
        await repository.put_offering(
            values={
                "offering_id": retired.offering_id,
                "version": retired.version,
                "name": "",
                "status": "retired",
                "channels": [],
                "payment_type": "prepaid",
                "product_kind": None,
                "sim_kinds": [],
                "allowance": None,
                "valid_from": _EPOCH,
                "valid_to": None,
                "updated_at": at,
            }
        )
        return
    await repository.retire_offering(offering_id=retired.offering_id, at=at)


async def price_changed(uow: OrdersUnitOfWork, event: ReceivedEvent) -> None:
    changed = PriceChanged.model_validate(event.data)
    repository = uow.catalogue
    await repository.put_price(values=_price_values(changed.offering_id, changed.price))
    if changed.replaces_price_id:
        await repository.close_price(
            price_id=changed.replaces_price_id, at=changed.price.valid_from
        )


async def account_created(uow: OrdersUnitOfWork, event: ReceivedEvent) -> None:
    """Record the account and wake the order waiting for it at once: its timer made due now, a
    provisioning worker's next look at the timers takes it up."""
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


HANDLERS: dict[str, Handler[OrdersUnitOfWork]] = {
    "catalog.offering.launched.v1": offering_launched,
    "catalog.offering.retired.v1": offering_retired,
    "catalog.price.changed.v1": price_changed,
    "billing.account.created.v1": account_created,
}
