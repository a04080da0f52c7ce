"""Applying recorded usage to buckets and the airtime balance, and expiring buckets.

The rules are in :mod:`mvno.billing_sync.domain.allowances`; this module loads what they need,
saves what they changed and stages the events, all in the caller's unit of work.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from mvno.billing_sync.domain.allowances import (
    UNITS,
    Bucket,
    consume,
    crossings,
    pay_from_airtime,
    price_at,
    rate,
    threshold_of,
)
from mvno.billing_sync.domain.usage import in_units
from mvno.billing_sync.unit_of_work import BillingUnitOfWork
from mvno.common.events.billing import BalanceRanLow, BundleDepleted, BundleExpired, Quantity


@dataclass(frozen=True)
class DayUsage:
    """What one subscription used of one kind on one UTC day, in one ingestion batch."""

    subscription_id: str
    customer_id: str
    day: date
    usage_type: str
    quantity: int
    records: int
    first: datetime
    last: datetime


def _quantity(amount: Decimal, units: str) -> Quantity:
    return Quantity(amount=amount.quantize(Decimal("0.01")), units=units)


async def apply_usage(
    uow: BillingUnitOfWork, usage: list[DayUsage]
) -> dict[tuple[str, date], Decimal]:
    """Consume buckets, charge what is out of bundle; returns the charge per (subscription, day)."""
    subscription_ids = sorted({u.subscription_id for u in usage})
    charges: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    if not subscription_ids:
        return charges
    buckets = await uow.buckets.active_buckets(subscription_ids=subscription_ids)
    prices = await uow.catalogue.usage_prices(subscription_ids=subscription_ids)
    customers = {u.subscription_id: u.customer_id for u in usage}
    ordered = sorted(usage, key=lambda u: (u.subscription_id, u.day, u.first))
    for item in ordered:
        own = buckets.get(item.subscription_id, [])
        amount = in_units(item.usage_type, item.quantity)
        left = consume(own, item.usage_type, amount, item.first, item.last)
        periods = prices.get((item.subscription_id, UNITS[item.usage_type]), [])
        charge = rate(left, price_at(periods, item.first))
        if charge > 0:
            charges[(item.subscription_id, item.day)] += charge
            airtime = next((b for b in own if b.usage_type == "airtime"), None)
            pay_from_airtime(airtime, charge)
    changed: list[Bucket] = []
    for subscription_id, own in buckets.items():
        for crossing in crossings(own):
            _announce(
                uow, crossing.kind, crossing.bucket, subscription_id, customers[subscription_id]
            )
        changed += [b for b in own if b.changed]
    await uow.buckets.save_buckets(changed)
    return charges


def _announce(
    uow: BillingUnitOfWork, kind: str, bucket: Bucket, subscription_id: str, customer_id: str
) -> None:
    units = UNITS[bucket.usage_type]
    if kind == "ran_low":
        threshold = threshold_of(bucket)
        uow.publish(
            BalanceRanLow(
                subscription_id=subscription_id,
                customer_id=customer_id,
                balance_type=bucket.usage_type,
                bucket_id=None if bucket.usage_type == "airtime" else bucket.id,
                remaining=_quantity(bucket.remaining, units),
                threshold=_quantity(threshold, units),
            )
        )
    elif kind == "depleted" and bucket.usage_type != "airtime":
        uow.publish(
            BundleDepleted(
                subscription_id=subscription_id,
                customer_id=customer_id,
                bucket_id=bucket.id,
                bucket_type=bucket.usage_type,
                offering_id=bucket.offering_id or "unknown",
            )
        )


async def expire_buckets(uow: BillingUnitOfWork, *, at: datetime, limit: int = 500) -> int:
    """Mark buckets past their validity expired and announce each; returns how many."""
    rows = await uow.buckets.expire_buckets(at=at, limit=limit)
    for row in rows:
        uow.publish(
            BundleExpired(
                subscription_id=row["subscription_id"],
                customer_id=row["customer_id"],
                bucket_id=row["id"],
                bucket_type=row["usage_type"],
                offering_id=row["offering_id"] or "unknown",
                unused=_quantity(Decimal(row["remaining"]), row["units"]),
            )
        )
    return len(rows)
