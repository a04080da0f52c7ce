"""Reading and writing the catalogue copy (offerings and their prices) in the caller's
transaction. Never commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mvno.orders.catalogue.statements import PAYMENT_TYPE_OF_OFFERING
from mvno.orders.domain.catalogue import OfferingCopy, PriceCopy
from mvno.orders.tables import offering_copies, offering_price_copies


class CatalogueRepository:
    def __init__(
        self, session: AsyncSession | AsyncConnection, connection: asyncpg.Connection
    ) -> None:
        self._session = session
        self._connection = connection

    async def offerings(self, *, offering_ids: Iterable[str]) -> dict[str, OfferingCopy]:
        wanted = sorted(set(offering_ids))
        if not wanted:
            return {}
        rows = (
            await self._session.execute(
                select(offering_copies).where(offering_copies.c.offering_id.in_(wanted))
            )
        ).all()
        prices = (
            await self._session.execute(
                select(offering_price_copies).where(offering_price_copies.c.offering_id.in_(wanted))
            )
        ).all()
        by_offering: dict[str, list[PriceCopy]] = {}
        for price in prices:
            values = dict(price._mapping)
            by_offering.setdefault(values.pop("offering_id"), []).append(PriceCopy(**values))
        return {
            row.offering_id: OfferingCopy(
                **{
                    **{k: v for k, v in row._mapping.items() if k != "updated_at"},
                    "channels": tuple(row.channels),
                    "sim_kinds": tuple(row.sim_kinds),
                    "prices": tuple(by_offering.get(row.offering_id, [])),
                }
            )
            for row in rows
        }

    async def holds_any(self) -> bool:
        """Whether the copy has received any offering (launched or retired) from catalog."""
        found = await self._session.execute(select(offering_copies.c.offering_id).limit(1))
        return found.first() is not None

    async def status_and_version(self, *, offering_id: str) -> tuple[str, str] | None:
        """The offering's status and version in the copy, if it has the offering."""
        row = (
            await self._session.execute(
                select(offering_copies.c.status, offering_copies.c.version).where(
                    offering_copies.c.offering_id == offering_id
                )
            )
        ).first()
        return None if row is None else (row.status, row.version)

    async def payment_type_of(self, *, offering_id: str) -> str | None:
        """The offering's payment type (prepaid, postpaid) in the catalogue copy."""
        found = await PAYMENT_TYPE_OF_OFFERING.fetchval(self._connection, offering_id=offering_id)
        return None if found is None else str(found)

    async def put_offering(self, *, values: dict[str, Any]) -> None:
        statement = pg_insert(offering_copies).values(values)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[offering_copies.c.offering_id],
                set_={key: statement.excluded[key] for key in values if key != "offering_id"},
            )
        )

    async def retire_offering(self, *, offering_id: str, at: datetime) -> None:
        await self._session.execute(
            update(offering_copies)
            .where(offering_copies.c.offering_id == offering_id)
            .values(status="retired", updated_at=at)
        )

    async def put_price(self, *, values: dict[str, Any]) -> None:
        statement = pg_insert(offering_price_copies).values(values)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[offering_price_copies.c.price_id],
                set_={key: statement.excluded[key] for key in values if key != "price_id"},
            )
        )

    async def close_price(self, *, price_id: str, at: datetime) -> None:
        await self._session.execute(
            update(offering_price_copies)
            .where(offering_price_copies.c.price_id == price_id)
            .where(
                (offering_price_copies.c.valid_to.is_(None))
                | (offering_price_copies.c.valid_to > at)
            )
            .values(valid_to=at)
        )
