"""Reading and writing the product inventory (the lines, with the billing accounts billing-sync
opened for them) in the caller's transaction. Never commits."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mvno.common.db import json_text
from mvno.orders.domain.model import SubscriptionView
from mvno.orders.inventory.statements import ADD_LINE, BILLING_ACCOUNT_OF_LINE
from mvno.orders.tables import billing_accounts, order_items, subscriptions


class InventoryRepository:
    def __init__(
        self, session: AsyncSession | AsyncConnection, connection: asyncpg.Connection
    ) -> None:
        self._session = session
        self._connection = connection

    async def subscriptions_of(
        self, *, customer_id: str, subscription_ids: Iterable[str]
    ) -> dict[str, SubscriptionView]:
        wanted = sorted(set(subscription_ids))
        if not wanted:
            return {}
        rows = await self._session.execute(
            select(
                subscriptions.c.id,
                subscriptions.c.customer_id,
                subscriptions.c.status,
                subscriptions.c.payment_type,
                subscriptions.c.offering_id,
            ).where(subscriptions.c.id.in_(wanted), subscriptions.c.customer_id == customer_id)
        )
        return {row.id: SubscriptionView(*row) for row in rows}

    async def add_subscription(self, *, values: dict[str, Any]) -> None:
        """Insert a new line (every column of ``subscriptions`` given): once per activated line,
        on the provisioning worker's path."""
        secrets = values["secrets"]
        await ADD_LINE.execute(
            self._connection,
            **{**values, "secrets": None if secrets is None else json_text(secrets)},
        )

    async def get_subscription(self, *, subscription_id: str) -> dict[str, Any] | None:
        row = (
            await self._session.execute(
                select(subscriptions).where(subscriptions.c.id == subscription_id)
            )
        ).first()
        return None if row is None else dict(row._mapping)

    async def list_subscriptions(
        self, *, customer_id: str | None, status: str | None, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """A page of subscriptions, oldest first (stable order), and how many match."""
        conditions = []
        if customer_id is not None:
            conditions.append(subscriptions.c.customer_id == customer_id)
        if status is not None:
            conditions.append(subscriptions.c.status == status)
        rows = (
            await self._session.execute(
                select(subscriptions, func.count().over().label("total"))
                .where(*conditions)
                .order_by(subscriptions.c.created_at, subscriptions.c.id)
                .offset(offset)
                .limit(limit)
            )
        ).all()
        if rows:
            return int(rows[0].total), [dict(row._mapping) for row in rows]
        total = await self._session.scalar(
            select(func.count()).select_from(subscriptions).where(*conditions)
        )
        return int(total or 0), []

    async def item_of_subscription(self, *, order_id: str, subscription_id: str) -> str | None:
        """The id of the order item that created ``subscription_id``."""
        return await self._session.scalar(
            select(order_items.c.item_id).where(
                order_items.c.order_id == order_id,
                order_items.c.subscription_id == subscription_id,
                order_items.c.action == "add",
            )
        )

    async def update_subscription(self, *, subscription_id: str, values: dict[str, Any]) -> int:
        """Apply ``values`` and bump the event sequence; returns the new sequence."""
        sequence = await self._session.scalar(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(**values, sequence=subscriptions.c.sequence + 1)
            .returning(subscriptions.c.sequence)
        )
        return int(sequence or 0)

    async def record_billing_account(self, *, values: dict[str, Any]) -> None:
        await self._session.execute(
            pg_insert(billing_accounts).values(values).on_conflict_do_nothing()
        )

    async def billing_account_of(self, *, subscription_id: str) -> str | None:
        return await billing_account_of(self._connection, subscription_id=subscription_id)


async def billing_account_of(connection: asyncpg.Connection, *, subscription_id: str) -> str | None:
    """billing-sync's account for the line, once its answer arrived."""
    found = await BILLING_ACCOUNT_OF_LINE.fetchval(connection, subscription_id=subscription_id)
    return None if found is None else str(found)
