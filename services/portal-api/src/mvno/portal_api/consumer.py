"""The portal-api service's subscriptions: one explicit dict of event type -> handler, and the
handlers, one function per event the read model keeps.

Run by ``mvno-portal-api consume``. An event type without a handler is acknowledged and logged.
Each handler runs in the consumer's unit of work (the inbox row in the same commit) and announces
what changed with NOTIFY, which PostgreSQL delivers to every API replica at commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mvno.common.bus.consumer import Handler
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
from mvno.common.events.platform import CanaryFailed, CanaryRecovered
from mvno.portal_api.domain.model import SUBSCRIPTION_STATUS_BY_EVENT, merge_items
from mvno.portal_api.repository import PortalUnitOfWork

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


async def canary_turned(uow: PortalUnitOfWork, event: ReceivedEvent) -> None:
    """A partner began or stopped failing the canary's probe: the buy screen's notices follow."""
    failed = event.type == CanaryFailed.event_type
    turn = (CanaryFailed if failed else CanaryRecovered).model_validate(event.data)
    await uow.portal.apply_probe_turn(
        values={
            "probe": turn.probe,
            "target": turn.target,
            "failing": failed,
            "slow": isinstance(turn, CanaryFailed) and turn.slow,
            "reason": turn.reason if isinstance(turn, CanaryFailed) else None,
            "changed_at": event.time or datetime.now(UTC),
        }
    )


async def catalogue_changed(uow: PortalUnitOfWork, event: ReceivedEvent) -> None:
    """The offers on sale changed: every replica drops its cached copy."""
    await uow.portal.announce({"topic": "catalog"})


HANDLERS: dict[str, Handler[PortalUnitOfWork]] = {
    "orders.order.state_changed.v1": order_state_changed,
    "orders.subscription.activated.v1": subscription_changed,
    "orders.subscription.suspended.v1": subscription_changed,
    "orders.subscription.resumed.v1": subscription_changed,
    "orders.subscription.terminated.v1": subscription_changed,
    "orders.subscription.tariff_changed.v1": subscription_changed,
    "billing.usage.recorded.v1": balance_moved,
    "billing.balance.ran_low.v1": balance_moved,
    "billing.bundle.depleted.v1": balance_moved,
    "billing.bundle.expired.v1": balance_moved,
    "catalog.offering.launched.v1": catalogue_changed,
    "catalog.offering.retired.v1": catalogue_changed,
    "catalog.price.changed.v1": catalogue_changed,
    "platform.canary.failed.v1": canary_turned,
    "platform.canary.recovered.v1": canary_turned,
}
