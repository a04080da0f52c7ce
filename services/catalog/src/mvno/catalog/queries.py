"""Read models of the catalogue, built straight from the repository (no unit of work needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from mvno.catalog.domain.model import NotFound
from mvno.catalog.reads import Page
from mvno.catalog.repository import CatalogRepository, OfferingFilter
from mvno.catalog.schemas import (
    AuditRecordRead,
    CategoryRead,
    OfferingRead,
    PriceRead,
    SpecificationRead,
)
from mvno.common.tmf import dump, select_fields


def _render(model: BaseModel, fields: frozenset[str] | None) -> dict[str, Any]:
    return select_fields(dump(model), fields)


class CatalogQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def offerings(
        self, *, where: OfferingFilter, offset: int, limit: int, fields: frozenset[str] | None
    ) -> Page:
        at = datetime.now(UTC)
        async with self._sessions() as session:
            total, offerings = await CatalogRepository(session).list_offerings(
                where=where, offset=offset, limit=limit
            )
        return Page([_render(OfferingRead.of(o, at), fields) for o in offerings], total)

    async def offering(self, *, offering_id: str, fields: frozenset[str] | None) -> dict[str, Any]:
        async with self._sessions() as session:
            offering = await CatalogRepository(session).get_offering(offering_id=offering_id)
        if offering is None:
            raise NotFound(f"there is no product offering {offering_id}")
        return _render(OfferingRead.of(offering, datetime.now(UTC)), fields)

    async def prices(
        self,
        *,
        offering_id: str | None,
        valid_at: datetime | None,
        offset: int,
        limit: int,
        fields: frozenset[str] | None,
    ) -> Page:
        async with self._sessions() as session:
            total, prices = await CatalogRepository(session).list_prices(
                offering_id=offering_id, valid_at=valid_at, offset=offset, limit=limit
            )
        return Page([_render(PriceRead.of(p), fields) for p in prices], total)

    async def price(self, *, price_id: str, fields: frozenset[str] | None) -> dict[str, Any]:
        async with self._sessions() as session:
            price = await CatalogRepository(session).get_price(price_id=price_id)
        if price is None:
            raise NotFound(f"there is no product offering price {price_id}")
        return _render(PriceRead.of(price), fields)

    async def categories(self, *, offset: int, limit: int, fields: frozenset[str] | None) -> Page:
        async with self._sessions() as session:
            total, categories = await CatalogRepository(session).list_categories(
                offset=offset, limit=limit
            )
        return Page([_render(CategoryRead.of(c), fields) for c in categories], total)

    async def category(self, *, category_id: str, fields: frozenset[str] | None) -> dict[str, Any]:
        async with self._sessions() as session:
            category = await CatalogRepository(session).get_category(category_id=category_id)
        if category is None:
            raise NotFound(f"there is no category {category_id}")
        return _render(CategoryRead.of(category), fields)

    async def specifications(
        self, *, offset: int, limit: int, fields: frozenset[str] | None
    ) -> Page:
        async with self._sessions() as session:
            total, specifications = await CatalogRepository(session).list_specifications(
                offset=offset, limit=limit
            )
        return Page([_render(SpecificationRead.of(s), fields) for s in specifications], total)

    async def specification(
        self, *, specification_id: str, fields: frozenset[str] | None
    ) -> dict[str, Any]:
        async with self._sessions() as session:
            specification = await CatalogRepository(session).get_specification(
                specification_id=specification_id
            )
        if specification is None:
            raise NotFound(f"there is no product specification {specification_id}")
        return _render(SpecificationRead.of(specification), fields)

    async def audit(
        self, *, entity_type: str | None, entity_id: str | None, offset: int, limit: int
    ) -> tuple[int, list[AuditRecordRead]]:
        async with self._sessions() as session:
            total, rows = await CatalogRepository(session).list_audit(
                entity_type=entity_type, entity_id=entity_id, offset=offset, limit=limit
            )
        return total, [AuditRecordRead.model_validate(row) for row in rows]
