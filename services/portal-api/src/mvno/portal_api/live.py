"""What changed, heard by every replica: PostgreSQL LISTEN on the consumer's NOTIFYs.

The consumer announces each change to the read model in its own transaction, so a replica hears of
it exactly when it is committed and readable. Each replica keeps one listening connection and
hands each announcement to the live streams (SSE) waiting on that order, and drops its catalogue
cache on catalog changes. While the listener is down, streams fall back to reading the read model
every few seconds, so progress still arrives, later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator

import asyncpg

from mvno.portal_api.tables import CHANGE_CHANNEL

_log = logging.getLogger(__name__)


class Announcements:
    """Announcements of this replica's listener, fanned out to the streams that wait for them."""

    def __init__(self, *, on_catalogue_changed: Callable[[], None]) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._on_catalogue_changed = on_catalogue_changed
        self.listening = False

    @contextlib.contextmanager
    def watch(self, order_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``order_id`` changes, for as long as the block runs."""
        changed = asyncio.Event()
        self._waiting[order_id].add(changed)
        try:
            yield changed
        finally:
            waiting = self._waiting.get(order_id)
            if waiting is not None:
                waiting.discard(changed)
                if not waiting:
                    del self._waiting[order_id]

    def heard(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        topic = message.get("topic")
        if topic == "catalog":
            self._on_catalogue_changed()
        elif topic == "order":
            for changed in self._waiting.get(str(message.get("order_id")), ()):
                changed.set()

    def _everything_may_have_changed(self) -> None:
        self._on_catalogue_changed()
        for waiting in self._waiting.values():
            for changed in waiting:
                changed.set()

    async def listen(self, dsn: str, stop: asyncio.Event) -> None:
        """LISTEN until ``stop``; reconnect after a lost connection."""
        while not stop.is_set():
            try:
                connection = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError):
                _log.warning("cannot listen for read model changes; streams poll instead")
                await _sleep_or_stop(stop, 5)
                continue
            try:
                await connection.add_listener(
                    CHANGE_CHANNEL, lambda _c, _p, _ch, payload: self.heard(payload)
                )
                self.listening = True
                self._everything_may_have_changed()  # while nobody listened
                while not stop.is_set() and not connection.is_closed():
                    await _sleep_or_stop(stop, 1)
            finally:
                self.listening = False
                if not connection.is_closed():
                    await connection.close()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
