"""Billing-sync's unit of work: one transaction, offering the service's repositories."""

from __future__ import annotations

from functools import cached_property

from mvno.billing_sync.accounts.repository import AccountsRepository
from mvno.billing_sync.buckets.repository import BucketsRepository
from mvno.billing_sync.catalogue.repository import CatalogueCopyRepository
from mvno.billing_sync.usage.repository import UsageRepository
from mvno.common.db import UnitOfWork


class BillingUnitOfWork(UnitOfWork):
    """``uow.accounts``, ``uow.catalogue``, ``uow.buckets`` and ``uow.usage``, each built on first
    use in this unit of work's transaction."""

    @cached_property
    def accounts(self) -> AccountsRepository:
        return AccountsRepository(self.session)

    @cached_property
    def catalogue(self) -> CatalogueCopyRepository:
        return CatalogueCopyRepository(self.session)

    @cached_property
    def buckets(self) -> BucketsRepository:
        return BucketsRepository(self.session)

    @cached_property
    def usage(self) -> UsageRepository:
        return UsageRepository(self.session, self.connection)
