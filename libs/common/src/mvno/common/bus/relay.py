"""The outbox relay: publishes committed outbox rows to the service's SNS topic.

Several relays may run at once (one per replica): each claims rows with ``FOR UPDATE SKIP LOCKED``
and holds the lock while it publishes, so no row is published by two relays at the same time.
One relay per database listens for the outbox's NOTIFY at commit and publishes at once: the one
whose listening connection holds an advisory lock. The others only poll slowly, as every relay
does as a safety net, and one of them takes the lock over when that connection goes (its process
died or lost the database). Only one is woken, because relays woken together all claim at once,
mostly finding nothing and splitting the rows into smaller batches. A failed
publish is retried with exponential backoff and jitter; attempts and the last error are recorded.
Delivery is at least once (a relay killed after SNS accepted a batch but before it recorded it
publishes that batch again); consumers' inboxes make the effect exactly once.

A service whose migrations drop the outbox's NOTIFY trigger gets no wake-ups: its listening relay
(the one holding the advisory lock) instead looks every ``coalesce_seconds`` whether rows are due.
PostgreSQL serialises committing transactions that notify (each holds a database-wide lock from
its commit until its WAL is flushed, so they cannot share a flush), which caps a service whose
every request commits alone, as orders' intake does: such a service drops the trigger.

A running relay holds one plain asyncpg connection of its own for its cycles and runs each cycle
in three round trips: ``BEGIN`` with ``SET LOCAL`` in one simple query, the claim, and the marks
with ``COMMIT`` in one simple query (the sequence numbers written into it are integers read from
the claim), with no pool checkout: the relay that listens runs a cycle for every few commits of
the whole service, so each round trip saved is saved on the service's busiest path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mvno.common.bus import metrics
from mvno.common.bus.tables import NOTIFY_CHANNEL
from mvno.common.db import asyncpg_dsn
from mvno.common.tracing import client_spans_when_sampled

_log = logging.getLogger(__name__)

SNS_BATCH = 10  # PublishBatch takes at most ten entries

# pg_try_advisory_lock key of the relay that listens (advisory locks are per database, and each
# service has its own database).
LISTENER_LOCK = 0x6D766E6F_72656C61  # "mvnorela"

# The relay's statements go to a plain asyncpg connection, not through SQLAlchemy: they run after
# every commit of every service, so they must cost as little CPU as the driver allows.
_CLAIM = """
    SELECT seq, body, attributes::text AS attributes, attempts FROM outbox
    WHERE published_at IS NULL AND next_attempt_at <= now()
    ORDER BY seq
    LIMIT $1
    FOR UPDATE SKIP LOCKED
"""
# The relay's own records (published, attempts, last error) need not wait for the WAL to reach the
# disk: a crash that loses them only makes the relay publish those rows again, which at-least-once
# delivery and the consumers' inboxes already allow for. Committing without the flush takes the
# disk's latency off the path of every event.
_BEGIN = "BEGIN; SET LOCAL synchronous_commit = off"
_MARK_PUBLISHED_AND_COMMIT = (
    "UPDATE outbox SET published_at = now(), attempts = attempts + 1, last_error = NULL "
    "WHERE seq = ANY('{{{seqs}}}'::bigint[]); COMMIT"
)
_MARK_FAILED = (
    "UPDATE outbox SET attempts = attempts + 1, last_error = $2, "
    "next_attempt_at = now() + make_interval(secs => $3) WHERE seq = $1"
)
# Whether this database's outbox notifies at commit (its trigger there and enabled).
_NOTIFIES = (
    "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'outbox'::regclass "
    "AND tgname = 'outbox_notify' AND tgenabled <> 'D')"
)
_ANY_DUE = (
    "SELECT EXISTS (SELECT 1 FROM outbox WHERE published_at IS NULL AND next_attempt_at <= now())"
)
# Shortest look interval of a relay without wake-ups (a coalescing window of 0 included).
_MIN_LOOK_SECONDS = 0.01
_BACKLOG = text(
    "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
    "FROM outbox WHERE published_at IS NULL"
)
_PRUNE = text(
    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE published_at < now() - CAST(:age AS interval) "
    "ORDER BY seq LIMIT 5000)"
)


@dataclass(frozen=True)
class RelaySettings:
    batch_size: int = 100
    poll_interval: float = 5.0
    retry_initial: float = 0.5
    retry_max: float = 300.0
    retention: timedelta = timedelta(days=7)
    housekeeping_interval: float = 30.0
    # Woken from idle, wait this long so that commits arriving together go out in one PublishBatch.
    # Not after a busy cycle: the rows committed during it have already waited that long.
    coalesce_seconds: float = 0.005
    # PublishBatch calls in flight at once for one claimed batch. One by default: the endpoint then
    # works on one call at a time instead of interleaving several, which an endpoint serving every
    # request from one interpreter (moto) handles worse for everyone using it. Against AWS a
    # relay still publishes ten events per round trip; raise it to drain a large backlog faster.
    concurrent_publishes: int = 1


class OutboxRelay:
    """Publishes a service's outbox to its topic until ``stop`` is set."""

    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        database_url: str,
        sns: Any,
        topic_arn: str,
        settings: RelaySettings | None = None,
    ) -> None:
        self._service = service
        self._engine = engine
        self._dsn = asyncpg_dsn(database_url)
        self._sns = sns
        self._topic_arn = topic_arn
        self._settings = settings or RelaySettings()
        self._wake = asyncio.Event()
        self._listening = False
        self._looking = False
        """Listening without wake-ups: looking for due rows every ``coalesce_seconds``."""
        self._connection: asyncpg.Connection | None = None
        """The connection of the cycles while :meth:`run` runs."""

    @property
    def listening(self) -> bool:
        """Whether this relay is the one woken by commits, or that looks for rows every
        coalescing window where the outbox does not notify (the others poll slowly)."""
        return self._listening

    async def publish_due(self) -> int:
        """Claim due rows, publish them, record the outcome. Returns how many were published."""
        # The relay's own statements and PublishBatch calls are in no trace (each event carries
        # its producer's trace context to its consumers): no client spans for them, which would
        # each be a trace of its own, several per commit of the service.
        with client_spans_when_sampled():
            if self._connection is not None:  # held by run()
                return await self._publish_due(self._connection)
            connection = await asyncpg.connect(self._dsn)
            try:
                return await self._publish_due(connection)
            finally:
                await connection.close(timeout=2)

    async def _cycle(self) -> int:
        """:meth:`publish_due` on the connection ``run`` holds, made again after a failure."""
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(self._dsn)
        try:
            return await self.publish_due()
        except BaseException:
            # Closing rolls back whatever the cycle left open; the next cycle connects again.
            broken, self._connection = self._connection, None
            if broken is not None:
                broken.terminate()
            raise

    async def _publish_due(self, connection: asyncpg.Connection) -> int:
        await connection.execute(_BEGIN)
        rows = await connection.fetch(_CLAIM, self._settings.batch_size)
        if not rows:
            await connection.execute("COMMIT")
            return 0
        chunks = [list(rows[i : i + SNS_BATCH]) for i in range(0, len(rows), SNS_BATCH)]
        outcomes: list[tuple[list[int], dict[int, str]]] = []
        step = self._settings.concurrent_publishes
        for start in range(0, len(chunks), step):
            group = chunks[start : start + step]
            outcomes += await asyncio.gather(*(self._publish_chunk(chunk) for chunk in group))
        published = [seq for done, _ in outcomes for seq in done]
        failed = {seq: error for _, errors in outcomes for seq, error in errors.items()}
        attempts = {row["seq"]: row["attempts"] for row in rows}
        for seq, error in failed.items():
            await connection.execute(
                _MARK_FAILED, seq, error[:2000], float(self._backoff(attempts[seq]))
            )
        if published:
            seqs = ",".join(str(int(seq)) for seq in published)
            await connection.execute(_MARK_PUBLISHED_AND_COMMIT.format(seqs=seqs))
        else:
            await connection.execute("COMMIT")
        if published:
            metrics.events_published.add(len(published), {"service": self._service})
        if failed:
            metrics.publish_failures.add(len(failed), {"service": self._service})
            _log.warning("publishing %d outbox events failed; retrying with backoff", len(failed))
        return len(published)

    async def _publish_chunk(self, rows: list[Any]) -> tuple[list[int], dict[int, str]]:
        entries = [
            {
                "Id": str(row["seq"]),
                "Message": row["body"],
                "MessageAttributes": {
                    name: {"DataType": "String", "StringValue": value}
                    for name, value in json.loads(row["attributes"]).items()
                },
            }
            for row in rows
        ]
        try:
            answer = await self._sns.publish_batch(
                TopicArn=self._topic_arn, PublishBatchRequestEntries=entries
            )
        except Exception as exc:  # the endpoint is down or refused the call: retry every row later
            return [], {row["seq"]: f"{type(exc).__name__}: {exc}" for row in rows}
        done = [int(entry["Id"]) for entry in answer.get("Successful", [])]
        errors = {
            int(entry["Id"]): f"{entry.get('Code')}: {entry.get('Message')}"
            for entry in answer.get("Failed", [])
        }
        return done, errors

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self._settings.retry_max, self._settings.retry_initial * 2**attempts)
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 - jitter, not security

    async def housekeeping(self) -> int:
        """Prune published rows past the retention and refresh the backlog gauges."""
        async with self._engine.begin() as connection:
            pruned = (await connection.execute(_PRUNE, {"age": self._settings.retention})).rowcount
            await self._measure(connection)
        return int(pruned or 0)

    async def _measure(self, connection: AsyncConnection) -> None:
        backlog, oldest = (await connection.execute(_BACKLOG)).one()
        metrics.Gauges.outbox_backlog[self._service] = int(backlog)
        metrics.Gauges.outbox_oldest_age[self._service] = float(oldest)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; survives database and endpoint outages."""
        listener = asyncio.create_task(self._listen(stop))
        last_housekeeping = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    published = await self._cycle()
                    if loop.time() - last_housekeeping > self._settings.housekeeping_interval:
                        await self.housekeeping()
                        last_housekeeping = loop.time()
                except Exception:
                    _log.exception("outbox relay cycle failed")
                    published = 0
                if published >= self._settings.batch_size:
                    continue  # more may be waiting
                if self._wake.is_set():
                    # Rows were committed while this cycle published: they have waited for it
                    # already and went on accumulating meanwhile, so claim them at once.
                    continue
                await _wait_any(self._wake, stop, limit=self._settings.poll_interval)
                # A relay that looks for rows has waited its coalescing window already.
                if self._wake.is_set() and self._settings.coalesce_seconds and not self._looking:
                    await asyncio.sleep(self._settings.coalesce_seconds)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            connection, self._connection = self._connection, None
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)

    async def _listen(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                connection = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                _log.warning("outbox LISTEN connection failed (%s); polling meanwhile", exc)
                await _wait_any(stop, limit=self._settings.poll_interval)
                continue
            lost = asyncio.Event()
            try:
                connection.add_termination_listener(_setter(lost))
                while not await connection.fetchval(
                    "SELECT pg_try_advisory_lock($1)", LISTENER_LOCK
                ):
                    # Another relay listens; try again at the pace of the safety-net poll.
                    await _wait_any(stop, lost, limit=self._settings.poll_interval)
                    if stop.is_set() or lost.is_set():
                        break
                else:
                    self._listening = True
                    if await connection.fetchval(_NOTIFIES):
                        await connection.add_listener(NOTIFY_CHANNEL, _setter(self._wake))
                        self._wake.set()  # rows committed while we were not listening
                        await _wait_any(stop, lost)
                    else:
                        self._looking = True
                        await self._look(connection, stop, lost)
            except Exception as exc:  # the connection broke under us: connect again shortly
                _log.warning("outbox LISTEN connection failed (%s); polling meanwhile", exc)
                await _wait_any(stop, limit=self._settings.poll_interval)
            finally:
                self._listening = self._looking = False
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)

    async def _look(
        self, connection: asyncpg.Connection, stop: asyncio.Event, lost: asyncio.Event
    ) -> None:
        """Wake the cycles whenever rows are due, looking every coalescing window: the listening
        relay of an outbox without the NOTIFY trigger. Rows wait up to one window, as they waited
        one window after a wake-up."""
        interval = max(self._settings.coalesce_seconds, _MIN_LOOK_SECONDS)
        while not (stop.is_set() or lost.is_set()):
            if await connection.fetchval(_ANY_DUE):
                self._wake.set()
            await _wait_any(stop, lost, limit=interval)


def _setter(event: asyncio.Event) -> Any:
    return lambda *_: event.set()


async def _wait_any(*events: asyncio.Event, limit: float | None = None) -> None:
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
