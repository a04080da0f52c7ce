"""How the orders service reaches its database: its repositories, through a unit of work.

``uow.orders``, ``uow.catalogue``, ``uow.inventory``, ``uow.hubs`` and ``uow.timers`` are built
on first use from the unit of work's session (SQLAlchemy Core) and its asyncpg connection (the
hand-written statements), both in its one transaction. :class:`OrdersReads` offers the same
reads outside a transaction (each statement its own), for the intake.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import cached_property

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mvno.common.db import UnitOfWork, autocommit_connection
from mvno.orders.catalogue.repository import CatalogueRepository
from mvno.orders.hub.repository import HubRepository
from mvno.orders.inventory.repository import InventoryRepository
from mvno.orders.provisioning.repository import TimersRepository
from mvno.orders.repository import OrdersRepository


class OrdersUnitOfWork(UnitOfWork):
    @cached_property
    def orders(self) -> OrdersRepository:
        return OrdersRepository(self.session, self.connection)

    @cached_property
    def catalogue(self) -> CatalogueRepository:
        return CatalogueRepository(self.session, self.connection)

    @cached_property
    def inventory(self) -> InventoryRepository:
        return InventoryRepository(self.session, self.connection)

    @cached_property
    def hubs(self) -> HubRepository:
        return HubRepository(self.session, self.connection)

    @cached_property
    def timers(self) -> TimersRepository:
        return TimersRepository(self.connection)


class OrdersReads:
    """Reads on a connection whose every statement is its own transaction (no BEGIN or COMMIT
    round trips): what the intake reads of the database when it is not held in memory."""

    def __init__(self, session: AsyncConnection, connection: asyncpg.Connection) -> None:
        self._session = session
        self._connection = connection

    @cached_property
    def catalogue(self) -> CatalogueRepository:
        return CatalogueRepository(self._session, self._connection)

    @cached_property
    def inventory(self) -> InventoryRepository:
        return InventoryRepository(self._session, self._connection)

    @cached_property
    def hubs(self) -> HubRepository:
        return HubRepository(self._session, self._connection)


def reads_factory(engine: AsyncEngine) -> Callable[[], AbstractAsyncContextManager[OrdersReads]]:
    """Opens :class:`OrdersReads` on a connection of ``engine``'s pool, in autocommit."""

    @asynccontextmanager
    async def reads() -> AsyncIterator[OrdersReads]:
        async with autocommit_connection(engine) as (session, connection):
            yield OrdersReads(session, connection)

    return reads
