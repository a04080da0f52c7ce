"""The catalogue as orders knows it: a copy kept from catalog's events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class PriceCopy:
    price_id: str
    price_type: str
    recurring_period: str | None
    unit_of_measure: str | None
    duty_free_amount: Decimal
    tax_included_amount: Decimal
    tax_rate: Decimal
    valid_from: datetime
    valid_to: datetime | None

    def valid_at(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)

    def snapshot(self) -> dict[str, Any]:
        """What an order keeps of the price it was sold at."""
        return {
            "price_id": self.price_id,
            "price_type": self.price_type,
            "recurring_period": self.recurring_period,
            "unit_of_measure": self.unit_of_measure,
            "duty_free_amount": str(self.duty_free_amount),
            "tax_included_amount": str(self.tax_included_amount),
            "tax_rate": str(self.tax_rate),
        }


@dataclass(frozen=True)
class OfferingCopy:
    offering_id: str
    version: str
    name: str
    status: str
    channels: tuple[str, ...]
    payment_type: str
    product_kind: str | None
    sim_kinds: tuple[str, ...]
    allowance: dict[str, Any] | None
    valid_from: datetime
    valid_to: datetime | None
    prices: tuple[PriceCopy, ...] = ()

    def sellable(self, at: datetime, channel: str) -> bool:
        return (
            self.status == "launched"
            and self.valid_from <= at
            and (self.valid_to is None or at < self.valid_to)
            and channel in self.channels
        )

    def prices_at(self, at: datetime) -> tuple[PriceCopy, ...]:
        return tuple(price for price in self.prices if price.valid_at(at))
