"""Loading and saving orders (the order aggregate: the order, its items, its personal data and
its provisioning timer) in the caller's transaction. Never commits."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mvno.common.crypto import Sealed
from mvno.common.db import json_text
from mvno.orders.domain.model import Order, OrderItem, OrderState
from mvno.orders.statements import LOAD_ORDER, LOCK_ORDER, PERSONAL_DATA_OF_ORDER, SAVE_ORDER
from mvno.orders.tables import order_items, orders


@dataclass(frozen=True)
class OrderFilter:
    state: OrderState | None = None
    channel: str | None = None
    customer_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class LoadedOrder:
    """An order as one statement read it: with its version (the row's ``xmin``) and its personal
    data (still sealed), so that a step needing it makes no second round trip."""

    order: Order
    version: int
    sealed: Sealed | None


async def load_order(
    connection: asyncpg.Connection, *, order_id: str, lock: bool = False
) -> LoadedOrder | None:
    """The order with its items, version and personal data in one statement, locked for the
    caller's transaction when ``lock``."""
    row = await (LOCK_ORDER if lock else LOAD_ORDER).fetchrow(connection, order_id=order_id)
    if row is None:
        return None
    items = row["items"]
    if isinstance(items, str):  # a connection without SQLAlchemy's JSON codec
        items = json.loads(items)
    return LoadedOrder(
        order_of(row, [item_of(item) for item in items]), int(row["version"]), sealed_of(row)
    )


async def save_order(
    connection: asyncpg.Connection,
    *,
    order: Order,
    timer_due: datetime | None = None,
    clear_timer: bool = False,
    if_version: int | None = None,
) -> int | None:
    """Write the order, its items and its timer in one statement; with ``if_version``, only if
    the order is still at that version. Returns the order's new version (the writing
    transaction's id) when it was written, None when not."""
    version = await SAVE_ORDER.fetchval(
        connection,
        order_id=order.id,
        state=str(order.state),
        sequence=order.sequence,
        updated_at=order.updated_at,
        completion_date=order.completion_date,
        failed_step=order.failed_step,
        failure_reason=order.failure_reason,
        item_ids=[item.item_id for item in order.items],
        item_states=[str(item.state) for item in order.items],
        item_subscription_ids=[item.subscription_id for item in order.items],
        item_progress=[
            None if item.progress is None else json_text(item.progress) for item in order.items
        ],
        timer_due=timer_due,
        clear_timer=clear_timer,
        if_version=if_version,
    )
    return None if version is None else int(version)


async def personal_data_of(connection: asyncpg.Connection, *, order_id: str) -> Sealed | None:
    """The order's personal data as stored (still sealed)."""
    row = await PERSONAL_DATA_OF_ORDER.fetchrow(connection, order_id=order_id)
    return None if row is None else sealed_of(row)


class OrdersRepository:
    """Orders in a unit of work's transaction: SQLAlchemy Core on ``session``, the saga's
    load-and-save statements on ``connection`` (the same transaction)."""

    def __init__(self, session: AsyncSession, connection: asyncpg.Connection) -> None:
        self._session = session
        self._connection = connection
        self._sealed: dict[str, Sealed | None] = {}
        """The personal data read with each order loaded here (still sealed)."""

    async def get_order(self, *, order_id: str, for_update: bool = False) -> Order | None:
        """The order with its items in one statement, locked for the caller's transaction when
        ``for_update``."""
        loaded = await self.get_order_version(order_id=order_id, for_update=for_update)
        return None if loaded is None else loaded.order

    async def get_order_version(
        self, *, order_id: str, for_update: bool = True
    ) -> LoadedOrder | None:
        """The order (locked for the caller's transaction unless told otherwise) with its
        version and its personal data."""
        loaded = await load_order(self._connection, order_id=order_id, lock=for_update)
        if loaded is not None:
            self._sealed[order_id] = loaded.sealed
        return loaded

    async def save_order(
        self, *, order: Order, timer_due: datetime | None = None, clear_timer: bool = False
    ) -> int:
        """Write the order's state and its items' in one statement, with the order's timer set
        to ``timer_due`` or cleared when asked (the provisioning saga's lease and retries).
        Returns the order's version once this transaction commits."""
        version = await save_order(
            self._connection, order=order, timer_due=timer_due, clear_timer=clear_timer
        )
        if version is None:
            raise LookupError(f"there is no order {order.id} to save")
        return version

    def loaded_personal_data(self, order_id: str) -> Sealed | None:
        """The order's personal data as read with it by :meth:`get_order` (None when not)."""
        return self._sealed.get(order_id)

    async def personal_data(self, *, order_id: str) -> Sealed | None:
        if order_id in self._sealed:
            return self._sealed[order_id]
        return await personal_data_of(self._connection, order_id=order_id)

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
                items.setdefault(values.pop("order_id"), []).append(item_of(values))
        return [order_of(row._mapping, items.get(row.id, [])) for row in rows]


def sealed_of(row: Any) -> Sealed | None:
    """The order's personal data as stored (still sealed), from a row holding its two columns."""
    if row["personal_data_key"] is None:
        return None
    fields = json.loads(row["personal_data"]) if row["personal_data"] else {}
    return Sealed(
        row["personal_data_key"], {name: base64.b64decode(blob) for name, blob in fields.items()}
    )


def order_of(row: Any, items: list[OrderItem]) -> Order:
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


def item_of(values: Mapping[str, Any]) -> OrderItem:
    return OrderItem(**{**values, "state": OrderState(values["state"])})
