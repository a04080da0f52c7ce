"""Loading and saving orders, the catalogue copy and idempotency records. Never commits."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from mvno.common.bus.envelope import OutgoingEvent
from mvno.common.crypto import Sealed
from mvno.common.db import (
    StatementPool,
    driver_connection,
    json_text,
    outbox_json,
    outbox_recordset,
)
from mvno.common.tracing import client_spans_when_sampled
from mvno.orders.domain.catalogue import OfferingCopy, PriceCopy
from mvno.orders.domain.model import Order, OrderItem, OrderState, SubscriptionView
from mvno.orders.hub.tables import hub_subscriptions
from mvno.orders.tables import (
    billing_accounts,
    offering_copies,
    offering_price_copies,
    order_items,
    orders,
    subscriptions,
)


@dataclass(frozen=True)
class OrderFilter:
    state: OrderState | None = None
    channel: str | None = None
    customer_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class IdempotencyRecord:
    request_hash: str
    response_status: int
    response_body: str
    """The answer's JSON text, as it was stored."""


@dataclass(frozen=True)
class Placement:
    """What :meth:`OrderIntake.place_once` did: placed the order, found the key used before
    (``earlier``), or neither (another request with the same key holds it right now)."""

    placed: bool
    earlier: IdempotencyRecord | None = None
    """The key was used before: what that request answered."""


# One statement, its own transaction, places an order once per (client, key): a transaction-scoped
# advisory lock on the key tells a concurrent duplicate that the first is still in flight (409); a
# key used before answers what it answered then; otherwise the key (with the answer), the order,
# its items, its events (the outbox) and the webhooks it owes are written together, with a timer
# that hands the order to a worker again should its first work item never be handled (a worker
# killed each time it held it, until the queue gave it to its DLQ). Nothing is written unless all
# of it is, and the key is only ever seen with its answer.
_PLACE_ONCE = f"""
    WITH lock AS (
        SELECT pg_try_advisory_xact_lock(hashtextextended($1 || chr(31) || $2, 0))
            AS held
    ),
    earlier AS (
        SELECT request_hash, response_status, response_body FROM idempotency_keys
        WHERE client_id = $1 AND key = $2
    ),
    claimed AS (
        INSERT INTO idempotency_keys (client_id, key, request_hash, state, response_status,
                                      response_body, order_id, created_at, expires_at)
        SELECT $1, $2, $3, 'done', 201, CAST($4 AS jsonb), $5,
               $6, $7
        FROM lock WHERE lock.held AND NOT EXISTS (SELECT 1 FROM earlier)
        ON CONFLICT DO NOTHING
        RETURNING order_id
    ),
    placed AS (
        INSERT INTO orders (id, customer_id, channel, client_id, external_id, state, sequence,
                            order_date, updated_at, personal_data, personal_data_key)
        SELECT order_id, $8, $9, $1, $10, $11, $12,
               $6, $6, CAST($13 AS jsonb), $14
        FROM claimed
        RETURNING id
    ),
    items AS (
        INSERT INTO order_items (order_id, item_id, action, change, offering_id, offering_name,
                                 sim_kind, subscription_id, port_in_msisdn, state, prices)
        SELECT placed.id, i.item_id, i.action, i.change, i.offering_id, i.offering_name,
               i.sim_kind, i.subscription_id, i.port_in_msisdn, i.state, i.prices
        FROM placed, jsonb_to_recordset(CAST($15 AS jsonb)) AS i(
            item_id text, action text, change text, offering_id text, offering_name text,
            sim_kind text, subscription_id text, port_in_msisdn text, state text, prices jsonb)
        RETURNING 1
    ),
    events AS (
        INSERT INTO outbox (event_id, event_type, body, attributes)
        SELECT outbox_row.* FROM placed, {outbox_recordset("$16")}
        RETURNING 1
    ),
    fallback AS (
        INSERT INTO provisioning_timers (order_id, due_at)
        SELECT id, $18 FROM placed
        RETURNING 1
    ),
    owed AS (
        INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, payload)
        SELECT d.id, d.subscription_id, d.event_id, d.event_type, d.payload
        FROM placed, jsonb_to_recordset(CAST($17 AS jsonb)) AS d(
            id text, subscription_id text, event_id text, event_type text, payload jsonb)
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT (SELECT held FROM lock) AS held,
           (SELECT count(*) FROM items) AS items,
           (SELECT count(*) FROM events) AS events,
           (SELECT count(*) FROM owed) AS owed,
           (SELECT count(*) FROM fallback) AS fallback,
           earlier.request_hash, earlier.response_status, earlier.response_body
    FROM (SELECT 1) AS one LEFT JOIN earlier ON true
"""  # noqa: S608 - outbox_recordset gives a constant, every value is a bound parameter


class OrdersRepository:
    """Reads and writes in the caller's transaction (a session), or statement by statement (a
    connection in autocommit, for the intake's one-statement order)."""

    def __init__(self, session: AsyncSession | AsyncConnection) -> None:
        self._session = session
        self._steps: OrderSteps | None = None

    async def _order_steps(self) -> OrderSteps:
        """The saga's statements on the driver connection under the session, one per repository
        (it holds what the last load read, as the personal data)."""
        if self._steps is None:
            self._steps = OrderSteps(await driver_connection(self._session))
        return self._steps

    # --- catalogue copy ---------------------------------------------------------------------

    async def offerings(self, *, offering_ids: Iterable[str]) -> dict[str, OfferingCopy]:
        wanted = sorted(set(offering_ids))
        if not wanted:
            return {}
        rows = (
            await self._session.execute(
                select(offering_copies).where(offering_copies.c.offering_id.in_(wanted))
            )
        ).all()
        prices = (
            await self._session.execute(
                select(offering_price_copies).where(offering_price_copies.c.offering_id.in_(wanted))
            )
        ).all()
        by_offering: dict[str, list[PriceCopy]] = {}
        for price in prices:
            values = dict(price._mapping)
            by_offering.setdefault(values.pop("offering_id"), []).append(PriceCopy(**values))
        return {
            row.offering_id: OfferingCopy(
                **{
                    **{k: v for k, v in row._mapping.items() if k != "updated_at"},
                    "channels": tuple(row.channels),
                    "sim_kinds": tuple(row.sim_kinds),
                    "prices": tuple(by_offering.get(row.offering_id, [])),
                }
            )
            for row in rows
        }

    async def put_offering(self, *, values: dict[str, Any]) -> None:
        statement = pg_insert(offering_copies).values(values)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[offering_copies.c.offering_id],
                set_={key: statement.excluded[key] for key in values if key != "offering_id"},
            )
        )

    async def retire_offering(self, *, offering_id: str, at: datetime) -> None:
        await self._session.execute(
            update(offering_copies)
            .where(offering_copies.c.offering_id == offering_id)
            .values(status="retired", updated_at=at)
        )

    async def put_price(self, *, values: dict[str, Any]) -> None:
        statement = pg_insert(offering_price_copies).values(values)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[offering_price_copies.c.price_id],
                set_={key: statement.excluded[key] for key in values if key != "price_id"},
            )
        )

    async def close_price(self, *, price_id: str, at: datetime) -> None:
        await self._session.execute(
            update(offering_price_copies)
            .where(offering_price_copies.c.price_id == price_id)
            .where(
                (offering_price_copies.c.valid_to.is_(None))
                | (offering_price_copies.c.valid_to > at)
            )
            .values(valid_to=at)
        )

    # --- subscriptions ----------------------------------------------------------------------

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

    # --- orders -----------------------------------------------------------------------------

    async def save_order(
        self, *, order: Order, timer_due: datetime | None = None, clear_timer: bool = False
    ) -> int:
        """Write the order's state and its items' in one statement, with the order's timer set
        to ``timer_due`` or cleared when asked (the provisioning saga's lease and retries).
        Returns the order's version once this transaction commits."""
        steps = await self._order_steps()
        version = await steps.save_order(order=order, timer_due=timer_due, clear_timer=clear_timer)
        if version is None:
            raise LookupError(f"there is no order {order.id} to save")
        return version

    def loaded_personal_data(self, order_id: str) -> Sealed | None:
        """The order's personal data as read with it by :meth:`get_order` (None when not)."""
        return None if self._steps is None else self._steps.loaded_personal_data(order_id)

    async def get_order(self, *, order_id: str, for_update: bool = False) -> Order | None:
        """The order with its items in one statement, locked for the caller's transaction when
        ``for_update``."""
        steps = await self._order_steps()
        loaded = await steps.load_order(order_id=order_id, for_update=for_update)
        return None if loaded is None else loaded[0]

    async def get_order_version(self, *, order_id: str) -> tuple[Order, int] | None:
        """The order locked for the caller's transaction, with its version (see
        :meth:`OrderSteps.load_order`)."""
        steps = await self._order_steps()
        return await steps.load_order(order_id=order_id, for_update=True)

    async def list_orders(
        self, *, where: OrderFilter, client_id: str | None, offset: int, limit: int
    ) -> tuple[int, list[Order]]:
        conditions = []
        if client_id is not None:
            conditions.append(orders.c.client_id == client_id)
        if where.state is not None:
            conditions.append(orders.c.state == str(where.state))
        if where.channel is not None:
            conditions.append(orders.c.channel == where.channel)
        if where.customer_id is not None:
            conditions.append(orders.c.customer_id == where.customer_id)
        if where.since is not None:
            conditions.append(orders.c.order_date >= where.since)
        if where.until is not None:
            conditions.append(orders.c.order_date < where.until)
        rows = (
            await self._session.execute(
                select(orders, func.count().over().label("total"))
                .where(*conditions)
                .order_by(orders.c.order_date.desc(), orders.c.id)
                .offset(offset)
                .limit(limit)
            )
        ).all()
        if rows:
            total = int(rows[0].total)
        else:
            total = int(
                await self._session.scalar(
                    select(func.count()).select_from(orders).where(*conditions)
                )
                or 0
            )
        return total, await self._with_items(rows)

    async def _with_items(self, rows: Sequence[Any]) -> list[Order]:
        ids = [row.id for row in rows]
        items: dict[str, list[OrderItem]] = {}
        if ids:
            item_rows = await self._session.execute(
                select(order_items)
                .where(order_items.c.order_id.in_(ids))
                .order_by(order_items.c.order_id, order_items.c.item_id)
            )
            for item in item_rows:
                values = dict(item._mapping)
                items.setdefault(values.pop("order_id"), []).append(_item(values))
        return [_order(row._mapping, items.get(row.id, [])) for row in rows]

    async def personal_data(self, *, order_id: str) -> Sealed | None:
        return await (await self._order_steps()).personal_data(order_id=order_id)

    async def replace_personal_data(self, *, order_id: str, sealed: Sealed) -> None:
        await self._session.execute(
            update(orders)
            .where(orders.c.id == order_id)
            .values(
                personal_data={
                    name: base64.b64encode(blob).decode() for name, blob in sealed.fields.items()
                },
                personal_data_key=sealed.encrypted_data_key,
            )
        )

    # --- inventory --------------------------------------------------------------------------

    async def add_subscription(self, *, values: dict[str, Any]) -> None:
        """Insert a new line (every column of ``subscriptions`` given), on the driver connection:
        once per activated line, on the provisioning worker's path."""
        driver = await driver_connection(self._session)
        secrets = values["secrets"]
        await driver.execute(
            _ADD_SUBSCRIPTION,
            *(values[name] for name in _SUBSCRIPTION_COLUMNS),
            None if secrets is None else json_text(secrets),
        )

    async def payment_type_of(self, *, offering_id: str) -> str | None:
        """The offering's payment type (prepaid, postpaid) in the catalogue copy."""
        driver = await driver_connection(self._session)
        found = await driver.fetchval(
            "SELECT payment_type FROM offering_copies WHERE offering_id = $1", offering_id
        )
        return None if found is None else str(found)

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

    # --- the saga's timers and awaited events -----------------------------------------------

    async def record_billing_account(self, *, values: dict[str, Any]) -> None:
        await self._session.execute(
            pg_insert(billing_accounts).values(values).on_conflict_do_nothing()
        )

    async def wake(self, *, order_id: str, at: datetime) -> None:
        """Make the order's timer due at ``at`` (or keep it, if sooner): a worker's next look at
        the timers takes the order up (:meth:`OrderSteps.take_due_timers`)."""
        driver = await driver_connection(self._session)
        await driver.execute(_WAKE, order_id, at)

    async def billing_account_of(self, *, subscription_id: str) -> str | None:
        return await (await self._order_steps()).billing_account_of(subscription_id=subscription_id)

    # --- idempotency ------------------------------------------------------------------------

    async def hub_queries(self, client_id: str) -> tuple[tuple[str, str | None], ...]:
        """The hubs (id, event query) ``client_id`` registered."""
        rows = await self._session.execute(
            select(hub_subscriptions.c.id, hub_subscriptions.c.query).where(
                hub_subscriptions.c.owner_client_id == client_id
            )
        )
        return tuple((row.id, row.query) for row in rows)


class OrderIntake:
    """The intake's statements on plain asyncpg connections (:class:`mvno.common.db.StatementPool`):
    placing an order is one statement, its own transaction, sent without SQLAlchemy's cost per
    statement and per checkout. A statement's span is made only in a recorded trace."""

    def __init__(self, pool: StatementPool) -> None:
        self._pool = pool

    async def place_once(
        self,
        *,
        order: Order,
        sealed: Sealed | None,
        key: str,
        request_hash: str,
        body: str,
        expires_at: datetime,
        events: Sequence[OutgoingEvent],
        notifications: list[dict[str, Any]],
        start_by: datetime,
    ) -> Placement:
        """Write ``order``, its answer ``body`` (JSON text), its ``events`` and the webhooks it
        owes under ``key``, unless the key is taken; its provisioning timer fires at
        ``start_by`` unless a worker has taken the order by then."""
        personal_data = (
            json_text(
                {name: base64.b64encode(blob).decode() for name, blob in sealed.fields.items()}
            )
            if sealed
            else None
        )
        items = json_text(
            [
                {
                    "item_id": item.item_id,
                    "action": item.action,
                    "change": item.change,
                    "offering_id": item.offering_id,
                    "offering_name": item.offering_name,
                    "sim_kind": item.sim_kind,
                    "subscription_id": item.subscription_id,
                    "port_in_msisdn": item.port_in_msisdn,
                    "state": str(item.state),
                    "prices": item.prices,
                }
                for item in order.items
            ]
        )
        async with self._pool.acquire() as connection:
            with client_spans_when_sampled():
                row = await connection.fetchrow(
                    _PLACE_ONCE,
                    order.client_id,
                    key,
                    request_hash,
                    body,
                    order.id,
                    order.order_date,
                    expires_at,
                    order.customer_id,
                    order.channel,
                    order.external_id,
                    str(order.state),
                    order.sequence,
                    personal_data,
                    sealed.encrypted_data_key if sealed else None,
                    items,
                    outbox_json(events),
                    json_text(notifications),
                    start_by,
                )
                assert row is not None
                if not row["held"]:
                    return Placement(placed=False)
                if row["request_hash"] is not None:
                    earlier = IdempotencyRecord(
                        row["request_hash"], row["response_status"], row["response_body"]
                    )
                    return Placement(placed=False, earlier=earlier)
                if row["items"]:
                    return Placement(placed=True)
                # The key was committed by another request after this statement's snapshot.
                return Placement(
                    placed=False,
                    earlier=await self._key(connection, client_id=order.client_id, key=key),
                )

    async def get_key(self, *, client_id: str, key: str) -> IdempotencyRecord | None:
        """What the request that used ``key`` before answered, if one did."""
        async with self._pool.acquire() as connection:
            with client_spans_when_sampled():
                return await self._key(connection, client_id=client_id, key=key)

    @staticmethod
    async def _key(
        connection: asyncpg.Connection, *, client_id: str, key: str
    ) -> IdempotencyRecord | None:
        row = await connection.fetchrow(_GET_KEY, client_id, key)
        return None if row is None else IdempotencyRecord(*row)


_GET_KEY = """
    SELECT request_hash, response_status, response_body FROM idempotency_keys
    WHERE client_id = $1 AND key = $2
"""


class OrderSteps:
    """The provisioning saga's statements on a plain asyncpg connection: inside a unit of work's
    transaction (through :class:`OrdersRepository`) or on their own, each its own transaction.

    A step that writes nothing but the order runs without a transaction (two round trips instead
    of five, no SQLAlchemy session): it loads the order with its version, calls the partner, and
    saves only if no other worker saved the order meanwhile (:meth:`save_order` with
    ``if_version``). The version is PostgreSQL's ``xmin`` of the order's row, which every update
    of the row changes.
    """

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self._sealed: dict[str, Sealed | None] = {}
        """The personal data read with each order loaded here (still sealed), so that a step
        needing it makes no second round trip."""

    async def load_order(
        self, *, order_id: str, for_update: bool = False
    ) -> tuple[Order, int] | None:
        """The order with its items and its version in one statement, locked for the caller's
        transaction when ``for_update``."""
        row = await self._connection.fetchrow(
            _LOAD_ORDER_FOR_UPDATE if for_update else _LOAD_ORDER, order_id
        )
        if row is None:
            return None
        items = row["items"]
        if isinstance(items, str):  # a connection without SQLAlchemy's JSON codec
            items = json.loads(items)
        self._sealed[order_id] = _sealed(row)
        return _order(row, [_item(item) for item in items]), int(row["version"])

    async def save_order(
        self,
        *,
        order: Order,
        timer_due: datetime | None = None,
        clear_timer: bool = False,
        if_version: int | None = None,
    ) -> int | None:
        """Write the order, its items and its timer in one statement; with ``if_version``, only
        if the order is still at that version. Returns the order's new version (the writing
        transaction's id) when it was written, None when not."""
        version = await self._connection.fetchval(
            _SAVE_ORDER,
            order.id,
            str(order.state),
            order.sequence,
            order.updated_at,
            order.completion_date,
            order.failed_step,
            order.failure_reason,
            [item.item_id for item in order.items],
            [str(item.state) for item in order.items],
            [item.subscription_id for item in order.items],
            [None if item.progress is None else json_text(item.progress) for item in order.items],
            timer_due,
            clear_timer,
            if_version,
        )
        return None if version is None else int(version)

    def remember_personal_data(self, order_id: str, sealed: Sealed | None) -> None:
        """Hold ``sealed`` as the order's personal data, read with it by an earlier step."""
        self._sealed[order_id] = sealed

    def loaded_personal_data(self, order_id: str) -> Sealed | None:
        """The order's personal data read with it here (None when not read, or not held)."""
        return self._sealed.get(order_id)

    async def personal_data(self, *, order_id: str) -> Sealed | None:
        if order_id in self._sealed:
            return self._sealed[order_id]
        row = await self._connection.fetchrow(
            "SELECT personal_data::text, personal_data_key FROM orders WHERE id = $1", order_id
        )
        return None if row is None else _sealed(row)

    async def take_due_timers(
        self, *, at: datetime, lease_until: datetime, limit: int
    ) -> list[str]:
        """Take up to ``limit`` orders whose timers are due at ``at``, their timers moved on to
        ``lease_until`` in the same statement: no other worker takes them meanwhile, and should
        this one die before their next step is saved, the timer hands them out again then."""
        rows = await self._connection.fetch(_TAKE_DUE_TIMERS, at, limit, lease_until)
        return [row["order_id"] for row in rows]

    async def drop_timer(self, *, order_id: str, due_at: datetime) -> None:
        """Delete the order's timer if it is still due at ``due_at`` (no step replaced it)."""
        await self._connection.execute(
            "DELETE FROM provisioning_timers WHERE order_id = $1 AND due_at = $2", order_id, due_at
        )

    async def billing_account_of(self, *, subscription_id: str) -> str | None:
        found = await self._connection.fetchval(
            "SELECT billing_account_id FROM billing_accounts WHERE subscription_id = $1",
            subscription_id,
        )
        return None if found is None else str(found)


def _sealed(row: Any) -> Sealed | None:
    """The order's personal data as stored (still sealed), from a row holding its two columns."""
    if row["personal_data_key"] is None:
        return None
    fields = json.loads(row["personal_data"]) if row["personal_data"] else {}
    return Sealed(
        row["personal_data_key"], {name: base64.b64decode(blob) for name, blob in fields.items()}
    )


def _order(row: Any, items: list[OrderItem]) -> Order:
    """An order from its row (a SQLAlchemy row mapping or an asyncpg record) and its items."""
    return Order(
        id=row["id"],
        customer_id=row["customer_id"],
        channel=row["channel"],
        client_id=row["client_id"],
        state=OrderState(row["state"]),
        sequence=row["sequence"],
        order_date=row["order_date"],
        updated_at=row["updated_at"],
        items=items,
        external_id=row["external_id"],
        completion_date=row["completion_date"],
        failed_step=row["failed_step"],
        failure_reason=row["failure_reason"],
    )


def _item(values: Mapping[str, Any]) -> OrderItem:
    return OrderItem(**{**values, "state": OrderState(values["state"])})


# The order and its items in one round trip, the items in the order ``_with_items`` gives them.
_ORDER_WITH_ITEMS = """
SELECT o.id, o.customer_id, o.channel, o.client_id, o.state, o.sequence, o.order_date,
       o.xmin AS version, o.updated_at, o.personal_data::text AS personal_data,
       o.personal_data_key, o.external_id, o.completion_date, o.failed_step, o.failure_reason,
       (SELECT coalesce(json_agg(json_build_object(
                   'item_id', i.item_id, 'action', i.action, 'change', i.change,
                   'offering_id', i.offering_id, 'offering_name', i.offering_name,
                   'sim_kind', i.sim_kind, 'subscription_id', i.subscription_id,
                   'port_in_msisdn', i.port_in_msisdn, 'state', i.state, 'prices', i.prices,
                   'progress', i.progress) ORDER BY i.item_id), '[]'::json)
          FROM order_items i WHERE i.order_id = o.id) AS items
  FROM orders o WHERE o.id = $1
"""
_LOAD_ORDER = _ORDER_WITH_ITEMS
_SUBSCRIPTION_COLUMNS = (
    "id", "customer_id", "offering_id", "status", "msisdn", "sim_kind", "iccid", "payment_type",
    "sequence", "order_id", "created_at", "updated_at", "secrets_key", "partner_subscription_id",
)  # fmt: skip
"""The columns of ``subscriptions`` but ``secrets``, in :data:`_ADD_SUBSCRIPTION`'s order."""
_ADD_SUBSCRIPTION = """
INSERT INTO subscriptions (id, customer_id, offering_id, status, msisdn, sim_kind, iccid,
                           payment_type, sequence, order_id, created_at, updated_at, secrets_key,
                           partner_subscription_id, secrets)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb)
"""
_TAKE_DUE_TIMERS = """
UPDATE provisioning_timers SET due_at = $3
 WHERE order_id IN (SELECT order_id FROM provisioning_timers WHERE due_at <= $1
                     ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING order_id
"""
_WAKE = """
INSERT INTO provisioning_timers (order_id, due_at) VALUES ($1, $2)
ON CONFLICT (order_id) DO UPDATE SET due_at = least(provisioning_timers.due_at, excluded.due_at)
"""
_LOAD_ORDER_FOR_UPDATE = _ORDER_WITH_ITEMS + " FOR UPDATE OF o"

# The order, every item and the order's timer in one statement: what a step of the saga writes
# besides its events and, for some steps, the line. With $14, only if the order's row is still at
# that version (its xmin): nothing is written otherwise, and the count says so.
_SAVE_ORDER = """
WITH saved_order AS (
    UPDATE orders
       SET state = $2, sequence = $3, updated_at = $4, completion_date = $5,
           failed_step = $6, failure_reason = $7
     WHERE id = $1 AND ($14::xid IS NULL OR xmin = $14::xid)
    RETURNING id, xmin
), saved_items AS (
    UPDATE order_items AS i
       SET state = u.state, subscription_id = u.subscription_id, progress = u.progress::jsonb
      FROM unnest($8::text[], $9::text[], $10::text[], $11::text[])
           AS u(item_id, state, subscription_id, progress), saved_order
     WHERE i.order_id = saved_order.id AND i.item_id = u.item_id
), timer_set AS (
    INSERT INTO provisioning_timers (order_id, due_at)
    SELECT id, $12::timestamptz FROM saved_order WHERE $12::timestamptz IS NOT NULL
    ON CONFLICT (order_id) DO UPDATE SET due_at = excluded.due_at
), timer_cleared AS (
    DELETE FROM provisioning_timers AS t USING saved_order
     WHERE t.order_id = saved_order.id AND $13::boolean
)
SELECT xmin::text::bigint FROM saved_order
"""
