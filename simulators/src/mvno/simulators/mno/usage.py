"""Usage records (data, voice, SMS) the network operator exports for billing to ingest.

Usage accrues on active subscriptions as the simulators' clock moves: every interval of
simulated time gives each active line a few records drawn from the seeded generator. Records are
numbered in the order they are exported; a client polls with the last number it has read as its
cursor and never misses or sees a record twice.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mvno.simulators.ids import new_id
from mvno.simulators.mno.subscriptions import Subscription

# How many intervals one accrual generates at most: jumping the clock a year ahead must not
# stall the server generating millions of records. Older intervals are skipped.
MAX_INTERVALS_PER_ACCRUAL = 1000


class UsageKind(StrEnum):
    DATA = "data"
    VOICE = "voice"
    SMS = "sms"


# Per interval: the chance of a record of each kind and the range of its quantity.
DRAWS = (
    (UsageKind.DATA, 0.8, (50_000, 50_000_000)),
    (UsageKind.VOICE, 0.3, (10, 900)),
    (UsageKind.SMS, 0.2, (1, 3)),
)
UNITS = {UsageKind.DATA: "bytes", UsageKind.VOICE: "seconds", UsageKind.SMS: "messages"}


@dataclass(frozen=True)
class UsageRecord:
    sequence: int
    id: str
    subscription_id: str
    msisdn: str
    kind: UsageKind
    started_at: datetime
    quantity: int

    @property
    def unit(self) -> str:
        return UNITS[self.kind]


class UsageLedger:
    def __init__(self, rng: random.Random, *, interval: timedelta | None) -> None:
        self.rng = rng
        self.interval = interval
        self.records: list[UsageRecord] = []
        self.by_subscription: dict[str, list[int]] = {}  # subscription id -> indexes in records

    def accrue(self, subscription: Subscription, now: datetime) -> None:
        """Generate the usage of ``subscription`` for every whole interval up to ``now``."""
        start = subscription.usage_accrued_until
        if self.interval is None or start is None:
            return
        intervals = int((now - start) / self.interval)
        if intervals <= 0:
            return
        skipped = max(0, intervals - MAX_INTERVALS_PER_ACCRUAL)
        for index in range(skipped, intervals):
            self._generate(subscription, start + index * self.interval)
        subscription.usage_accrued_until = start + intervals * self.interval

    def _generate(self, subscription: Subscription, interval_start: datetime) -> None:
        assert self.interval is not None
        for kind, chance, (low, high) in DRAWS:
            if self.rng.random() < chance:
                offset = timedelta(seconds=self.rng.uniform(0, self.interval.total_seconds()))
                self.add(
                    subscription,
                    kind=kind,
                    started_at=interval_start + offset,
                    quantity=self.rng.randint(low, high),
                )

    def add(
        self, subscription: Subscription, *, kind: UsageKind, started_at: datetime, quantity: int
    ) -> UsageRecord:
        record = UsageRecord(
            sequence=len(self.records) + 1,
            id=new_id(self.rng),
            subscription_id=subscription.id,
            msisdn=subscription.msisdn,
            kind=kind,
            started_at=started_at,
            quantity=quantity,
        )
        self.by_subscription.setdefault(subscription.id, []).append(len(self.records))
        self.records.append(record)
        return record

    def page(self, *, after: int, limit: int, subscription_id: str | None) -> list[UsageRecord]:
        """Records numbered above ``after`` (the cursor), oldest first."""
        if subscription_id is None:
            return self.records[after : after + limit]
        indexes = self.by_subscription.get(subscription_id, [])
        start = bisect.bisect_left(indexes, after)  # index i holds the record numbered i + 1
        return [self.records[i] for i in indexes[start : start + limit]]
