"""Following a PostgreSQL ``NOTIFY`` channel, for caches that must drop what a commit changed
(:class:`NotifiedCache` is such a cache).

A replica keeps a copy of rarely written data in memory and drops it whenever a transaction that
changed it commits (a trigger raises ``NOTIFY <channel>``). While the listening connection is down
nobody would hear a change, so the follower says so and a cache must not be trusted until it
listens again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

import asyncpg

_log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


async def follow(
    dsn: str,
    channel: str,
    *,
    changed: Callable[[], None],
    listening: Callable[[bool], None],
    stop: asyncio.Event,
    retry_seconds: float = 5,
) -> None:
    """LISTEN on ``channel`` until ``stop``, calling ``changed`` on each notification.

    ``listening(True)`` runs once the listener is in place (after ``changed()``, since anything
    may have changed while nobody listened) and ``listening(False)`` whenever it is lost; a lost
    connection is retried every ``retry_seconds``.
    """
    while not stop.is_set():
        try:
            connection = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError):
            _log.warning("cannot LISTEN %s; its cache is bypassed", channel)
            await _sleep_or_stop(stop, retry_seconds)
            continue
        try:
            await connection.add_listener(channel, lambda *_: changed())
            changed()
            listening(True)
            while not stop.is_set() and not connection.is_closed():
                await _sleep_or_stop(stop, 1)
        finally:
            listening(False)
            changed()
            if not connection.is_closed():
                await connection.close()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class NotifiedCache(Generic[K, V]):
    """Values read from the database, held in memory per replica and all forgotten at the commit
    of any change to what they were read from (its trigger raises ``NOTIFY <channel>``).

    While the listener is down nothing is held, so a read never sees older data than the
    database's. Run :meth:`follow_changes` as a background task of the process.
    """

    def __init__(self, dsn: str, channel: str, *, max_entries: int = 10_000) -> None:
        self._dsn = dsn
        self._channel = channel
        self._max_entries = max_entries
        self._entries: dict[K, V] = {}
        self._listening = False

    async def get_many(
        self, keys: Iterable[K], load: Callable[[set[K]], Awaitable[dict[K, V]]]
    ) -> dict[K, V]:
        """The value of each of ``keys``; ``load`` reads those not held (and must answer for
        every key it is given)."""
        wanted = set(keys)
        if not self._listening:
            return await load(wanted)
        held = self._entries
        missing = wanted - held.keys()
        loaded = await load(missing) if missing else {}
        # A change committed while we read forgets everything (a new dict): keep nothing then.
        if loaded and held is self._entries and len(held) < self._max_entries:
            held.update(loaded)
        return {key: held[key] for key in wanted - missing} | loaded

    async def follow_changes(self, stop: asyncio.Event) -> None:
        await follow(self._dsn, self._channel, changed=self._forget, listening=self._set, stop=stop)

    def _forget(self) -> None:
        self._entries = {}

    def _set(self, listening: bool) -> None:
        self._listening = listening
