"""The read side's queries: the catalogue's pages and items rendered for the HTTP answers.

Reads run on a session of their own, outside any unit of work: they change nothing, so there is
nothing to commit or publish. :mod:`mvno.catalog.reads` caches what they render.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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

    @asynccontextmanager
    async def _catalogue(self) -> AsyncIterator[CatalogRepository]:
        """The catalogue's repository on a session of its own, closed on leaving."""
        async with self._sessions() as session:
            yield CatalogRepository(session)

    async def offerings(
        self, *, where: OfferingFilter, offset: int, limit: int, fields: frozenset[str] | None
    ) -> Page:
        at = datetime.now(UTC)
        async with self._catalogue() as catalogue:
            total, offerings = await catalogue.list_offerings(
                where=where, offset=offset, limit=limit
            )
        return Page([_render(OfferingRead.of(o, at), fields) for o in offerings], total)

    async def offering(self, *, offering_id: str, fields: frozenset[str] | None) -> dict[str, Any]:
        async with self._catalogue() as catalogue:
            offering = await catalogue.get_offering(offering_id=offering_id)
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
        async with self._catalogue() as catalogue:
            total, prices = await catalogue.list_prices(
                offering_id=offering_id, valid_at=valid_at, offset=offset, limit=limit
            )
        return Page([_render(PriceRead.of(p), fields) for p in prices], total)

    async def price(self, *, price_id: str, fields: frozenset[str] | None) -> dict[str, Any]:
        async with self._catalogue() as catalogue:
            price = await catalogue.get_price(price_id=price_id)
        if price is None:
            raise NotFound(f"there is no product offering price {price_id}")
        return _render(PriceRead.of(price), fields)

    async def categories(self, *, offset: int, limit: int, fields: frozenset[str] | None) -> Page:
        async with self._catalogue() as catalogue:
            total, categories = await catalogue.list_categories(offset=offset, limit=limit)
        return Page([_render(CategoryRead.of(c), fields) for c in categories], total)

    async def category(self, *, category_id: str, fields: frozenset[str] | None) -> dict[str, Any]:
        async with self._catalogue() as catalogue:
            category = await catalogue.get_category(category_id=category_id)
        if category is None:
            raise NotFound(f"there is no category {category_id}")
        return _render(CategoryRead.of(category), fields)

    async def specifications(
        self, *, offset: int, limit: int, fields: frozenset[str] | None
    ) -> Page:
        async with self._catalogue() as catalogue:
            total, specifications = await catalogue.list_specifications(offset=offset, limit=limit)
        return Page([_render(SpecificationRead.of(s), fields) for s in specifications], total)

    async def specification(
        self, *, specification_id: str, fields: frozenset[str] | None
    ) -> dict[str, Any]:
        async with self._catalogue() as catalogue:
            specification = await catalogue.get_specification(specification_id=specification_id)
        if specification is None:
            raise NotFound(f"there is no product specification {specification_id}")
        return _render(SpecificationRead.of(specification), fields)

    async def audit(
        self, *, entity_type: str | None, entity_id: str | None, offset: int, limit: int
    ) -> tuple[int, list[AuditRecordRead]]:
        async with self._catalogue() as catalogue:
            total, rows = await catalogue.list_audit(
                entity_type=entity_type, entity_id=entity_id, offset=offset, limit=limit
            )
        return total, [AuditRecordRead.model_validate(row) for row in rows]
