"""What staff ask the catalogue to do, as plain values the handlers act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from mvno.catalog.domain.model import (
    Channel,
    LifecycleStatus,
    PaymentType,
    PriceType,
    ProductKind,
    SimKind,
    UnitOfMeasure,
    ValidFor,
)


@dataclass(frozen=True)
class Actor:
    """Who asked, for the audit trail."""

    subject: str
    client_id: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class CategoryTerms:
    name: str
    description: str | None = None
    parent_id: str | None = None


@dataclass(frozen=True)
class SpecificationTerms:
    name: str
    product_kind: ProductKind
    payment_type: PaymentType
    description: str | None = None
    brand: str | None = None
    sim_kinds: tuple[SimKind, ...] = ()
    data_mb: int = 0
    voice_minutes: int = 0
    sms: int = 0
    validity_days: int | None = None


@dataclass(frozen=True)
class PriceTerms:
    name: str
    price_type: PriceType
    amount: Decimal
    recurring_period: Literal["month"] | None = None
    unit_of_measure: UnitOfMeasure | None = None
    starts: datetime | None = None
    """When the price opens; now when not given."""


@dataclass(frozen=True)
class OfferingTerms:
    name: str
    specification_id: str
    channels: tuple[Channel, ...]
    valid_for: ValidFor
    description: str | None = None
    category_id: str | None = None
    bundled_offering_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedOffering:
    offering_id: str
    terms: OfferingTerms
    prices: tuple[PriceTerms, ...]
    lifecycle_status: LifecycleStatus


@dataclass(frozen=True)
class ImportFeed:
    """A partner's whole product feed: applied completely or not at all."""

    partner: str
    categories: tuple[tuple[str, CategoryTerms], ...] = ()
    specifications: tuple[tuple[str, SpecificationTerms], ...] = ()
    offerings: tuple[FeedOffering, ...] = ()


@dataclass
class FeedOutcome:
    """What an import changed, per kind of entity: ids created, updated, or left as they were."""

    created: dict[str, list[str]] = field(default_factory=dict)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: dict[str, list[str]] = field(default_factory=dict)
    prices_opened: list[str] = field(default_factory=list)
    transitions: list[str] = field(default_factory=list)

    def count(
        self, outcome: Literal["created", "updated", "unchanged"], kind: str, id_: str
    ) -> None:
        getattr(self, outcome).setdefault(kind, []).append(id_)
