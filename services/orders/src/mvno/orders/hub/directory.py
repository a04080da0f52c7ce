"""Each client's hubs, kept in memory per replica for order intake.

Every order tells its channel's hubs of its first state, so intake needs the placing client's hubs
on every order; they change when a channel registers or removes one, a few times a year. A replica
keeps what it read and drops it all at the commit of any change (the table's trigger raises
``NOTIFY orders_hubs_changed``); while that listener is down every read goes to the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from mvno.common.notifications import follow

CHANGED = "orders_hubs_changed"

HubQueries = tuple[tuple[str, str | None], ...]
"""A client's hubs: (hub id, event query) pairs."""


class HubDirectory:
    def __init__(self, dsn: str, *, max_clients: int = 10_000) -> None:
        self._dsn = dsn
        self._max_clients = max_clients
        self._hubs: dict[str, HubQueries] = {}
        self._listening = False

    async def of(self, client_id: str, load: Callable[[str], Awaitable[HubQueries]]) -> HubQueries:
        """The hubs ``client_id`` registered; ``load`` reads them when they are not held."""
        held = self._hubs.get(client_id) if self._listening else None
        if held is not None:
            return held
        generation = self._hubs
        hubs = await load(client_id)
        # A change committed while we read empties the directory (a new dict): keep nothing then.
        if self._listening and generation is self._hubs and len(generation) < self._max_clients:
            generation[client_id] = hubs
        return hubs

    async def follow_changes(self, stop: asyncio.Event) -> None:
        await follow(self._dsn, CHANGED, changed=self._clear, listening=self._set, stop=stop)

    def _clear(self) -> None:
        self._hubs = {}

    def _set(self, listening: bool) -> None:
        self._listening = listening
