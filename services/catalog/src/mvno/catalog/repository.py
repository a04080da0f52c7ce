"""Loading and saving the catalogue's aggregates. Methods never commit: the unit of work does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, func, insert, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from mvno.catalog.domain.model import (
    Category,
    Channel,
    LifecycleStatus,
    Offering,
    Price,
    Specification,
    ValidFor,
)
from mvno.catalog.tables import (
    audit_records,
    categories,
    offering_prices,
    product_offerings,
    product_specifications,
)


@dataclass(frozen=True)
class OfferingFilter:
    """What a list of offerings is narrowed to; ``sellable`` compares with sellability ``at``."""

    lifecycle_status: LifecycleStatus | None = None
    category_id: str | None = None
    channel: Channel | None = None
    sellable: bool | None = None
    at: datetime | None = None


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    client_id: str | None
    request_id: str | None
    action: str
    entity_type: str
    entity_id: str
    changes: dict[str, Any]


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- categories ---------------------------------------------------------------------

    async def get_category(self, *, category_id: str) -> Category | None:
        row = (
            await self._session.execute(select(categories).where(categories.c.id == category_id))
        ).first()
        return None if row is None else Category(**row._mapping)

    async def list_categories(self, *, offset: int, limit: int) -> tuple[int, list[Category]]:
        query = select(categories, func.count().over().label("total")).order_by(
            categories.c.name, categories.c.id
        )
        rows = (await self._session.execute(query.offset(offset).limit(limit))).all()
        total = rows[0].total if rows else await self._count(select(categories))
        return total, [Category(**_without(row._mapping, "total")) for row in rows]

    async def save_category(self, *, category: Category, new: bool) -> None:
        values = vars(category)
        if new:
            await self._session.execute(insert(categories).values(values))
        else:
            await self._session.execute(
                update(categories).where(categories.c.id == category.id).values(values)
            )

    # --- specifications -------------------------------------------------------------------

    async def get_specification(self, *, specification_id: str) -> Specification | None:
        row = (
            await self._session.execute(
                select(product_specifications).where(
                    product_specifications.c.id == specification_id
                )
            )
        ).first()
        return None if row is None else _specification(row._mapping)

    async def list_specifications(
        self, *, offset: int, limit: int
    ) -> tuple[int, list[Specification]]:
        query = select(product_specifications, func.count().over().label("total")).order_by(
            product_specifications.c.name, product_specifications.c.id
        )
        rows = (await self._session.execute(query.offset(offset).limit(limit))).all()
        total = rows[0].total if rows else await self._count(select(product_specifications))
        return total, [_specification(_without(row._mapping, "total")) for row in rows]

    async def save_specification(self, *, specification: Specification, new: bool) -> None:
        values = dict(vars(specification), sim_kinds=list(specification.sim_kinds))
        if new:
            await self._session.execute(insert(product_specifications).values(values))
        else:
            await self._session.execute(
                update(product_specifications)
                .where(product_specifications.c.id == specification.id)
                .values(values)
            )

    async def specification_in_use(self, *, specification_id: str) -> bool:
        """Whether an offering past design relies on the specification's meaning."""
        found = await self._session.scalar(
            select(product_offerings.c.id)
            .where(
                product_offerings.c.specification_id == specification_id,
                product_offerings.c.lifecycle_status.notin_(
                    [LifecycleStatus.IN_DESIGN, LifecycleStatus.ACTIVE]
                ),
            )
            .limit(1)
        )
        return found is not None

    # --- offerings ------------------------------------------------------------------------

    async def get_offering(self, *, offering_id: str, for_update: bool = False) -> Offering | None:
        query = select(product_offerings).where(product_offerings.c.id == offering_id)
        if for_update:
            # Serialises writers of one offering: two price changes cannot both close one price.
            query = query.with_for_update()
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        offering = _offering(row._mapping)
        offering.prices = (await self._prices_of([offering_id])).get(offering_id, [])
        return offering

    async def existing_offering_ids(self, *, offering_ids: Iterable[str]) -> set[str]:
        wanted = list(set(offering_ids))
        if not wanted:
            return set()
        rows = await self._session.scalars(
            select(product_offerings.c.id).where(product_offerings.c.id.in_(wanted))
        )
        return set(rows)

    async def list_offerings(
        self, *, where: OfferingFilter, offset: int, limit: int
    ) -> tuple[int, list[Offering]]:
        """A page of offerings in a stable order (name, then id) and the total that match."""
        conditions = _offering_conditions(where)
        query = (
            select(product_offerings, func.count().over().label("total"))
            .where(*conditions)
            .order_by(product_offerings.c.name, product_offerings.c.id)
            .offset(offset)
            .limit(limit)
        )
        rows = (await self._session.execute(query)).all()
        if rows:
            total = rows[0].total
        else:
            total = await self._count(select(product_offerings.c.id).where(*conditions))
        offerings = [_offering(_without(row._mapping, "total")) for row in rows]
        prices = await self._prices_of([o.id for o in offerings])
        for offering in offerings:
            offering.prices = prices.get(offering.id, [])
        return total, offerings

    async def save_offering(self, *, offering: Offering, new: bool) -> None:
        values = {
            "id": offering.id,
            "name": offering.name,
            "description": offering.description,
            "category_id": offering.category_id,
            "specification_id": offering.specification_id,
            "channels": list(offering.channels),
            "valid_from": offering.valid_for.start,
            "valid_to": offering.valid_for.end,
            "bundled_offering_ids": list(offering.bundled_offering_ids),
            "lifecycle_status": str(offering.lifecycle_status),
            "version": offering.version,
            "last_update": offering.last_update,
        }
        if new:
            await self._session.execute(insert(product_offerings).values(values))
        else:
            await self._session.execute(
                update(product_offerings)
                .where(product_offerings.c.id == offering.id)
                .values(values)
            )
        if offering.prices:
            # Prices are never edited: a new one is inserted, an old one only gets its end.
            statement = pg_insert(offering_prices).values(
                [_price_values(price) for price in offering.prices]
            )
            await self._session.execute(
                statement.on_conflict_do_update(
                    index_elements=[offering_prices.c.id],
                    set_={"valid_to": statement.excluded.valid_to},
                    where=offering_prices.c.valid_to.is_distinct_from(statement.excluded.valid_to),
                )
            )

    # --- prices -----------------------------------------------------------------------------

    async def get_price(self, *, price_id: str) -> Price | None:
        row = (
            await self._session.execute(
                select(offering_prices).where(offering_prices.c.id == price_id)
            )
        ).first()
        return None if row is None else _price(row._mapping)

    async def list_prices(
        self,
        *,
        offering_id: str | None,
        valid_at: datetime | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[Price]]:
        conditions = []
        if offering_id is not None:
            conditions.append(offering_prices.c.offering_id == offering_id)
        if valid_at is not None:
            conditions.append(offering_prices.c.valid_from <= valid_at)
            conditions.append(
                or_(offering_prices.c.valid_to.is_(None), offering_prices.c.valid_to > valid_at)
            )
        query = (
            select(offering_prices, func.count().over().label("total"))
            .where(*conditions)
            .order_by(
                offering_prices.c.offering_id, offering_prices.c.valid_from, offering_prices.c.id
            )
            .offset(offset)
            .limit(limit)
        )
        rows = (await self._session.execute(query)).all()
        if rows:
            total = rows[0].total
        else:
            total = await self._count(select(offering_prices.c.id).where(*conditions))
        return total, [_price(_without(row._mapping, "total")) for row in rows]

    async def _prices_of(self, offering_ids: Sequence[str]) -> dict[str, list[Price]]:
        if not offering_ids:
            return {}
        rows = await self._session.execute(
            select(offering_prices)
            .where(offering_prices.c.offering_id.in_(offering_ids))
            .order_by(offering_prices.c.valid_from, offering_prices.c.id)
        )
        result: dict[str, list[Price]] = {}
        for row in rows:
            price = _price(row._mapping)
            result.setdefault(price.offering_id, []).append(price)
        return result

    # --- audit ------------------------------------------------------------------------------

    async def record(self, *, entries: Sequence[AuditEntry], at: datetime) -> None:
        """Append to the audit trail; its trigger tells every replica the catalogue changed."""
        if entries:
            await self._session.execute(
                insert(audit_records), [dict(vars(entry), at=at) for entry in entries]
            )

    async def list_audit(
        self,
        *,
        entity_type: str | None,
        entity_id: str | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[dict[str, Any]]]:
        conditions = []
        if entity_type is not None:
            conditions.append(audit_records.c.entity_type == entity_type)
        if entity_id is not None:
            conditions.append(audit_records.c.entity_id == entity_id)
        query = (
            select(audit_records, func.count().over().label("total"))
            .where(*conditions)
            .order_by(audit_records.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = (await self._session.execute(query)).all()
        if rows:
            total = rows[0].total
        else:
            total = await self._count(select(audit_records.c.id).where(*conditions))
        return total, [_without(row._mapping, "total") for row in rows]

    async def _count(self, query: Select[Any]) -> int:
        return int(
            await self._session.scalar(select(func.count()).select_from(query.subquery())) or 0
        )


def _offering_conditions(where: OfferingFilter) -> list[Any]:
    conditions: list[Any] = []
    if where.lifecycle_status is not None:
        conditions.append(product_offerings.c.lifecycle_status == str(where.lifecycle_status))
    if where.category_id is not None:
        conditions.append(product_offerings.c.category_id == where.category_id)
    if where.channel is not None:
        conditions.append(product_offerings.c.channels.contains([where.channel]))
    if where.sellable is not None:
        at = where.at or datetime.now(UTC)
        sellable = and_(
            product_offerings.c.lifecycle_status == str(LifecycleStatus.LAUNCHED),
            product_offerings.c.valid_from <= at,
            or_(product_offerings.c.valid_to.is_(None), product_offerings.c.valid_to > at),
        )
        conditions.append(sellable if where.sellable else not_(sellable))
    return conditions


def _without(mapping: Any, *names: str) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if key not in names}


def _specification(row: Any) -> Specification:
    return Specification(**dict(row, sim_kinds=tuple(row["sim_kinds"])))


def _offering(row: Any) -> Offering:
    return Offering(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        category_id=row["category_id"],
        specification_id=row["specification_id"],
        channels=tuple(row["channels"]),
        valid_for=ValidFor(row["valid_from"], row["valid_to"]),
        bundled_offering_ids=tuple(row["bundled_offering_ids"]),
        lifecycle_status=LifecycleStatus(row["lifecycle_status"]),
        version=row["version"],
        last_update=row["last_update"],
    )


def _price(row: Any) -> Price:
    return Price(
        id=row["id"],
        offering_id=row["offering_id"],
        name=row["name"],
        price_type=row["price_type"],
        amount=row["amount"],
        tax_rate=row["tax_rate"],
        valid_for=ValidFor(row["valid_from"], row["valid_to"]),
        recurring_period=row["recurring_period"],
        unit_of_measure=row["unit_of_measure"],
    )


def _price_values(price: Price) -> dict[str, Any]:
    return {
        "id": price.id,
        "offering_id": price.offering_id,
        "name": price.name,
        "price_type": price.price_type,
        "recurring_period": price.recurring_period,
        "unit_of_measure": price.unit_of_measure,
        "amount": price.amount,
        "tax_rate": price.tax_rate,
        "valid_from": price.valid_for.start,
        "valid_to": price.valid_for.end,
    }
