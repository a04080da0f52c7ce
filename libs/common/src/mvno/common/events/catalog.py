"""Events published by the catalog service (producer ``catalog``).

They let orders and billing-sync keep their own copy of what can be sold, where and at what price
(ordering keeps working while catalog is down). Values follow TMF620 where it names them: price
types ``oneTime``/``recurring``/``usage``, and a tax-free amount, a tax-included amount and a tax
rate per price. Field names are snake_case, like every contract.

An offering's price changes by closing one price and opening another (prices are never edited in
place), so every price carries its own id and ``valid_from``/``valid_to``: an order can always name
the price it was sold at.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from mvno.common.events.base import (
    Allowance,
    Channel,
    ContractModel,
    DecimalString,
    EventData,
    Money,
    PaymentType,
    SimKind,
)

PRODUCER = "catalog"

ProductKind = Literal[
    "starter_pack", "data_bundle", "voice_bundle", "combo_bundle", "airtime", "contract"
]
"""What an offering sells: a SIM with a number, an allowance, airtime, or a postpaid contract."""

PriceType = Literal["oneTime", "recurring", "usage"]
"""TMF620 ``priceType``: once at purchase, every period, or per unit used (out of bundle)."""


class OfferingPrice(ContractModel):
    """One version of a price of an offering (TMF620 ProductOfferingPrice, flattened)."""

    price_id: str = Field(min_length=1)
    price_type: PriceType
    recurring_period: Literal["month"] | None = None
    """For ``recurring`` prices: how often it is charged."""
    unit_of_measure: Literal["MB", "minute", "SMS"] | None = None
    """For ``usage`` prices: the unit the amounts are per."""
    duty_free_amount: Money
    """Excluding VAT."""
    tax_included_amount: Money
    """Including VAT: what the customer pays."""
    tax_rate: DecimalString
    """VAT in percent, e.g. ``"15"``."""
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None


class OfferingLaunched(EventData):
    """An offering became sellable (lifecycle status Launched) on the channels it lists."""

    event_type = "catalog.offering.launched.v1"
    subject_field = "offering_id"

    offering_id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    """The offering's catalogue version; a relaunch with changes publishes a higher one."""
    name: str
    category_id: str | None = None
    channels: tuple[Channel, ...]
    payment_type: PaymentType
    product_kind: ProductKind | None = None
    """Optional so that v1 stays compatible with its first schema; the catalog always sets it."""
    sim_kinds: tuple[SimKind, ...] = ()
    """For offerings that include a SIM: the kinds a customer may choose; empty otherwise."""
    allowance: Allowance | None = None
    """For bundles and contracts: what it gives per period."""
    is_bundle: bool = False
    bundled_offering_ids: tuple[str, ...] = ()
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None
    prices: tuple[OfferingPrice, ...]
    """The prices valid at launch, and any already set to open later."""


class OfferingRetired(EventData):
    """An offering stopped being sellable (lifecycle status Retired); existing lines keep it."""

    event_type = "catalog.offering.retired.v1"
    subject_field = "offering_id"

    offering_id: str = Field(min_length=1)
    version: str = Field(min_length=1)


class PriceChanged(EventData):
    """A new price version of an offering opened; the one it replaces (if any) closed."""

    event_type = "catalog.price.changed.v1"
    subject_field = "offering_id"

    offering_id: str = Field(min_length=1)
    price: OfferingPrice
    """The new price, valid from ``price.valid_from``."""
    replaces_price_id: str | None = None
    """The price whose ``valid_to`` this change set, so copies can close it too."""


EVENTS: tuple[type[EventData], ...] = (OfferingLaunched, OfferingRetired, PriceChanged)
"""Every event this producer publishes, listed by hand for the registry."""
