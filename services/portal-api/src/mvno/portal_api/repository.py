"""The read model's reads and writes (SQL in :mod:`mvno.portal_api.statements`), reached through
the unit of work (``uow.portal``). Methods never commit: the unit of work does."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from functools import cached_property
from typing import Any, cast

import asyncpg
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from pydantic_core import from_json

from mvno.common.db import StatementPool, UnitOfWork
from mvno.portal_api.statements import (
    ANNOUNCE,
    APPLY_ORDER,
    APPLY_PROBE_TURN,
    APPLY_SUBSCRIPTION_EVENT,
    FAILING_PROBES,
    INVALIDATE_BALANCE_COPIES,
    LINE_OF_CUSTOMER,
    LINES_OF_CUSTOMER,
    LOCK_ORDER,
    ORDER_OF_CUSTOMER,
    ORDERS_OF_CUSTOMER,
    PUT_BALANCE_COPY,
    PUT_USAGE_COPY,
    REPLACE_ORDER_ITEMS,
    USAGE_COPY,
)
from mvno.portal_api.tables import CHANGE_CHANNEL

if LINES_OF_CUSTOMER.names != ("customer_id",):
    # The hot read passes its one parameter by position (no mapping built per view).
    raise TypeError(f"LINES_OF_CUSTOMER takes {LINES_OF_CUSTOMER.names}, not (customer_id,)")


class PortalUnitOfWork(UnitOfWork):
    """A unit of work offering the read model's repository: ``uow.portal``."""

    @cached_property
    def portal(self) -> PortalRepository:
        return PortalRepository(self.connection)


class ReadModelQueries:
    """The "my lines" read on the portal's own :class:`~mvno.common.db.StatementPool`: one
    statement in autocommit, no transaction or session around it, as it runs on every uncached
    view; ``jsonb`` is decoded by pydantic's parser."""

    def __init__(self, pool: StatementPool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str, *, size: int) -> ReadModelQueries:
        async def connect() -> asyncpg.Connection:
            connection = await asyncpg.connect(dsn)
            await connection.set_type_codec(
                "jsonb", encoder=json.dumps, decoder=from_json, schema="pg_catalog"
            )
            return connection

        queries = cls(StatementPool(dsn, size=size, connect=connect))
        await queries._pool.fetch("SELECT 1")  # fail at start-up, not on the first view
        return queries

    async def close(self) -> None:
        await self._pool.close()

    async def lines_of(self, *, customer_id: str) -> Sequence[Mapping[str, Any]]:
        """The customer's lines with their balance copies; records read by column name."""
        if trace.get_current_span().is_recording():
            rows = await self._pool.fetch(LINES_OF_CUSTOMER.sql, customer_id)
        else:
            # A trace nobody records gets no statement span: nobody would see it, and this is
            # the hottest read; sampled requests still show the statement.
            with suppress_instrumentation():
                rows = await self._pool.fetch(LINES_OF_CUSTOMER.sql, customer_id)
        return cast(Sequence[Mapping[str, Any]], rows)

    async def failing_probes(self) -> Sequence[Mapping[str, Any]]:
        """The canary's probes that last announced a failure."""
        rows = await self._pool.fetch(FAILING_PROBES.sql)
        return cast(Sequence[Mapping[str, Any]], rows)


class PortalRepository:
    """The read model's rows, on a unit of work's connection (in its transaction)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    # --- subscriptions --------------------------------------------------------------------------

    async def apply_subscription_event(self, *, values: Mapping[str, Any]) -> None:
        await APPLY_SUBSCRIPTION_EVENT.execute(self._connection, **values)

    async def line(self, *, customer_id: str, subscription_id: str) -> Mapping[str, Any] | None:
        row = await LINE_OF_CUSTOMER.fetchrow(
            self._connection, customer_id=customer_id, subscription_id=subscription_id
        )
        return None if row is None else dict(row)

    # --- partners -------------------------------------------------------------------------------

    async def apply_probe_turn(self, *, values: Mapping[str, Any]) -> None:
        await APPLY_PROBE_TURN.execute(self._connection, **values)

    # --- orders ---------------------------------------------------------------------------------

    async def apply_order(self, *, values: Mapping[str, Any]) -> bool:
        """Write the order unless a newer state is already known; whether it was written."""
        params = dict(values)
        params["items"] = json.dumps(params["items"])
        return await APPLY_ORDER.fetchrow(self._connection, **params) is not None

    async def replace_items(self, *, order_id: str, items: Sequence[Mapping[str, Any]]) -> None:
        await REPLACE_ORDER_ITEMS.execute(
            self._connection, order_id=order_id, items=json.dumps(list(items))
        )

    async def order_for_update(self, *, order_id: str) -> Mapping[str, Any] | None:
        row = await LOCK_ORDER.fetchrow(self._connection, order_id=order_id)
        return None if row is None else dict(row)

    async def orders_of(
        self, *, customer_id: str, offset: int, limit: int
    ) -> tuple[Sequence[Mapping[str, Any]], int | None]:
        rows = [
            dict(row)
            for row in await ORDERS_OF_CUSTOMER.fetch(
                self._connection, customer_id=customer_id, offset=offset, limit=limit
            )
        ]
        return rows, (int(rows[0]["total"]) if rows else None)

    async def order(self, *, customer_id: str, order_id: str) -> Mapping[str, Any] | None:
        row = await ORDER_OF_CUSTOMER.fetchrow(
            self._connection, customer_id=customer_id, order_id=order_id
        )
        return None if row is None else dict(row)

    # --- copies of billing-sync's answers ---------------------------------------------------------

    async def put_balance_copy(
        self, *, subscription_id: str, buckets: Sequence[Mapping[str, Any]], fetched_at: datetime
    ) -> None:
        await PUT_BALANCE_COPY.execute(
            self._connection,
            subscription_id=subscription_id,
            buckets=json.dumps(list(buckets)),
            fetched_at=fetched_at,
        )

    async def invalidate_balances(self, *, subscription_ids: Sequence[str], at: datetime) -> None:
        if subscription_ids:
            await INVALIDATE_BALANCE_COPIES.execute(
                self._connection, subscription_ids=list(subscription_ids), at=at
            )

    async def put_usage_copy(
        self,
        *,
        subscription_id: str,
        date_from: date,
        date_to: date,
        days: Sequence[Mapping[str, Any]],
        fetched_at: datetime,
    ) -> None:
        await PUT_USAGE_COPY.execute(
            self._connection,
            subscription_id=subscription_id,
            date_from=date_from,
            date_to=date_to,
            days=json.dumps(list(days)),
            fetched_at=fetched_at,
        )

    async def usage_copy(
        self, *, subscription_id: str, date_from: date, date_to: date
    ) -> tuple[list[dict[str, Any]], datetime] | None:
        row = await USAGE_COPY.fetchrow(
            self._connection,
            subscription_id=subscription_id,
            date_from=date_from,
            date_to=date_to,
        )
        return None if row is None else (list(row["days"]), row["fetched_at"])

    # --- telling the API replicas -----------------------------------------------------------------

    async def announce(self, payload: Mapping[str, Any]) -> None:
        """NOTIFY every replica at commit (never before: PostgreSQL holds it until then)."""
        await ANNOUNCE.execute(
            self._connection, channel=CHANGE_CHANNEL, payload=json.dumps(dict(payload))
        )
