"""What changed, heard by every replica: PostgreSQL LISTEN on the consumer's NOTIFYs.

The consumer announces each change to the read model in its own transaction, so a replica hears of
it exactly when it is committed and readable. Each replica keeps one listening connection and
hands each announcement to the live streams (SSE) waiting on that order, drops its catalogue
cache on catalog changes, and drops a customer's rendered "my lines" answer when their lines,
balances or orders change. While the listener is down, streams fall back to reading the read model
every few seconds, so progress still arrives, later, and no rendered answer is kept or used.
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

    def __init__(
        self,
        *,
        on_catalogue_changed: Callable[[], None],
        on_customer_changed: Callable[[str | None], None] = lambda _: None,
        on_listening: Callable[[bool], None] = lambda _: None,
    ) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._on_catalogue_changed = on_catalogue_changed
        self._on_customer_changed = on_customer_changed
        self._on_listening = on_listening
        self._listening = False

    @property
    def listening(self) -> bool:
        return self._listening

    @listening.setter
    def listening(self, listening: bool) -> None:
        self._listening = listening
        self._on_listening(listening)

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
        if not isinstance(message, dict):
            return
        topic = message.get("topic")
        if topic == "catalog":
            self._on_catalogue_changed()
            return
        # Lines, balances and orders (a completed one invalidates its line's balance).
        customer_id = message.get("customer_id")
        self._on_customer_changed(customer_id if isinstance(customer_id, str) else None)
        if topic == "order":
            for changed in self._waiting.get(str(message.get("order_id")), ()):
                changed.set()

    def _everything_may_have_changed(self) -> None:
        self._on_catalogue_changed()
        self._on_customer_changed(None)
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
                # Lost at once, not at the next check below: nothing may be trusted from then on.
                connection.add_termination_listener(lambda _c: self._lost())
                await connection.add_listener(
                    CHANGE_CHANNEL, lambda _c, _p, _ch, payload: self.heard(payload)
                )
                self._everything_may_have_changed()  # while nobody listened
                self.listening = True
                while not stop.is_set() and not connection.is_closed():
                    await _sleep_or_stop(stop, 1)
            finally:
                self._lost()
                if not connection.is_closed():
                    await connection.close()

    def _lost(self) -> None:
        if self._listening:
            self.listening = False
            self._on_customer_changed(None)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
