"""Categories, product specifications, offerings and their versioned prices.

An offering moves through its lifecycle only by :meth:`Offering.transition`, along
``In design → Active → Launched → Retired → Obsolete``; its commercial terms are edited only
before launch, and its prices change only by opening a new version that closes the current one.
Every change is recorded as a domain event in :attr:`Offering.events`, which the handlers translate
into integration events on the bus.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any, Literal

Channel = Literal["app", "web", "branch", "call_centre", "ussd", "partner"]
SimKind = Literal["pSIM", "eSIM"]
PaymentType = Literal["prepaid", "postpaid"]
ProductKind = Literal[
    "starter_pack", "data_bundle", "voice_bundle", "combo_bundle", "airtime", "contract"
]
PriceType = Literal["oneTime", "recurring", "usage"]
UnitOfMeasure = Literal["MB", "minute", "SMS"]

CENT = Decimal("0.01")


class CatalogError(Exception):
    """A command the catalogue refuses; ``pointer`` names the offending input when there is one."""

    def __init__(self, message: str, *, pointer: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer


class NotFound(CatalogError):
    """The entity a command is about does not exist."""


class UnknownReference(CatalogError):
    """The input refers to a category, specification or offering that does not exist."""


class Conflict(CatalogError):
    """The command is valid, but the entity's current state refuses it."""


class InvalidTransition(Conflict):
    """The lifecycle does not allow this move from the current status."""


class NotEditable(Conflict):
    """The entity's state forbids this change (a launched offering's terms are fixed)."""


class InvalidPrice(CatalogError):
    """The price itself is not acceptable."""


class PriceConflict(Conflict):
    """The price does not fit the offering's price history."""


class LifecycleStatus(StrEnum):
    """TMF620 lifecycle statuses the platform uses, spelled as TMF620 spells them."""

    IN_DESIGN = "In design"
    ACTIVE = "Active"
    LAUNCHED = "Launched"
    RETIRED = "Retired"
    OBSOLETE = "Obsolete"


NEXT_STATUS: dict[LifecycleStatus, LifecycleStatus | None] = {
    LifecycleStatus.IN_DESIGN: LifecycleStatus.ACTIVE,
    LifecycleStatus.ACTIVE: LifecycleStatus.LAUNCHED,
    LifecycleStatus.LAUNCHED: LifecycleStatus.RETIRED,
    LifecycleStatus.RETIRED: LifecycleStatus.OBSOLETE,
    LifecycleStatus.OBSOLETE: None,
}
"""The only move allowed from each status: the lifecycle is one straight line."""

ORDER = list(NEXT_STATUS)


def path_to(current: LifecycleStatus, target: LifecycleStatus) -> list[LifecycleStatus]:
    """The statuses to pass through from ``current`` to reach ``target`` (empty when there).

    Raises :class:`InvalidTransition` when ``target`` lies behind ``current``.
    """
    if ORDER.index(target) < ORDER.index(current):
        raise InvalidTransition(
            f"the lifecycle goes forward only: cannot go from {current} to {target}"
        )
    return ORDER[ORDER.index(current) + 1 : ORDER.index(target) + 1]


@dataclass(frozen=True)
class ValidFor:
    """A half-open period ``[start, end)``; no end means open-ended."""

    start: datetime
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.end is not None and self.end <= self.start:
            raise CatalogError(
                "validFor.endDateTime must be after validFor.startDateTime",
                pointer="/validFor/endDateTime",
            )

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant and (self.end is None or instant < self.end)


@dataclass
class Category:
    id: str
    name: str
    description: str | None
    parent_id: str | None
    version: int
    last_update: datetime


@dataclass
class Specification:
    """What a product is: a SIM, a bundle's allowance, airtime or a contract."""

    id: str
    name: str
    description: str | None
    brand: str | None
    product_kind: ProductKind
    payment_type: PaymentType
    sim_kinds: tuple[SimKind, ...]
    data_mb: int
    voice_minutes: int
    sms: int
    validity_days: int | None
    version: int
    last_update: datetime

    def __post_init__(self) -> None:
        if self.product_kind == "starter_pack" and not self.sim_kinds:
            raise CatalogError("a starter pack names the SIM kinds it offers", pointer="/simKinds")
        if self.product_kind != "starter_pack" and self.sim_kinds:
            raise CatalogError("only a starter pack includes a SIM", pointer="/simKinds")
        if self.has_allowance and self.validity_days is None:
            raise CatalogError(
                "an allowance needs validity days (how long it lasts)", pointer="/validityDays"
            )

    @property
    def has_allowance(self) -> bool:
        return bool(self.data_mb or self.voice_minutes or self.sms)


@dataclass(frozen=True)
class Price:
    """One version of one price of an offering; never edited, only closed by a newer version.

    The amount is what the customer pays, VAT included, as South African retail prices are
    quoted; the VAT and the amount without it are derived from the rate in force.
    """

    id: str
    offering_id: str
    name: str
    price_type: PriceType
    amount: Decimal
    tax_rate: Decimal
    valid_for: ValidFor
    recurring_period: Literal["month"] | None = None
    unit_of_measure: UnitOfMeasure | None = None

    def __post_init__(self) -> None:
        if self.amount < 0 or self.amount != self.amount.quantize(CENT):
            raise InvalidPrice(
                "a price is a non-negative amount in rand with at most two decimals",
                pointer="/price/value",
            )
        object.__setattr__(self, "amount", self.amount.quantize(CENT))  # R49 is R49.00
        if (self.price_type == "recurring") != (self.recurring_period is not None):
            raise InvalidPrice(
                "a recurring price, and only a recurring price, has a recurring charge period",
                pointer="/recurringChargePeriodType",
            )
        if (self.price_type == "usage") != (self.unit_of_measure is not None):
            raise InvalidPrice(
                "a usage price, and only a usage price, has a unit of measure",
                pointer="/unitOfMeasure",
            )

    @property
    def slot(self) -> tuple[str, str | None]:
        """Prices in the same slot replace one another: at most one is valid at any instant."""
        return (self.price_type, self.unit_of_measure)

    @property
    def duty_free_amount(self) -> Decimal:
        return (self.amount * 100 / (100 + self.tax_rate)).quantize(CENT, ROUND_HALF_UP)

    @property
    def tax_amount(self) -> Decimal:
        return self.amount - self.duty_free_amount

    def is_open_at(self, instant: datetime) -> bool:
        """Valid at ``instant`` or later: not yet closed by then."""
        return self.valid_for.end is None or instant < self.valid_for.end


# --- domain events --------------------------------------------------------------------------


@dataclass(frozen=True)
class Launched:
    offering: Offering
    prices: tuple[Price, ...]


@dataclass(frozen=True)
class Retired:
    offering: Offering


@dataclass(frozen=True)
class PriceOpened:
    price: Price
    replaces: Price | None


DomainEvent = Launched | Retired | PriceOpened


@dataclass
class Offering:
    """What is sold: a specification on some channels, for a period, at versioned prices."""

    id: str
    name: str
    description: str | None
    category_id: str | None
    specification_id: str
    channels: tuple[Channel, ...]
    valid_for: ValidFor
    bundled_offering_ids: tuple[str, ...]
    lifecycle_status: LifecycleStatus
    version: int
    last_update: datetime
    prices: list[Price] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.channels:
            raise CatalogError("an offering is sold on at least one channel", pointer="/channel")
        if len(set(self.channels)) != len(self.channels):
            raise CatalogError("a channel is listed twice", pointer="/channel")
        if self.id in self.bundled_offering_ids:
            raise CatalogError(
                "an offering cannot bundle itself", pointer="/bundledProductOffering"
            )

    @property
    def is_bundle(self) -> bool:
        return bool(self.bundled_offering_ids)

    @property
    def editable(self) -> bool:
        return self.lifecycle_status in (LifecycleStatus.IN_DESIGN, LifecycleStatus.ACTIVE)

    def is_sellable(self, at: datetime, channel: Channel | None = None) -> bool:
        """Launched, inside its validity, and (when given) offered on ``channel``."""
        return (
            self.lifecycle_status is LifecycleStatus.LAUNCHED
            and self.valid_for.contains(at)
            and (channel is None or channel in self.channels)
        )

    def prices_at(self, instant: datetime) -> list[Price]:
        """The prices valid at ``instant``: what an order placed then was charged."""
        return [price for price in self.prices if price.valid_for.contains(instant)]

    def open_prices(self, at: datetime) -> list[Price]:
        """Prices valid at ``at`` or opening later: what a copy of the offering must know."""
        return [price for price in self.prices if price.is_open_at(at)]

    def revise(self, at: datetime, **changes: Any) -> dict[str, tuple[Any, Any]]:
        """Change commercial terms before launch; returns ``{field: (old, new)}`` of real changes."""
        changed = {
            name: (getattr(self, name), value)
            for name, value in changes.items()
            if getattr(self, name) != value
        }
        if not changed:
            return {}
        if not self.editable:
            raise NotEditable(
                f"offering {self.id} is {self.lifecycle_status}: its terms are fixed; "
                "retire it and launch a new offering instead"
            )
        candidate = replace(self, **changes)  # runs the invariants on the new terms
        for name, (_, new) in changed.items():
            setattr(self, name, getattr(candidate, name, new))
        self.version += 1
        self.last_update = at
        return changed

    def transition(self, target: LifecycleStatus, at: datetime) -> None:
        """Move to ``target``, the next status in the lifecycle; anything else is refused."""
        allowed = NEXT_STATUS[self.lifecycle_status]
        if target != allowed:
            raise InvalidTransition(
                f"offering {self.id} is {self.lifecycle_status}; "
                + (f"it can only move to {allowed}" if allowed else "it is final")
                + f", not to {target}",
                pointer="/lifecycleStatus",
            )
        if target is LifecycleStatus.LAUNCHED:
            open_prices = self.open_prices(at)
            if not open_prices:
                raise InvalidTransition(
                    f"offering {self.id} has no price valid now or later; add one before launch",
                    pointer="/lifecycleStatus",
                )
            self.events.append(Launched(self, tuple(open_prices)))
        elif target is LifecycleStatus.RETIRED:
            self.events.append(Retired(self))
        self.lifecycle_status = target
        self.last_update = at

    def add_price(self, price: Price, at: datetime) -> Price | None:
        """Open ``price``; the current version in its slot closes when it starts.

        A price starts now or later, never in the past: what was charged must stay what was
        charged. Returns the price it closed, if any.
        """
        if price.offering_id != self.id:
            raise InvalidPrice("the price belongs to another offering")
        if self.lifecycle_status in (LifecycleStatus.RETIRED, LifecycleStatus.OBSOLETE):
            raise NotEditable(f"offering {self.id} is {self.lifecycle_status}: it is not priced")
        if price.valid_for.start < at:
            raise PriceConflict(
                "a price cannot start in the past", pointer="/validFor/startDateTime"
            )
        if price.valid_for.end is not None:
            raise InvalidPrice(
                "a new price is open-ended; it ends when a newer version opens",
                pointer="/validFor/endDateTime",
            )
        same_slot = [p for p in self.prices if p.slot == price.slot and p.is_open_at(at)]
        latest = max(same_slot, key=lambda p: p.valid_for.start, default=None)
        if latest is not None and latest.valid_for.start >= price.valid_for.start:
            raise PriceConflict(
                f"price {latest.id} already starts at {latest.valid_for.start.isoformat()}; "
                "a new version must start after it",
                pointer="/validFor/startDateTime",
            )
        closed = None
        if latest is not None:
            closed = replace(
                latest, valid_for=ValidFor(latest.valid_for.start, price.valid_for.start)
            )
            self.prices[self.prices.index(latest)] = closed
        self.prices.append(price)
        self.last_update = at
        if self.lifecycle_status is LifecycleStatus.LAUNCHED:
            # News only to those holding a copy; a launch announces the prices it opens with.
            self.events.append(PriceOpened(price, closed))
        return closed

    def same_price(self, other: Price, at: datetime) -> bool:
        """Whether an open price in ``other``'s slot already charges exactly what it charges."""
        return any(
            p.slot == other.slot
            and p.is_open_at(at)
            and p.valid_for.end is None
            and (p.amount, p.tax_rate, p.name, p.recurring_period)
            == (other.amount, other.tax_rate, other.name, other.recurring_period)
            for p in self.prices
        )
