"""Database plumbing: the async engine, a unit of work that commits once, migrations.

Each service owns its own database; outside production a missing database is created on start-up.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, overload

import asyncpg
from asyncpg.transaction import Transaction
from opentelemetry.instrumentation.utils import suppress_instrumentation
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from mvno.common.bus.envelope import OutgoingEvent, new_event
from mvno.common.settings import ServiceSettings

if TYPE_CHECKING:
    from alembic.config import Config

_log = logging.getLogger(__name__)

# Plain SQL on the driver: every request that publishes writes its events through it.
_WRITE_OUTBOX_ROWS = """
INSERT INTO outbox (event_id, event_type, body, attributes)
SELECT e.event_id, e.event_type, e.body, e.attributes::jsonb
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
       AS e(event_id, event_type, body, attributes)
"""


def outbox_recordset(parameter: str) -> str:
    """:data:`OUTBOX_RECORDSET` reading its rows from ``parameter`` (``$3`` in SQL sent to asyncpg
    itself, say)."""
    return (
        f"jsonb_to_recordset(CAST({parameter} AS jsonb)) "
        "AS outbox_row(event_id text, event_type text, body text, attributes jsonb)"
    )


OUTBOX_RECORDSET = outbox_recordset(":outbox")
"""The rows of :func:`outbox_json` (bound as ``:outbox``) for a statement that writes its events
itself: ``INSERT INTO outbox (event_id, event_type, body, attributes) SELECT outbox_row.* FROM
<its own rows>, OUTBOX_RECORDSET``. A hot path that makes its whole change in one statement (no
transaction to begin and commit) writes its events in that statement, as atomic as a unit of work.
"""


def json_text(value: Any) -> str:
    """``value`` as JSON text for a ``json``/``jsonb`` parameter of a hand-written statement,
    written by pydantic's serializer (datetimes in ISO 8601, anything else it cannot write as
    ``str``)."""
    return to_json(value, fallback=str).decode()


def outbox_json(events: Sequence[OutgoingEvent]) -> str:
    """``events`` as the JSON :data:`OUTBOX_RECORDSET` reads."""
    return json_text(
        [
            {"event_id": e.id, "event_type": e.type, "body": e.body, "attributes": e.attributes}
            for e in events
        ]
    )


_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Statement:
    """A hand-written statement with named parameters (``:customer_id``), sent to asyncpg as the
    positional ``$n`` it understands; the translation is made once, when the module is loaded.

    A service keeps its statements as module constants in its ``statements`` module, named for
    what they do, and runs them on a unit of work's :attr:`~UnitOfWork.connection` or a
    :class:`StatementPool`'s: ``await LINES_OF.fetch(connection, customer_id=...)``. A name used
    twice is one parameter; ``::type`` casts are left alone.
    """

    def __init__(self, sql: str) -> None:
        names: list[str] = []

        def positional(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        self.sql = _PARAMETER.sub(positional, sql)
        self.names = tuple(names)

    def arguments(self, values: dict[str, Any]) -> tuple[Any, ...]:
        """The values in the statement's order; a missing or unknown name is a bug here."""
        if len(values) != len(self.names) or not all(name in values for name in self.names):
            missing = sorted(set(self.names) - set(values))
            unknown = sorted(set(values) - set(self.names))
            raise TypeError(f"statement parameters: missing {missing}, unknown {unknown}")
        return tuple(values[name] for name in self.names)

    async def fetch(self, connection: asyncpg.Connection, **values: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await connection.fetch(self.sql, *self.arguments(values))
        return rows

    async def fetchrow(
        self, connection: asyncpg.Connection, **values: Any
    ) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await connection.fetchrow(self.sql, *self.arguments(values))
        return row

    async def fetchval(self, connection: asyncpg.Connection, **values: Any) -> Any:
        return await connection.fetchval(self.sql, *self.arguments(values))

    async def execute(self, connection: asyncpg.Connection, **values: Any) -> str:
        status: str = await connection.execute(self.sql, *self.arguments(values))
        return status


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    """An asyncpg-backed engine sized by the settings."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_overflow,
        # No pre-ping, a round trip on every checkout: a connection lost to a database restart
        # fails one statement, SQLAlchemy then invalidates the pool and the next one reconnects.
        pool_recycle=1800,
    )


def asyncpg_dsn(database_url: str) -> str:
    """The same URL without SQLAlchemy's ``+asyncpg`` driver suffix, as asyncpg wants it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(database_url: str) -> bool:
    """Create the URL's database on its server if it is missing. Returns True when created."""
    url = make_url(database_url)
    name = url.database
    if not name:
        raise ValueError("the database URL names no database")
    admin_dsn = asyncpg_dsn(url.set(database="postgres").render_as_string(hide_password=False))
    connection = await asyncpg.connect(admin_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await connection.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False  # another process created it between our check and our CREATE
        _log.info("created database %s", name)
        return True
    finally:
        await connection.close()


class StatementPool:
    """Up to ``size`` plain asyncpg connections, lent one at a time: the one pool for statements
    sent outside a unit of work (each its own transaction, or a short one of the borrower's).

    Lending and giving back are a list operation each, for the hottest paths (the order intake,
    the portal's screens): no SQLAlchemy session, no task per release as asyncpg's own pool
    makes. Nothing is reset on return, as a lone statement leaves no session state behind. A
    connection given back inside a transaction, or after anything but a PostgreSQL error (a
    cancelled or broken statement leaves its protocol in an unknown state), is closed rather
    than lent again, and another is made when next needed. ``json``/``jsonb`` travel as text.
    """

    REST_SECONDS = 5.0
    """After the server refused a connection while others are open, how long borrowers wait for
    those rather than ask it for another."""

    def __init__(
        self,
        dsn: str,
        *,
        size: int,
        connect: Callable[[], Awaitable[asyncpg.Connection]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size < 1:
            raise ValueError("a statement pool needs at least one connection")
        self._connect = connect or (lambda: asyncpg.connect(dsn))
        self._size = size
        self._clock = clock
        self._connect_after = 0.0
        self._idle: list[asyncpg.Connection] = []
        self._open = 0
        """Connections lent, idle or being made."""
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    @classmethod
    async def open(cls, dsn: str, *, size: int) -> StatementPool:
        """A pool with one connection made already (so a database that cannot be reached
        fails the start-up, not the first request)."""
        pool = cls(dsn, size=size)
        async with pool.acquire():
            pass
        return pool

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """The rows of one statement, on a connection borrowed for it (as :meth:`acquire` lends
        it, without a context manager made per call: this is the hottest reads' way)."""
        connection = await self._take()
        try:
            rows: list[asyncpg.Record] = await connection.fetch(query, *args)
        except asyncpg.PostgresError:
            self._give_back(connection)  # the server refused the statement: the link is sound
            raise
        except BaseException:
            self._discard(connection)
            raise
        self._give_back(connection)
        return rows

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """Borrow a connection for the block; wait for one when all ``size`` are lent."""
        connection = await self._take()
        try:
            yield connection
        except asyncpg.PostgresError:
            self._give_back(connection)  # the server refused a statement: the link is sound
            raise
        except BaseException:
            self._discard(connection)
            raise
        self._give_back(connection)

    @property
    def idle(self) -> int:
        """Connections made and waiting to be lent."""
        return len(self._idle)

    async def close(self) -> None:
        """Close the idle connections; those lent are closed as they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        for connection in idle:
            await connection.close()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    async def _take(self) -> asyncpg.Connection:
        woken = False
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the statement pool is closed")
            while self._idle:
                connection = self._idle.pop()
                if not connection.is_closed():
                    return connection
                self._open -= 1
            if self._open < self._size and (
                self._open == 0 or self._clock() >= self._connect_after
            ):
                self._open += 1
                try:
                    return await self._connect()
                except Exception:
                    self._open -= 1
                    if self._open == 0:
                        self._wake_one()
                        raise  # nothing open to wait for
                    # The server refuses more (too many clients, say): wait for those open, and
                    # leave it alone a while rather than fail every borrower asking it again.
                    _log.warning(
                        "could not open a connection; %d in use", self._open, exc_info=True
                    )
                    self._connect_after = self._clock() + self.REST_SECONDS
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
            waiter = asyncio.get_running_loop().create_future()
            # Woken before but beaten to the connection by a newcomer: first in line again.
            (self._waiters.appendleft if woken else self._waiters.append)(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # the connection freed for this waiter goes to the next
                elif waiter in self._waiters:  # (a wake-up may have passed it over already)
                    self._waiters.remove(waiter)
                raise
            woken = True

    def _give_back(self, connection: asyncpg.Connection) -> None:
        if self._closed or connection.is_closed() or connection.is_in_transaction():
            self._discard(connection)
            return
        self._idle.append(connection)
        self._wake_one()

    def _discard(self, connection: asyncpg.Connection) -> None:
        connection.terminate()
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _driver_of(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy connection (SQLAlchemy's public way to it)."""
    driver = (await connection.get_raw_connection()).driver_connection
    if not isinstance(driver, asyncpg.Connection):
        raise TypeError("the platform's databases are reached through asyncpg")
    return driver


@contextlib.asynccontextmanager
async def autocommit_connection(
    engine: AsyncEngine,
) -> AsyncIterator[tuple[AsyncConnection, asyncpg.Connection]]:
    """A connection of ``engine``'s pool on which every statement is its own transaction (no
    BEGIN or COMMIT round trips), as SQLAlchemy's connection and as the asyncpg one under it:
    for reads that need no unit of work (a repository takes both, as from a unit of work)."""
    async with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        yield connection, await _driver_of(connection)


class UnitOfWork:
    """One business transaction: use it as ``async with uow: ...; await uow.commit()``.

    Nothing is written unless ``commit()`` is called; leaving the block without it, or with an
    exception, rolls everything back, so a failed request never leaves half-written state.
    Events given to :meth:`publish` are written to the outbox in that same commit, never apart
    from the business change they announce.

    The transaction is the driver's own (asyncpg's, begun on entering the block), under a
    session whose connection runs in autocommit: SQLAlchemy statements through :attr:`session`
    and hand-written ones on :attr:`connection` share it, and neither begins or ends it. A
    service subclasses this to offer its repositories as attributes (``uow.orders``), built on
    first use from :attr:`session` and :attr:`connection`.
    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession], *, source: str) -> None:
        self._session_factory = session_factory
        self._source = source
        self._session: AsyncSession | None = None
        self._connection: asyncpg.Connection | None = None
        self._transaction: Transaction | None = None
        self._committed = False
        self._events: list[OutgoingEvent] = []

    def publish(
        self, data: BaseModel, *, subject: str | None = None, event_id: str | None = None
    ) -> OutgoingEvent:
        """Stage an event for the outbox; it is written by :meth:`commit` with the business change.

        Raises :class:`~mvno.common.bus.envelope.EventTooLargeError` at once when the bus would
        refuse the event.
        """
        event = new_event(data, source=self._source, subject=subject, event_id=event_id)
        self._events.append(event)
        return event

    @property
    def committed(self) -> bool:
        """Whether :meth:`commit` ran (a handler may commit early to go on in new transactions)."""
        return self._committed

    @property
    def session(self) -> AsyncSession:
        """SQLAlchemy's session, for Core statements in this unit of work's transaction."""
        if self._session is None or self._committed:
            raise RuntimeError(self._closed_reason())
        return self._session

    @property
    def connection(self) -> asyncpg.Connection:
        """The asyncpg connection under :attr:`session`, in this unit of work's transaction: the
        one way to run a service's hand-written statements (its ``statements`` module) with the
        rest of the change."""
        if self._connection is None or self._committed:
            raise RuntimeError(self._closed_reason())
        return self._connection

    def _closed_reason(self) -> str:
        # After its commit the connection has no transaction: a statement would commit alone.
        if self._committed:
            return "the unit of work has committed; open another for more work"
        return "the unit of work is not open; use it in 'async with'"

    async def __aenter__(self) -> Self:
        if self._session is not None or self._committed:
            raise RuntimeError("a unit of work is opened once")
        session = self._session_factory()
        try:
            driver = await _driver_of(await session.connection())
            transaction = driver.transaction()
            with suppress_instrumentation():  # a BEGIN span tells a trace nothing; each costs CPU
                await transaction.start()
        except BaseException:
            # A connection that could not begin (left in a transaction, broken) is not lent again.
            await session.invalidate()
            raise
        self._session, self._connection, self._transaction = session, driver, transaction
        return self

    async def commit(self) -> None:
        if self._committed:
            raise RuntimeError("a unit of work commits once")
        transaction = self._transaction
        if transaction is None:
            raise RuntimeError("the unit of work is not open; use it in 'async with'")
        if self._events:
            await self.connection.execute(
                _WRITE_OUTBOX_ROWS,
                [e.id for e in self._events],
                [e.type for e in self._events],
                [e.body for e in self._events],
                [json_text(e.attributes) for e in self._events],
            )
        self._transaction = None  # whatever COMMIT answers, this transaction is over
        await transaction.commit()
        self._committed = True
        # The connection goes back to the pool at once: a handler that goes on after its commit
        # (a saga running its next steps in units of work of their own) holds no second one.
        session, self._session, self._connection = self._session, None, None
        if session is not None:
            await session.close()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session, transaction = self._session, self._transaction
        if session is None:
            if self._committed:
                return  # its connection went back to the pool with the commit
            raise RuntimeError("the unit of work is not open; use it in 'async with'")
        self._session = self._connection = self._transaction = None
        try:
            if transaction is not None:
                await transaction.rollback()
            elif not self._committed:
                await session.invalidate()  # COMMIT failed: the connection's state is unknown
                return
        except BaseException:
            await session.invalidate()
            if exc is None:
                raise
            _log.warning("rolling back after %r failed; connection discarded", exc, exc_info=True)
            return
        await session.close()


UnitOfWorkT = TypeVar("UnitOfWorkT", bound=UnitOfWork)


@overload
def unit_of_work_factory(engine: AsyncEngine, *, source: str) -> Callable[[], UnitOfWork]: ...


@overload
def unit_of_work_factory(
    engine: AsyncEngine, *, source: str, kind: type[UnitOfWorkT]
) -> Callable[[], UnitOfWorkT]: ...


def unit_of_work_factory(
    engine: AsyncEngine, *, source: str, kind: type[UnitOfWork] = UnitOfWork
) -> Callable[[], UnitOfWork]:
    """A callable that opens a new unit of work (a ``kind``, a service's subclass with its
    repositories) on ``engine`` each time.

    ``source`` is the CloudEvents source of the events it publishes, e.g. ``urn:mvno:orders``.
    """
    # The transaction is the unit of work's own (asyncpg's): the session's connection must not
    # begin one of its own with its first statement.
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    sessions = async_sessionmaker(autocommit, expire_on_commit=False, autoflush=False)
    return lambda: kind(sessions, source=source)


def alembic_config(migrations: Path, database_url: str) -> Config:
    """An Alembic configuration for a service's migrations folder, with no ini file needed.

    The folder holds the service's ``env.py`` and its ``versions/``. Unless those versions start
    the history themselves (a ``0001_*.py`` of their own), the revisions every service starts
    with are listed beside them: ``mvno.common.migrations.SHARED_VERSIONS`` (0001 the baseline,
    0002 the bus's tables), so a service's first revision of its own revises ``"0002"``.
    """
    # Imported here: only migrations need Alembic, and it slows every service's start-up.
    from alembic.config import Config

    from mvno.common.migrations import SHARED_VERSIONS

    own_versions = migrations / "versions"
    locations = [own_versions]
    if not any(own_versions.glob("0001_*.py")):
        locations.insert(0, SHARED_VERSIONS)
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("path_separator", "os")
    config.set_main_option(
        "version_locations", os.pathsep.join(str(path).replace("%", "%%") for path in locations)
    )
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(migrations: Path, database_url: str, revision: str = "head") -> None:
    """Run a service's migrations up to ``revision`` (blocking; call it from a thread in async code)."""
    from alembic import command

    command.upgrade(alembic_config(migrations, database_url), revision)


# Constraint names Alembic can rely on in every service's migrations.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
