"""The events billing-sync consumes: one function per event (subscriptions, purchases and
catalogue changes) and the ``HANDLERS`` dict of event type -> handler that lists them.

Run by ``mvno-billing-sync consume``. An event type without a handler is acknowledged and logged.

Subscription events only record what happened and queue the billing-platform call it needs
(``account_operations``); the sync worker makes the calls, so a slow or failing billing platform
never holds up the queue. SQS delivers out of order: events carry a per-subscription
``sequence``, and operations run in that order.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mvno.billing_sync.domain.accounts import OPERATION_OF_EVENT
from mvno.billing_sync.domain.allowances import UNITS
from mvno.billing_sync.unit_of_work import BillingUnitOfWork
from mvno.common.bus.consumer import Handler
from mvno.common.bus.envelope import ReceivedEvent
from mvno.common.events.catalog import OfferingLaunched, OfferingRetired, PriceChanged
from mvno.common.events.orders import (
    AirtimeToppedUp,
    BundlePurchased,
    SubscriptionActivated,
    SubscriptionResumed,
    SubscriptionSuspended,
    SubscriptionTariffChanged,
    SubscriptionTerminated,
    _SubscriptionEvent,
)


def _at(event: ReceivedEvent) -> datetime:
    return event.time or datetime.now(UTC)


async def subscription_activated(uow: BillingUnitOfWork, event: ReceivedEvent) -> None:
    activated = SubscriptionActivated.model_validate(event.data)
    accounts = uow.accounts
    await accounts.add_subscription(
        subscription_id=activated.subscription_id,
        customer_id=activated.customer_id,
        msisdn=activated.msisdn,
        offering_id=activated.offering_id,
        payment_type=activated.payment_type,
        sequence=activated.sequence,
        at=_at(event),
    )
    await accounts.queue_operation(
        subscription_id=activated.subscription_id,
        sequence=activated.sequence,
        operation="create",
        order_id=activated.order_id,
        offering_id=activated.offering_id,
        at=_at(event),
    )
    # Later events that arrived first changed nothing yet: apply them now.
    await accounts.apply_queued_changes(subscription_id=activated.subscription_id)


_CHANGES: dict[str, type[_SubscriptionEvent]] = {
    model.event_type: model
    for model in (
        SubscriptionTariffChanged,
        SubscriptionSuspended,
        SubscriptionResumed,
        SubscriptionTerminated,
    )
}


async def subscription_changed(uow: BillingUnitOfWork, event: ReceivedEvent) -> None:
    """Tariff change, suspension, resumption or termination: record it and queue its call."""
    changed = _CHANGES[event.type].model_validate(event.data)
    operation = OPERATION_OF_EVENT[event.type]
    accounts = uow.accounts
    await accounts.queue_operation(
        subscription_id=changed.subscription_id,
        sequence=changed.sequence,
        operation=operation,
        order_id=changed.order_id,
        offering_id=getattr(changed, "offering_id", None),
        at=_at(event),
    )
    await accounts.apply_queued_changes(subscription_id=changed.subscription_id)


async def bundle_purchased(uow: BillingUnitOfWork, event: ReceivedEvent) -> None:
    """Open one bucket per kind of allowance the bundle gives (a repeat opens nothing)."""
    bought = BundlePurchased.model_validate(event.data)
    allowance = bought.allowance
    for usage_type, amount in (
        ("data", allowance.data_mb),
        ("voice", allowance.voice_minutes),
        ("sms", allowance.sms),
    ):
        if amount <= 0:
            continue
        await uow.buckets.open_bucket(
            subscription_id=bought.subscription_id,
            customer_id=bought.customer_id,
            usage_type=usage_type,
            units=UNITS[usage_type],
            name=f"{bought.offering_id} {usage_type}",
            offering_id=bought.offering_id,
            order_id=bought.order_id,
            order_item_id=bought.order_item_id,
            amount=amount,
            valid_from=bought.valid_from,
            valid_to=bought.valid_to,
            at=_at(event),
        )


async def airtime_topped_up(uow: BillingUnitOfWork, event: ReceivedEvent) -> None:
    topped_up = AirtimeToppedUp.model_validate(event.data)
    await uow.buckets.credit_airtime(
        subscription_id=topped_up.subscription_id,
        customer_id=topped_up.customer_id,
        order_id=topped_up.order_id,
        order_item_id=topped_up.order_item_id,
        amount=topped_up.amount.amount,
        at=_at(event),
    )


async def offering_launched(uow: BillingUnitOfWork, event: ReceivedEvent) -> None:
    launched = OfferingLaunched.model_validate(event.data)
    await uow.catalogue.put_offering(
        offering_id=launched.offering_id,
        version=launched.version,
        name=launched.name,
        payment_type=launched.payment_type,
        product_kind=launched.product_kind,
        at=_at(event),
    )
    for price in launched.prices:
        await uow.catalogue.put_price(offering_id=launched.offering_id, price=price)


async def offering_retired(uow: BillingUnitOfWork, event: ReceivedEvent) -> None:
    retired = OfferingRetired.model_validate(event.data)
    await uow.catalogue.retire_offering(
        offering_id=retired.offering_id, version=retired.version, at=_at(event)
    )


async def price_changed(uow: BillingUnitOfWork, event: ReceivedEvent) -> None:
    changed = PriceChanged.model_validate(event.data)
    await uow.catalogue.put_price(offering_id=changed.offering_id, price=changed.price)
    if changed.replaces_price_id:
        await uow.catalogue.close_price(
            price_id=changed.replaces_price_id, at=changed.price.valid_from
        )


HANDLERS: dict[str, Handler[BillingUnitOfWork]] = {
    "orders.subscription.activated.v1": subscription_activated,
    "orders.subscription.tariff_changed.v1": subscription_changed,
    "orders.subscription.suspended.v1": subscription_changed,
    "orders.subscription.resumed.v1": subscription_changed,
    "orders.subscription.terminated.v1": subscription_changed,
    "orders.bundle.purchased.v1": bundle_purchased,
    "orders.airtime.topped_up.v1": airtime_topped_up,
    "catalog.offering.launched.v1": offering_launched,
    "catalog.offering.retired.v1": offering_retired,
    "catalog.price.changed.v1": price_changed,
}
