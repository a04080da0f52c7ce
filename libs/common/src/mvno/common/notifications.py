"""Following a PostgreSQL ``NOTIFY`` channel, for caches that must drop what a commit changed.

A replica keeps a copy of rarely written data in memory and drops it whenever a transaction that
changed it commits (a trigger raises ``NOTIFY <channel>``). While the listening connection is down
nobody would hear a change, so the follower says so and a cache must not be trusted until it
listens again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

_log = logging.getLogger(__name__)


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
