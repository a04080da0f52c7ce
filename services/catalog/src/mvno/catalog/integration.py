"""Domain events of the catalogue translated into the integration events other services read.

This is the one place where the catalogue's model meets the bus contracts in
:mod:`mvno.common.events.catalog`.
"""

from __future__ import annotations

from mvno.catalog.domain.model import (
    DomainEvent,
    Launched,
    Price,
    PriceOpened,
    Retired,
    Specification,
)
from mvno.common.events.base import Allowance, EventData, Money
from mvno.common.events.catalog import (
    OfferingLaunched,
    OfferingPrice,
    OfferingRetired,
    PriceChanged,
)


def integration_event(event: DomainEvent, specification: Specification) -> EventData:
    """The bus event announcing ``event`` on an offering of ``specification``."""
    match event:
        case Launched(offering=offering, prices=prices):
            return OfferingLaunched(
                offering_id=offering.id,
                version=str(offering.version),
                name=offering.name,
                category_id=offering.category_id,
                channels=offering.channels,
                payment_type=specification.payment_type,
                product_kind=specification.product_kind,
                sim_kinds=specification.sim_kinds,
                allowance=_allowance(specification),
                is_bundle=offering.is_bundle,
                bundled_offering_ids=offering.bundled_offering_ids,
                valid_from=offering.valid_for.start,
                valid_to=offering.valid_for.end,
                prices=tuple(offering_price(price) for price in prices),
            )
        case Retired(offering=offering):
            return OfferingRetired(offering_id=offering.id, version=str(offering.version))
        case PriceOpened(price=price, replaces=replaces):
            return PriceChanged(
                offering_id=price.offering_id,
                price=offering_price(price),
                replaces_price_id=replaces.id if replaces else None,
            )


def offering_price(price: Price) -> OfferingPrice:
    return OfferingPrice(
        price_id=price.id,
        price_type=price.price_type,
        recurring_period=price.recurring_period,
        unit_of_measure=price.unit_of_measure,
        duty_free_amount=Money(amount=price.duty_free_amount),
        tax_included_amount=Money(amount=price.amount),
        tax_rate=price.tax_rate,
        valid_from=price.valid_for.start,
        valid_to=price.valid_for.end,
    )


def _allowance(specification: Specification) -> Allowance | None:
    if not specification.has_allowance or specification.validity_days is None:
        return None
    return Allowance(
        data_mb=specification.data_mb,
        voice_minutes=specification.voice_minutes,
        sms=specification.sms,
        validity_days=specification.validity_days,
    )
