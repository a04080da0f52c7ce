"""What a step of the provisioning saga may read and write (:class:`StepStore`), and the two
ways a step runs.

- :class:`LockedSteps`: the order locked in a unit of work; the step may also write lines and
  publish events, committed with the order (:class:`LockedStepStore`).
- :class:`AloneSteps`: no transaction, on a plain connection of the worker's
  :class:`~mvno.common.db.StatementPool`. The order is loaded with its version (the row's
  ``xmin``) and saved only if it is still at that version, so a step whose only outcome is the
  order's own record needs no lock: two workers on one order send the partner the same
  Idempotency-Key, the partner acts once, and the later save is dropped. Such a store offers
  nothing else to write, so a step run alone cannot write a line or an event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from pydantic import BaseModel

from mvno.common.crypto import Sealed
from mvno.orders.domain.catalogue import OfferingCopy
from mvno.orders.domain.model import Order
from mvno.orders.inventory.repository import billing_account_of
from mvno.orders.repository import load_order, personal_data_of, save_order
from mvno.orders.unit_of_work import OrdersUnitOfWork


class StepStore(Protocol):
    """What every step may read."""

    async def personal_data(self, *, order_id: str) -> Sealed | None:
        """The order's personal data, still sealed."""
        ...

    async def billing_account_of(self, *, subscription_id: str) -> str | None:
        """billing-sync's account for a line, once its answer arrived."""
        ...


class LockedStepStore(StepStore, Protocol):
    """What a step run with the order locked may also do; all of it commits with the order."""

    async def payment_type_of(self, *, offering_id: str) -> str | None: ...

    async def offerings(self, *, offering_ids: Iterable[str]) -> dict[str, OfferingCopy]: ...

    async def line(self, *, subscription_id: str) -> dict[str, Any] | None: ...

    async def add_line(self, *, values: dict[str, Any]) -> None:
        """A new line, every column of ``subscriptions`` given."""
        ...

    async def update_line(self, *, subscription_id: str, values: dict[str, Any]) -> int:
        """Apply ``values`` to the line and bump its event sequence; returns the new sequence."""
        ...

    def publish(self, event: BaseModel) -> None:
        """Stage an event for the outbox, written with the order."""
        ...


class LockedSteps:
    """The :class:`LockedStepStore` of a unit of work."""

    def __init__(self, uow: OrdersUnitOfWork) -> None:
        self._uow = uow

    async def personal_data(self, *, order_id: str) -> Sealed | None:
        return await self._uow.orders.personal_data(order_id=order_id)

    async def billing_account_of(self, *, subscription_id: str) -> str | None:
        return await self._uow.inventory.billing_account_of(subscription_id=subscription_id)

    async def payment_type_of(self, *, offering_id: str) -> str | None:
        return await self._uow.catalogue.payment_type_of(offering_id=offering_id)

    async def offerings(self, *, offering_ids: Iterable[str]) -> dict[str, OfferingCopy]:
        return await self._uow.catalogue.offerings(offering_ids=offering_ids)

    async def line(self, *, subscription_id: str) -> dict[str, Any] | None:
        return await self._uow.inventory.get_subscription(subscription_id=subscription_id)

    async def add_line(self, *, values: dict[str, Any]) -> None:
        await self._uow.inventory.add_subscription(values=values)

    async def update_line(self, *, subscription_id: str, values: dict[str, Any]) -> int:
        return await self._uow.inventory.update_subscription(
            subscription_id=subscription_id, values=values
        )

    def publish(self, event: BaseModel) -> None:
        self._uow.publish(event)


class AloneSteps:
    """The :class:`StepStore` of a step run alone, on a plain connection (each statement its
    own transaction), with the load and the version-checked save of the order it runs on."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self._sealed: dict[str, Sealed | None] = {}
        """The personal data read with each order loaded here (still sealed), so that a step
        needing it makes no second round trip."""

    async def load_order(self, *, order_id: str) -> tuple[Order, int] | None:
        """The order with its items and its version, in one statement (its personal data read
        with it is held here)."""
        loaded = await load_order(self._connection, order_id=order_id)
        if loaded is None:
            return None
        self._sealed[order_id] = loaded.sealed
        return loaded.order, loaded.version

    async def save_order(
        self,
        *,
        order: Order,
        timer_due: datetime | None = None,
        clear_timer: bool = False,
        if_version: int | None = None,
    ) -> int | None:
        """Write the order, its items and its timer in one statement, only if the order is still
        at ``if_version`` when given. Returns its new version, None when nothing was written."""
        return await save_order(
            self._connection,
            order=order,
            timer_due=timer_due,
            clear_timer=clear_timer,
            if_version=if_version,
        )

    def remember_personal_data(self, order_id: str, sealed: Sealed | None) -> None:
        """Hold ``sealed`` as the order's personal data, read with it by an earlier step."""
        self._sealed[order_id] = sealed

    def loaded_personal_data(self, order_id: str) -> Sealed | None:
        """The order's personal data read with it here (None when not read, or not held)."""
        return self._sealed.get(order_id)

    async def personal_data(self, *, order_id: str) -> Sealed | None:
        if order_id in self._sealed:
            return self._sealed[order_id]
        return await personal_data_of(self._connection, order_id=order_id)

    async def billing_account_of(self, *, subscription_id: str) -> str | None:
        return await billing_account_of(self._connection, subscription_id=subscription_id)
