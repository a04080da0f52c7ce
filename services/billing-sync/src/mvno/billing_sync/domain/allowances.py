"""Buckets and the airtime balance: consumption order, out-of-bundle rating, thresholds. No I/O.

Usage of one kind consumes the subscription's active buckets of that kind valid when it happened,
the one expiring first first (then the oldest); what no bucket covers is out of bundle, rated at
the tariff's usage price in force when it happened and taken from the airtime balance (which may not go below zero; what it
cannot pay is still charged on the day's usage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

UNITS = {"data": "MB", "voice": "minute", "sms": "SMS", "airtime": "ZAR"}
CENT = Decimal("0.01")
AIRTIME_LOW = Decimal("10.00")
"""Airtime balance (ZAR) below which the customer is told it runs low."""
LOW_FRACTION = Decimal("0.2")
"""Share of a bucket's initial allowance below which the customer is told it runs low."""


@dataclass
class Bucket:
    id: str
    usage_type: str
    initial: Decimal
    remaining: Decimal
    valid_from: datetime
    valid_to: datetime | None
    created_at: datetime
    status: str = "active"
    low_notified: bool = False
    offering_id: str | None = None
    changed: bool = field(default=False, compare=False)

    def usable_at(self, first: datetime, last: datetime) -> bool:
        return (
            self.status == "active"
            and self.remaining > 0
            and self.valid_from <= last
            and (self.valid_to is None or self.valid_to > first)
        )


@dataclass(frozen=True)
class Crossing:
    """Something to announce after consumption."""

    kind: str  # ran_low | depleted
    bucket: Bucket


def consume(
    buckets: list[Bucket], usage_type: str, amount: Decimal, first: datetime, last: datetime
) -> Decimal:
    """Take ``amount`` from the usable buckets in order; the part none covers is returned."""
    usable = sorted(
        (b for b in buckets if b.usage_type == usage_type and b.usable_at(first, last)),
        key=lambda b: (b.valid_to is None, b.valid_to or last, b.created_at, b.id),
    )
    left = amount
    for bucket in usable:
        if left <= 0:
            break
        taken = min(bucket.remaining, left)
        bucket.remaining -= taken
        bucket.changed = True
        left -= taken
        if bucket.remaining <= 0:
            bucket.remaining = Decimal(0)
            bucket.status = "depleted"
    return left


@dataclass(frozen=True)
class PricePeriod:
    """One version of a tariff's usage price (per MB, minute or SMS) and when it applied."""

    valid_from: datetime
    valid_to: datetime | None
    amount: Decimal


def price_at(periods: list[PricePeriod], at: datetime) -> Decimal | None:
    """The price in force at ``at``: usage is rated at the price of when it happened."""
    for period in sorted(periods, key=lambda p: p.valid_from, reverse=True):
        if period.valid_from <= at and (period.valid_to is None or at < period.valid_to):
            return period.amount
    return None


def rate(out_of_bundle: Decimal, unit_price: Decimal | None) -> Decimal:
    """The charge for usage no bucket covered; no usage price means it is not charged."""
    if unit_price is None or out_of_bundle <= 0:
        return Decimal("0.00")
    return (out_of_bundle * unit_price).quantize(CENT)


def pay_from_airtime(airtime: Bucket | None, charge: Decimal) -> None:
    if airtime is None or charge <= 0:
        return
    airtime.remaining = max(Decimal(0), airtime.remaining - charge)
    airtime.changed = True


def threshold_of(bucket: Bucket) -> Decimal:
    if bucket.usage_type == "airtime":
        return AIRTIME_LOW
    return bucket.initial * LOW_FRACTION


def crossings(buckets: list[Bucket]) -> list[Crossing]:
    """Low-balance and depletion announcements owed after a change, each once per crossing.

    A bucket below its threshold is announced once (``low_notified``); going back above it (a
    top-up) re-arms the announcement. Only changed buckets are looked at, and each bucket here was
    active before the change, so ``depleted`` means it was used up by this change.
    """
    found: list[Crossing] = []
    for bucket in buckets:
        threshold = threshold_of(bucket)
        below = bucket.remaining < threshold
        if below and not bucket.low_notified and bucket.changed:
            bucket.low_notified = True
            found.append(Crossing("ran_low", bucket))
        elif not below and bucket.low_notified:
            bucket.low_notified = False
            bucket.changed = True
        if bucket.status == "depleted" and bucket.changed:
            found.append(Crossing("depleted", bucket))
    return found
