"""The provisioning timers: when an order's next step is due (a retry's backoff over, a wait to
look at again, a lease run out); and how many orders they still drive. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import asyncpg

from mvno.orders.provisioning.statements import (
    DROP_TIMER,
    OPEN_ORDERS_BY_STATE,
    TAKE_DUE_TIMERS,
    WAKE_ORDER,
)


class DueOrder(NamedTuple):
    """An order whose timer fired, with the trace context saved when it was placed."""

    order_id: str
    trace_context: str | None


class TimersRepository:
    """The timers on an asyncpg connection: a unit of work's, or one of the worker's pool
    (each statement its own transaction)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def take_due_timers(
        self, *, at: datetime, lease_until: datetime, limit: int
    ) -> list[DueOrder]:
        """Take up to ``limit`` orders whose timers are due at ``at``, their timers moved on to
        ``lease_until`` in the same statement: no other worker takes them meanwhile, and should
        this one die before their next step is saved, the timer hands them out again then."""
        rows = await TAKE_DUE_TIMERS.fetch(
            self._connection, at=at, limit=limit, lease_until=lease_until
        )
        return [DueOrder(row["order_id"], row["trace_context"]) for row in rows]

    async def drop_timer(self, *, order_id: str, due_at: datetime) -> None:
        """Delete the order's timer if it is still due at ``due_at`` (no step replaced it)."""
        await DROP_TIMER.execute(self._connection, order_id=order_id, due_at=due_at)

    async def wake(self, *, order_id: str, at: datetime) -> None:
        """Make the order's timer due at ``at`` (or keep it, if sooner): a worker's next look at
        the timers takes the order up (:meth:`take_due_timers`)."""
        await WAKE_ORDER.execute(self._connection, order_id=order_id, due_at=at)

    async def open_orders_by_state(self, *, states: list[str]) -> dict[str, int]:
        """How many orders are in each of ``states`` (states with none are left out)."""
        rows = await OPEN_ORDERS_BY_STATE.fetch(self._connection, states=states)
        return {row["state"]: int(row["orders"]) for row in rows}
