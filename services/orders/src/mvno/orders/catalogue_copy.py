"""Keeping the catalogue copy from catalog's events, so ordering works while catalog is down,
and reading it from memory when an order is placed.

SQS delivers out of order: a retirement may arrive before the launch it ends. An offering's
version orders them: a launch never revives a retirement of the same or a later version.

The copy changes a few times a day and is read by every order, so each API replica keeps what it
read in memory (:class:`CatalogueCopyCache`) and drops it when the copy changes: the tables'
trigger raises ``NOTIFY orders_catalogue_changed`` at the commit of every change. While that
listener is down the cache is bypassed, so an order never sees a copy older than the database's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from mvno.common.bus.envelope import ReceivedEvent
from mvno.common.events.catalog import (
    OfferingLaunched,
    OfferingPrice,
    OfferingRetired,
    PriceChanged,
)
from mvno.common.notifications import NotifiedCache
from mvno.orders.catalogue.repository import CatalogueRepository
from mvno.orders.domain.catalogue import OfferingCopy
from mvno.orders.tables import CATALOGUE_CHANGED
from mvno.orders.unit_of_work import OrdersUnitOfWork

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CatalogueCopyCache:
    """Offerings of the copy (with their prices) as last read, per replica; ``None`` marks an
    offering the copy does not have. Emptied on every change to the copy."""

    def __init__(self, dsn: str) -> None:
        self._held: NotifiedCache[str, OfferingCopy | None] = NotifiedCache(dsn, CATALOGUE_CHANGED)

    async def offerings(
        self, reads: Callable[[], Awaitable[CatalogueRepository]], offering_ids: Iterable[str]
    ) -> dict[str, OfferingCopy]:
        """The offerings of ``offering_ids`` the copy has, reading only what is not held (through
        the repository ``reads`` gives, called only then)."""

        async def load(missing: set[str]) -> dict[str, OfferingCopy | None]:
            found = await (await reads()).offerings(offering_ids=missing)
            return {offering_id: found.get(offering_id) for offering_id in missing}

        held = await self._held.get_many(offering_ids, load)
        return {offering_id: copy for offering_id, copy in held.items() if copy is not None}

    async def follow_changes(self, stop: asyncio.Event) -> None:
        await self._held.follow_changes(stop)


def _version(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (0, value)


def _price_values(offering_id: str, price: OfferingPrice) -> dict[str, Any]:
    return {
        "price_id": price.price_id,
        "offering_id": offering_id,
        "price_type": price.price_type,
        "recurring_period": price.recurring_period,
        "unit_of_measure": price.unit_of_measure,
        "duty_free_amount": price.duty_free_amount.amount,
        "tax_included_amount": price.tax_included_amount.amount,
        "tax_rate": price.tax_rate,
        "valid_from": price.valid_from,
        "valid_to": price.valid_to,
    }


async def offering_launched(uow: OrdersUnitOfWork, event: ReceivedEvent) -> None:
    launched = OfferingLaunched.model_validate(event.data)
    current = await uow.catalogue.status_and_version(offering_id=launched.offering_id)
    if current and current[0] == "retired" and _version(current[1]) >= _version(launched.version):
        return  # its retirement arrived first
    repository = uow.catalogue
    await repository.put_offering(
        values={
            "offering_id": launched.offering_id,
            "version": launched.version,
            "name": launched.name,
            "status": "launched",
            "channels": list(launched.channels),
            "payment_type": launched.payment_type,
            "product_kind": launched.product_kind,
            "sim_kinds": list(launched.sim_kinds),
            "allowance": launched.allowance.model_dump() if launched.allowance else None,
            "valid_from": launched.valid_from,
            "valid_to": launched.valid_to,
            "updated_at": event.time or datetime.now(UTC),
        }
    )
    for price in launched.prices:
        await repository.put_price(values=_price_values(launched.offering_id, price))


async def offering_retired(uow: OrdersUnitOfWork, event: ReceivedEvent) -> None:
    retired = OfferingRetired.model_validate(event.data)
    at = event.time or datetime.now(UTC)
    repository = uow.catalogue
    if await uow.catalogue.status_and_version(offering_id=retired.offering_id) is None:
        # A tombstone, so the launch still on its way does not make it sellable.
        await repository.put_offering(
            values={
                "offering_id": retired.offering_id,
                "version": retired.version,
                "name": "",
                "status": "retired",
                "channels": [],
                "payment_type": "prepaid",
                "product_kind": None,
                "sim_kinds": [],
                "allowance": None,
                "valid_from": _EPOCH,
                "valid_to": None,
                "updated_at": at,
            }
        )
        return
    await repository.retire_offering(offering_id=retired.offering_id, at=at)


async def price_changed(uow: OrdersUnitOfWork, event: ReceivedEvent) -> None:
    changed = PriceChanged.model_validate(event.data)
    repository = uow.catalogue
    await repository.put_price(values=_price_values(changed.offering_id, changed.price))
    if changed.replaces_price_id:
        await repository.close_price(
            price_id=changed.replaces_price_id, at=changed.price.valid_from
        )
