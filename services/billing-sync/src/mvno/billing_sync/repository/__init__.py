"""Billing-sync's repositories, one module per aggregate, each reached through the unit of work
(:class:`~mvno.billing_sync.unit_of_work.BillingUnitOfWork`): ``uow.accounts``, ``uow.catalogue``,
``uow.buckets``, ``uow.usage``. Their SQL is SQLAlchemy Core on :mod:`mvno.billing_sync.tables`,
except the usage ingestion's hand-written statements, in :mod:`mvno.billing_sync.statements`.
Methods never commit: the unit of work does."""

from __future__ import annotations

from typing import Any


def rows(result: Any) -> list[dict[str, Any]]:
    """A SQLAlchemy result's rows as plain dicts."""
    return [dict(row._mapping) for row in result]
