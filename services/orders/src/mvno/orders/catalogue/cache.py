"""The catalogue copy held in memory per replica, read when an order is placed.

The copy changes a few times a day and is read by every order, so each API replica keeps what it
read in memory (:class:`CatalogueCopyCache`) and drops it when the copy changes: the tables'
trigger raises ``NOTIFY orders_catalogue_changed`` at the commit of every change. While that
listener is down the cache is bypassed, so an order never sees a copy older than the database's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from mvno.common.notifications import NotifiedCache
from mvno.orders.catalogue.repository import CatalogueRepository
from mvno.orders.domain.catalogue import OfferingCopy
from mvno.orders.tables import CATALOGUE_CHANGED


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
