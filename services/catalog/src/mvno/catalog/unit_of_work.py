"""The catalog's unit of work: one transaction, offering the catalogue's repository."""

from __future__ import annotations

from functools import cached_property

from mvno.catalog.repository import CatalogRepository
from mvno.common.db import UnitOfWork


class CatalogUnitOfWork(UnitOfWork):
    """``uow.catalogue``: categories, specifications, offerings with their prices, and the audit
    trail, built on first use in this unit of work's transaction."""

    @cached_property
    def catalogue(self) -> CatalogRepository:
        return CatalogRepository(self.session)
