"""The read model's reads and writes. Methods never commit: the unit of work does."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, cast

import asyncpg
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from pydantic_core import from_json
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from mvno.common.db import StatementPool
from mvno.portal_api.tables import CHANGE_CHANNEL

# Plain SQL compiled once: these run on every screen and every event.
_LINES_OF = text(
    "SELECT s.subscription_id, s.customer_id, s.msisdn, s.offering_id, s.payment_type, "
    "s.sim_kind, s.status, s.order_id, s.activated_at, s.updated_at, "
    "b.buckets, b.fetched_at, b.invalidated_at "
    "FROM subscriptions s LEFT JOIN balance_copies b USING (subscription_id) "
    "WHERE s.customer_id = :customer_id ORDER BY s.activated_at NULLS LAST, s.subscription_id"
)
_LINE = text(
    "SELECT s.subscription_id, s.customer_id, s.msisdn, s.offering_id, s.payment_type, "
    "s.sim_kind, s.status, s.order_id, s.activated_at, s.updated_at, "
    "b.buckets, b.fetched_at, b.invalidated_at "
    "FROM subscriptions s LEFT JOIN balance_copies b USING (subscription_id) "
    "WHERE s.customer_id = :customer_id AND s.subscription_id = :subscription_id"
)
# A lifecycle event's status applies only when it is newer than the last one applied (SQS
# reorders); what only ``activated`` and ``tariff_changed`` carry fills in whenever it comes.
_APPLY_SUBSCRIPTION = text(
    "INSERT INTO subscriptions AS s (subscription_id, customer_id, msisdn, offering_id, "
    "payment_type, sim_kind, status, sequence, order_id, activated_at, updated_at) "
    "VALUES (:subscription_id, :customer_id, :msisdn, :offering_id, :payment_type, :sim_kind, "
    ":status, :sequence, :order_id, :activated_at, :updated_at) "
    "ON CONFLICT (subscription_id) DO UPDATE SET "
    "msisdn = COALESCE(excluded.msisdn, s.msisdn), "
    "sim_kind = COALESCE(excluded.sim_kind, s.sim_kind), "
    "activated_at = COALESCE(excluded.activated_at, s.activated_at), "
    "order_id = COALESCE(s.order_id, excluded.order_id), "
    "offering_id = CASE WHEN excluded.offering_id IS NOT NULL "
    "  AND (excluded.sequence > s.sequence OR s.offering_id IS NULL) "
    "  THEN excluded.offering_id ELSE s.offering_id END, "
    "payment_type = CASE WHEN excluded.payment_type IS NOT NULL "
    "  AND (excluded.sequence > s.sequence OR s.payment_type IS NULL) "
    "  THEN excluded.payment_type ELSE s.payment_type END, "
    "status = CASE WHEN excluded.sequence > s.sequence THEN excluded.status ELSE s.status END, "
    "sequence = GREATEST(s.sequence, excluded.sequence), "
    "updated_at = GREATEST(s.updated_at, excluded.updated_at) "
    "RETURNING subscription_id"
)
_APPLY_ORDER = text(
    "INSERT INTO orders AS o (order_id, customer_id, channel, state, sequence, items, "
    "failed_step, failure_reason, placed_at, updated_at) "
    "VALUES (:order_id, :customer_id, :channel, :state, :sequence, CAST(:items AS jsonb), "
    ":failed_step, :failure_reason, :placed_at, :updated_at) "
    "ON CONFLICT (order_id) DO UPDATE SET "
    "state = excluded.state, sequence = excluded.sequence, items = excluded.items, "
    "failed_step = excluded.failed_step, failure_reason = excluded.failure_reason, "
    "placed_at = LEAST(o.placed_at, excluded.placed_at), updated_at = excluded.updated_at "
    "WHERE excluded.sequence > o.sequence "
    "RETURNING order_id"
)
_ORDERS_OF = text(
    "SELECT order_id, customer_id, channel, state, sequence, items, failed_step, "
    "failure_reason, placed_at, updated_at, count(*) OVER () AS total FROM orders "
    "WHERE customer_id = :customer_id ORDER BY placed_at DESC, order_id DESC "
    "OFFSET :offset LIMIT :limit"
)
_ORDER = text(
    "SELECT order_id, customer_id, channel, state, sequence, items, failed_step, "
    "failure_reason, placed_at, updated_at FROM orders "
    "WHERE customer_id = :customer_id AND order_id = :order_id"
)
_ORDER_FOR_UPDATE = text(
    "SELECT order_id, customer_id, channel, state, sequence, items, failed_step, "
    "failure_reason, placed_at, updated_at FROM orders WHERE order_id = :order_id FOR UPDATE"
)
_REPLACE_ITEMS = text("UPDATE orders SET items = CAST(:items AS jsonb) WHERE order_id = :order_id")
_PUT_BALANCE = text(
    "INSERT INTO balance_copies (subscription_id, buckets, fetched_at) "
    "VALUES (:subscription_id, CAST(:buckets AS jsonb), :fetched_at) "
    "ON CONFLICT (subscription_id) DO UPDATE SET buckets = excluded.buckets, "
    "fetched_at = excluded.fetched_at "
    "WHERE balance_copies.fetched_at <= excluded.fetched_at"
)
_INVALIDATE_BALANCE = text(
    "UPDATE balance_copies SET invalidated_at = :at WHERE subscription_id = ANY(:ids)"
)
_PUT_USAGE = text(
    "INSERT INTO usage_copies (subscription_id, date_from, date_to, days, fetched_at) "
    "VALUES (:subscription_id, :date_from, :date_to, CAST(:days AS jsonb), :fetched_at) "
    "ON CONFLICT (subscription_id, date_from, date_to) DO UPDATE SET days = excluded.days, "
    "fetched_at = excluded.fetched_at"
)
_USAGE = text(
    "SELECT days, fetched_at FROM usage_copies WHERE subscription_id = :subscription_id "
    "AND date_from = :date_from AND date_to = :date_to"
)
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


_LINES_OF_RAW = (
    "SELECT s.subscription_id, s.msisdn, s.offering_id, s.payment_type, s.sim_kind, s.status, "
    "s.activated_at, b.buckets, b.fetched_at, b.invalidated_at "
    "FROM subscriptions s LEFT JOIN balance_copies b USING (subscription_id) "
    "WHERE s.customer_id = $1 ORDER BY s.activated_at NULLS LAST, s.subscription_id"
)


class ReadModelQueries:
    """The hottest screen's read on plain asyncpg connections: one statement, no transaction
    around it (the ORM session's BEGIN/ROLLBACK and its per-statement overhead cost a third of
    the screen's time in bench/portal.py)."""

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
            rows = await self._pool.fetch(_LINES_OF_RAW, customer_id)
        else:
            # A trace nobody records gets no statement span: making one was a tenth of the
            # screen's time (bench/portal.py); sampled requests still show the statement.
            with suppress_instrumentation():
                rows = await self._pool.fetch(_LINES_OF_RAW, customer_id)
        return cast(Sequence[Mapping[str, Any]], rows)


class PortalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- subscriptions --------------------------------------------------------------------------

    async def apply_subscription_event(self, *, values: Mapping[str, Any]) -> None:
        await self._session.execute(_APPLY_SUBSCRIPTION, dict(values))

    async def lines_of(self, *, customer_id: str) -> Sequence[Mapping[str, Any]]:
        result = await self._session.execute(_LINES_OF, {"customer_id": customer_id})
        return [dict(row._mapping) for row in result]

    async def line(self, *, customer_id: str, subscription_id: str) -> Mapping[str, Any] | None:
        result = await self._session.execute(
            _LINE, {"customer_id": customer_id, "subscription_id": subscription_id}
        )
        row = result.first()
        return None if row is None else dict(row._mapping)

    # --- orders ---------------------------------------------------------------------------------

    async def apply_order(self, *, values: Mapping[str, Any]) -> bool:
        """Write the order unless a newer state is already known; whether it was written."""
        params = dict(values)
        params["items"] = json.dumps(params["items"])
        result = await self._session.execute(_APPLY_ORDER, params)
        return result.first() is not None

    async def replace_items(self, *, order_id: str, items: Sequence[Mapping[str, Any]]) -> None:
        await self._session.execute(
            _REPLACE_ITEMS, {"order_id": order_id, "items": json.dumps(list(items))}
        )

    async def order_for_update(self, *, order_id: str) -> Mapping[str, Any] | None:
        row = (await self._session.execute(_ORDER_FOR_UPDATE, {"order_id": order_id})).first()
        return None if row is None else dict(row._mapping)

    async def orders_of(
        self, *, customer_id: str, offset: int, limit: int
    ) -> tuple[Sequence[Mapping[str, Any]], int | None]:
        result = await self._session.execute(
            _ORDERS_OF, {"customer_id": customer_id, "offset": offset, "limit": limit}
        )
        rows = [dict(row._mapping) for row in result]
        return rows, (int(rows[0]["total"]) if rows else None)

    async def order(self, *, customer_id: str, order_id: str) -> Mapping[str, Any] | None:
        result = await self._session.execute(
            _ORDER, {"customer_id": customer_id, "order_id": order_id}
        )
        row = result.first()
        return None if row is None else dict(row._mapping)

    # --- copies of billing-sync's answers ---------------------------------------------------------

    async def put_balance_copy(
        self, *, subscription_id: str, buckets: Sequence[Mapping[str, Any]], fetched_at: datetime
    ) -> None:
        await self._session.execute(
            _PUT_BALANCE,
            {
                "subscription_id": subscription_id,
                "buckets": json.dumps(list(buckets)),
                "fetched_at": fetched_at,
            },
        )

    async def invalidate_balances(self, *, subscription_ids: Sequence[str], at: datetime) -> None:
        if subscription_ids:
            await self._session.execute(
                _INVALIDATE_BALANCE, {"ids": list(subscription_ids), "at": at}
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
        await self._session.execute(
            _PUT_USAGE,
            {
                "subscription_id": subscription_id,
                "date_from": date_from,
                "date_to": date_to,
                "days": json.dumps(list(days)),
                "fetched_at": fetched_at,
            },
        )

    async def usage_copy(
        self, *, subscription_id: str, date_from: date, date_to: date
    ) -> tuple[list[dict[str, Any]], datetime] | None:
        row = (
            await self._session.execute(
                _USAGE,
                {"subscription_id": subscription_id, "date_from": date_from, "date_to": date_to},
            )
        ).first()
        return None if row is None else (list(row.days), row.fetched_at)

    # --- telling the API replicas -----------------------------------------------------------------

    async def announce(self, payload: Mapping[str, Any]) -> None:
        """NOTIFY every replica at commit (never before: PostgreSQL holds it until then)."""
        await self._session.execute(
            _NOTIFY, {"channel": CHANGE_CHANNEL, "payload": json.dumps(dict(payload))}
        )
