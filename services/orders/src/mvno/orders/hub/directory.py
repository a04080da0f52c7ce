"""Each client's hubs, kept in memory per replica for order intake.

Every order tells its channel's hubs of its first state, so intake needs the placing client's hubs
on every order; they change when a channel registers or removes one, a few times a year. A replica
keeps what it read and drops it all at the commit of any change (the table's trigger raises
``NOTIFY orders_hubs_changed``); while that listener is down every read goes to the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mvno.common.notifications import NotifiedCache

CHANGED = "orders_hubs_changed"

HubQueries = tuple[tuple[str, str | None], ...]
"""A client's hubs: (hub id, event query) pairs."""


class HubDirectory:
    def __init__(self, dsn: str) -> None:
        self._held: NotifiedCache[str, HubQueries] = NotifiedCache(dsn, CHANGED)

    async def of(self, client_id: str, load: Callable[[str], Awaitable[HubQueries]]) -> HubQueries:
        """The hubs ``client_id`` registered; ``load`` reads them when they are not held."""

        async def read(missing: set[str]) -> dict[str, HubQueries]:
            return {client: await load(client) for client in missing}

        return (await self._held.get_many((client_id,), read))[client_id]

    async def follow_changes(self, stop: asyncio.Event) -> None:
        await self._held.follow_changes(stop)
