"""Reading and writing hubs and their deliveries inside the caller's transaction; never commits."""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mvno.orders.hub.domain import Delivery, Hub
from mvno.orders.hub.statements import HUBS_OF_CLIENT
from mvno.orders.hub.tables import hub_subscriptions, webhook_deliveries


class HubRepository:
    def __init__(
        self, session: AsyncSession | AsyncConnection, connection: asyncpg.Connection
    ) -> None:
        self._session = session
        self._connection = connection

    async def add(self, *, hub: Hub) -> None:
        await self._session.execute(
            insert(hub_subscriptions).values(
                id=hub.id,
                owner_client_id=hub.owner,
                callback=hub.callback,
                query=hub.query,
                secret=hub.secret,
            )
        )

    async def get(self, *, hub_id: str, owner: str) -> Hub | None:
        """The hub with this id if ``owner`` registered it."""
        row = (
            await self._session.execute(
                select(hub_subscriptions).where(
                    hub_subscriptions.c.id == hub_id, hub_subscriptions.c.owner_client_id == owner
                )
            )
        ).one_or_none()
        if row is None:
            return None
        return Hub(
            id=row.id,
            owner=row.owner_client_id,
            callback=row.callback,
            query=row.query,
            secret=row.secret,
        )

    async def remove(self, *, hub_id: str, owner: str) -> bool:
        """Delete the hub and, by cascade, the webhooks still owed to it. False if none was."""
        result = await self._session.execute(
            delete(hub_subscriptions)
            .where(hub_subscriptions.c.id == hub_id, hub_subscriptions.c.owner_client_id == owner)
            .returning(hub_subscriptions.c.id)
        )
        return result.first() is not None

    async def queries(self, *, owner: str) -> list[tuple[str, str | None]]:
        """The id and event query of every hub ``owner`` registered, to find those an event of
        one of its orders goes to.

        Filtered by the caller: a client has a handful of hubs, so this stays small, and the
        query language stays free of what SQL can express.
        """
        rows = await HUBS_OF_CLIENT.fetch(self._connection, owner=owner)
        return [(row["id"], row["query"]) for row in rows]

    async def add_deliveries(self, rows: list[dict[str, Any]]) -> int:
        """Owe each row's payload to its hub, once per event however often this is called."""
        if not rows:
            return 0
        result = await self._session.execute(
            pg_insert(webhook_deliveries)
            .values(rows)
            .on_conflict_do_nothing(
                index_elements=[webhook_deliveries.c.subscription_id, webhook_deliveries.c.event_id]
            )
            .returning(webhook_deliveries.c.id)
        )
        return len(result.all())

    async def deliveries(
        self, *, hub_id: str, offset: int, limit: int
    ) -> tuple[int, list[Delivery]]:
        """One page of a hub's delivery log, newest first, and how many entries it holds."""
        total = await self._session.scalar(
            select(func.count()).where(webhook_deliveries.c.subscription_id == hub_id)
        )
        rows = await self._session.execute(
            select(webhook_deliveries)
            .where(webhook_deliveries.c.subscription_id == hub_id)
            .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return int(total or 0), [
            Delivery(
                id=row.id,
                event_id=row.event_id,
                event_type=row.event_type,
                status=row.status,
                attempts=row.attempts,
                next_attempt_at=row.next_attempt_at,
                last_status_code=row.last_status_code,
                last_error=row.last_error,
                created_at=row.created_at,
                delivered_at=row.delivered_at,
            )
            for row in rows
        ]
